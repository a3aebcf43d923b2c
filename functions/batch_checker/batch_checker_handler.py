"""Lambda entry point of the batch checker.

Three triggers: the regular schedule (checks every open batch), the one-time expiry schedule of one batch, whose
input is ``{"batch_id": "..."}``, and an operator's ``videobatch cancel-batch``, which cancels the batch at TwelveLabs
and then invokes this function with ``{"batch_id": "...", "operator_cancel": {"disposition": "requeue" | "fail",
"fail_unfinished": bool}}``: the items are settled here, with this function's rights (results, events, schedules).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from videobatch.errors import InvalidInputError
from videobatch.handler import Event, LambdaContext, lambda_handler, metrics
from videobatch.runtime import get_runtime
from videobatch.services.batch_checker import BatchCheckSummary

if TYPE_CHECKING:
    # The operator's cancel is rare: its module (~8 ms) loads when one arrives, not on every cold start.
    from videobatch.services.operations import CancelSettlement, OperatorCancel


def batch_id_of(event: Any) -> str | None:
    """The batch named by an expiry schedule, or None for the regular schedule (all open batches)."""
    if not isinstance(event, Mapping):
        raise InvalidInputError(f"the batch checker's event must be an object, got {type(event).__name__}")
    if "batch_id" not in event:
        return None
    batch_id = event["batch_id"]
    if not isinstance(batch_id, str) or not batch_id:
        raise InvalidInputError(f"batch_id must be a non-empty string, got {batch_id!r}")
    return batch_id


def operator_cancel_of(event: dict[str, Any]) -> OperatorCancel | None:
    """The operator's cancel an invocation carries, or None (the schedules' invocations)."""
    if "operator_cancel" not in event:
        return None
    from videobatch.services.operations import OperatorCancel

    try:
        return OperatorCancel.model_validate(event["operator_cancel"])
    except ValidationError as error:
        raise InvalidInputError(f"operator_cancel: {error.errors()[0]['msg']}") from error


@lambda_handler("batch_checker")
def handler(event: Event, context: LambdaContext) -> BatchCheckSummary | CancelSettlement:
    batch_id = batch_id_of(event)
    cancel = operator_cancel_of(event)
    if cancel is not None and batch_id is None:
        raise InvalidInputError("operator_cancel names no batch_id")
    runtime = get_runtime()
    metrics.add_metric(name="BatchCheckRuns", unit="Count", value=1)
    if cancel is not None and batch_id is not None:
        from videobatch.services.operations import operations_of

        return operations_of(runtime).settle_canceled(
            batch_id,
            disposition=cancel.disposition,
            fail_unfinished=cancel.fail_unfinished,
            checker=runtime.batch_check_service,
        )
    service = runtime.batch_check_service()
    return service.check_open() if batch_id is None else service.check(batch_id)
