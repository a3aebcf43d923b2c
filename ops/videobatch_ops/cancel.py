"""``videobatch cancel-batch BATCH_ID``: cancel a batch at TwelveLabs and settle its items.

Two steps. Here, with your TwelveLabs key (read from the stack's secret): the batch is canceled
(``POST /analyze/batches/{id}/cancel``; a batch already canceling or ended is not canceled again) and followed for
up to ``--wait-seconds`` until it ends. Then the deployed batch checker function is invoked to settle its items,
with its own rights (it writes the result files, publishes the events and drops the expiry check, which the
stack's bucket and bus policies allow no one else): items already analysed keep their results (done); canceled
ones are put back in the queue at once with ``--requeue`` (the default; the attempt is not held against
MaxAttempts) or failed ``canceled_by_operator`` with ``--fail``. Items still running when the wait ends: with
``--fail`` they are failed now; with ``--requeue`` the scheduled batch checker requeues them when they end, never
earlier (a request still running must not be submitted a second time). Running it again settles what is left and
cancels nothing twice.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any, TextIO

from videobatch_ops.common import (
    EXIT_NOT_FOUND,
    Context,
    OpsError,
    add_change_flags,
    add_common_flags,
    confirm,
    emit,
    guarded,
)

_BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cancel-batch",
        help="cancel a batch at TwelveLabs and requeue (default) or fail its items",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("batch_id", metavar="BATCH_ID", help="the TwelveLabs batch id (status lists the open ones)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--requeue", action="store_true", help="put its canceled items back in the queue (default)")
    how.add_argument("--fail", action="store_true", help="fail its canceled items (canceled_by_operator)")
    parser.add_argument(
        "--wait-seconds",
        type=float,
        default=120.0,
        metavar="N",
        help="how long to wait for TwelveLabs to end the batch before settling (default 120)",
    )
    add_change_flags(parser)
    add_common_flags(parser, settings_overrides=True)
    parser.set_defaults(func=guarded(_cancel))


def _cancel(args: argparse.Namespace, out: TextIO) -> int:
    from videobatch.domain.items import ItemState
    from videobatch.domain.records import BatchState
    from videobatch_ops.requeue import operations

    if not _BATCH_ID.match(args.batch_id):
        raise OpsError(f"{args.batch_id!r} is not a batch id")
    if args.wait_seconds < 0:
        raise OpsError(f"--wait-seconds must not be negative, got {args.wait_seconds:g}")
    disposition = "fail" if args.fail else "requeue"
    context = Context(args, with_function=bool(args.stack))
    try:
        runtime = context.runtime()
        record = runtime.batches.get(args.batch_id)
        progress = runtime.batches.get_progress(args.batch_id)
        if record is None or progress is None:
            raise OpsError(f"no batch {args.batch_id} recorded by this pipeline (status lists the open ones)")
        if progress.state is BatchState.CLOSED:
            raise OpsError(f"batch {args.batch_id} is closed already: nothing to cancel", EXIT_NOT_FOUND)
        function = _batch_checker(context)
        members = runtime.items.get_many(record.item_ids).values()
        submitted = [i for i in members if i.state is ItemState.SUBMITTED and i.batch_id == args.batch_id]
        report: dict[str, Any] | None = None
        if not args.dry_run:
            confirm(args, len(submitted), f"cancel batch {args.batch_id} and {disposition} its items")
            status, sent = operations(context).cancel_at_twelvelabs(
                args.batch_id, wait_seconds=args.wait_seconds, sleep=time.sleep
            )
            unfinished = status in {"pending", "processing", "canceling"}
            settled = _invoke(context, function, args.batch_id, disposition, fail_unfinished=unfinished)
            report = {"api_status": status, "cancel_sent": sent, "function": function, **settled}
    finally:
        context.close()
    document = {
        "batch_id": args.batch_id,
        "disposition": disposition,
        "dry_run": args.dry_run,
        "items_submitted": len(submitted),
        "report": report,
    }

    def render(stream: TextIO) -> None:
        if report is None:
            stream.write(
                f"dry run: batch {args.batch_id} ({progress.api_status}) would be canceled and its "
                f"{len(submitted)} submitted items {disposition}d once it ends; nothing changed\n"
            )
            return
        sent = "cancel sent" if report["cancel_sent"] else "not canceled again"
        stream.write(
            f"batch {args.batch_id}: {sent}, TwelveLabs says {report['api_status']}; settled by {function}: "
            f"{report['items_succeeded']} done (results kept), {report['items_requeued']} requeued, "
            f"{report['items_failed']} failed"
        )
        if report["items_left"]:
            stream.write(f"; {report['items_left']} still running: the batch checker settles them when they end")
        stream.write("\n")

    emit(args, out, document, render)
    return 0


def _batch_checker(context: Context) -> str:
    """The deployed batch checker: by name (stack output, flag) or by the ARN the functions' settings carry."""
    name = context.location.get("BATCH_CHECKER_FUNCTION") or context.location.get("BATCH_CHECKER_ARN")
    if name is None:
        raise OpsError("BATCH_CHECKER_FUNCTION is unknown: pass --stack NAME or --batch-checker-function")
    return name


def _invoke(context: Context, function: str, batch_id: str, disposition: str, *, fail_unfinished: bool) -> Any:
    payload = {
        "batch_id": batch_id,
        "operator_cancel": {"disposition": disposition, "fail_unfinished": fail_unfinished},
    }
    response = context.client("lambda").invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(payload)
    )
    answer = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        detail = f"{answer.get('errorType')}: {answer.get('errorMessage')}" if isinstance(answer, dict) else answer
        raise OpsError(
            f"batch {batch_id} was canceled at TwelveLabs, but the batch checker {function} failed to settle it "
            f"({detail}); its schedule settles it, or run cancel-batch again"
        )
    keys = ("items_succeeded", "items_requeued", "items_failed", "items_left")
    return {key: int(answer.get(key, 0)) for key in keys} if isinstance(answer, dict) else dict.fromkeys(keys, 0)
