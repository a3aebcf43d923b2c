"""``videobatch requeue``: failed items back to work, chosen by id or by filter (failure code, time, key prefix).

An item goes back to ``queued`` when its TwelveLabs asset is still ready (its windows are kept), else to
``registered`` with its upload event sent to ingest again for a new asset. Never an item whose batch is still open
(it may hold a live request of it: ``cancel-batch`` it or wait), never an upload ingest refused (upload it again).
Attempts are kept unless ``--reset-attempts`` (then ``MaxAttempts`` counts afresh; attempt numbers are never
reused). Every write is conditional, so it is safe while the pipeline runs, and running it twice requeues nothing
twice: a requeued item is no longer failed.
"""

from __future__ import annotations

import argparse
import re
from itertools import islice
from typing import Any, TextIO

from videobatch_ops.common import (
    EXIT_NOT_FOUND,
    Context,
    OpsError,
    add_change_flags,
    add_common_flags,
    checked_prefix,
    confirm,
    emit,
    guarded,
    parse_since,
)
from videobatch_ops.render import Progress, table

_ITEM_ID = re.compile(r"^[0-9a-f]{32}$")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "requeue",
        help="put failed items back to work (by id, or by failure code / time / key prefix)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("item_ids", nargs="*", metavar="ITEM_ID", help="failed items to requeue, by 32-hex id")
    parser.add_argument("--code", metavar="CODE", help="only items failed with this failure code")
    parser.add_argument("--since", metavar="WHEN", help="only items failed since: 90m, 6h, 3d, 2w or an ISO time")
    parser.add_argument("--prefix", metavar="PREFIX", help="only objects whose key starts with PREFIX")
    parser.add_argument("--all", action="store_true", help="every failed item of the last 90 days (no filter)")
    parser.add_argument("--limit", type=int, default=10_000, metavar="N", help="at most N items (default 10000)")
    attempts = parser.add_mutually_exclusive_group()
    attempts.add_argument(
        "--reset-attempts", action="store_true", help="forgive the attempts made so far (MaxAttempts counts afresh)"
    )
    attempts.add_argument("--keep-attempts", action="store_true", help="keep the attempts made so far (the default)")
    add_change_flags(parser)
    add_common_flags(parser, settings_overrides=True)
    parser.set_defaults(func=guarded(_requeue))


def operations(context: Context, *, with_api: bool = True) -> Any:
    """The pipeline's operations service here: over this context's runtime (the API key read from the secret), or,
    ``with_api=False`` (backfill, reprocess: they read items and send upload events), over DynamoDB alone."""
    from videobatch.adapters.dynamodb import DynamoBatchRepository, DynamoItemRepository
    from videobatch.adapters.events import EventBridgePublisher
    from videobatch.adapters.ledger import DynamoOutcomeLedger
    from videobatch.adapters.s3 import S3ObjectStore
    from videobatch.adapters.sqs import SqsUploadQueue
    from videobatch.services.lifecycle import ItemWriter
    from videobatch.services.operations import Operations

    queue_url = context.location.get("INGEST_QUEUE_URL")
    account, region = context.account_and_region()
    uploads = SqsUploadQueue(context.client("sqs"), queue_url) if queue_url else None
    lister = S3ObjectStore(context.client("s3"))
    if with_api:
        runtime = context.runtime()
        return Operations(
            settings=runtime.settings,
            clock=runtime.clock,
            items=runtime.items,
            batches=runtime.batches,
            ledger=runtime.ledger,
            writer=runtime.item_writer(),
            twelvelabs=runtime.twelvelabs,
            uploads=uploads,
            lister=lister,
            account=account,
            region=region,
        )
    settings = context.settings()
    items = DynamoItemRepository(context.dynamodb, settings.table_name)
    ledger = DynamoOutcomeLedger(context.dynamodb, settings.table_name)
    events = EventBridgePublisher(context.client("events"), settings.event_bus_name)
    writer = ItemWriter(items=items, events=events, metrics=context.metrics, clock=context.clock, ledger=ledger)
    return Operations(
        settings=settings,
        clock=context.clock,
        items=items,
        batches=DynamoBatchRepository(context.dynamodb, settings.table_name),
        ledger=ledger,
        writer=writer,
        uploads=uploads,
        lister=lister,
        account=account,
        region=region,
    )


def _requeue(args: argparse.Namespace, out: TextIO) -> int:
    from videobatch.services.operations import FailedFilter

    bad = [item_id for item_id in args.item_ids if not _ITEM_ID.match(item_id)]
    if bad:
        raise OpsError(f"not an item id (32 lowercase hex): {', '.join(bad)}")
    if args.limit < 1:
        raise OpsError(f"--limit must be at least 1, got {args.limit}")
    prefix = checked_prefix(args.prefix)
    filtered = args.code is not None or args.since is not None or prefix is not None
    if not (args.item_ids or filtered or args.all):
        raise OpsError("name items or a filter (--code, --since, --prefix), or --all for every failed item")
    if args.all and (args.item_ids or filtered):
        raise OpsError("--all means no filter: drop it, or drop the filters")
    context = Context(args, with_function=bool(args.stack))
    try:
        where = FailedFilter(code=args.code, since=parse_since(args.since, context.clock.now()), prefix=prefix)
        ops = operations(context)
        failed = islice(ops.failed_items(where, item_ids=args.item_ids), args.limit)
        plan = ops.plan_requeue(failed)
        if not plan:
            raise OpsError("no failed item matches", EXIT_NOT_FOUND)
        actionable = [c for c in plan if c.target is not None]
        report = None
        if not args.dry_run and actionable:
            confirm(args, len(actionable), "requeue these failed items")
            progress = Progress("items requeued", total=len(plan))
            report = ops.requeue(plan, reset_attempts=args.reset_attempts, progress=progress.update)
            progress.finish()
    finally:
        context.close()
    rows = [
        {
            "item_id": c.item.item_id,
            "key": c.item.key,
            "failure_code": c.item.failure.code if c.item.failure else None,
            "action": c.target or "skip",
            "reason": c.reason,
        }
        for c in plan
    ]
    document = {"dry_run": args.dry_run, "plan": rows, "report": report.model_dump() if report else None}

    def render(stream: TextIO) -> None:
        table(stream, ["item", "key", "code", "action", "why"], [list(r.values()) for r in rows])
        if args.dry_run:
            stream.write(f"\ndry run: {len(actionable)} of {len(plan)} would be requeued; nothing changed\n")
        elif report is not None:
            stream.write(
                f"\nrequeued {report.requeued} to the queue, {report.reregistered} to ingest for a new asset; "
                f"{report.skipped} skipped, {report.lost_races} changed meanwhile (left as they are)\n"
            )
        else:
            stream.write(f"\nnothing to requeue: all {len(plan)} skipped\n")

    emit(args, out, document, render)
    if args.dry_run:
        return 0
    return 0 if report is not None and report.requeued + report.reregistered else EXIT_NOT_FOUND
