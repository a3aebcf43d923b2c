"""Lambda entry point of the batch checker.

Two triggers: the regular schedule (checks every open batch) and the one-time expiry schedule of one batch, whose
input is ``{"batch_id": "..."}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from videobatch.errors import InvalidInputError
from videobatch.handler import Event, LambdaContext, lambda_handler, metrics
from videobatch.runtime import get_runtime
from videobatch.services.batch_checker import BatchCheckSummary


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


@lambda_handler("batch_checker")
def handler(event: Event, context: LambdaContext) -> BatchCheckSummary:
    batch_id = batch_id_of(event)
    service = get_runtime().batch_check_service()
    summary = service.check_open() if batch_id is None else service.check(batch_id)
    metrics.add_metric(name="BatchCheckRuns", unit="Count", value=1)
    return summary
