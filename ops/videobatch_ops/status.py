"""``videobatch status``: what the pipeline holds and how fast it moves, from DynamoDB (and TwelveLabs with --live).

- items per state: the work queues counted on the index (``Select=COUNT``), each with its oldest item; ``done`` and
  ``failed`` from the outcome ledger's day totals over the items' retention (90 days): no scan anywhere;
- the backlog (every item not yet done or failed), the throughput of the last hour and day (from the ledger's
  5-minute slots) and the time the backlog takes at the last hour's pace (the last day's when the hour saw none);
- whether an operator paused the pipeline; pending claims; the open batches with their progress (settled items of
  the batch record; ``--live``: TwelveLabs' own counts); usage (content hours, windows, tokens) per day.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from videobatch_ops.common import Context, add_common_flags, emit, guarded
from videobatch_ops.render import duration, table

if TYPE_CHECKING:
    from videobatch.domain.records import BatchProgress

RETENTION_DAYS = 90


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="items per state, throughput and ETA, pause, open batches, usage per day",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--live", action="store_true", help="ask TwelveLabs for each open batch's status and counts")
    parser.add_argument(
        "--days", type=_days, default=7, metavar="N", help="usage totals of the last N UTC days (default 7, max 90)"
    )
    add_common_flags(parser)
    parser.set_defaults(func=guarded(_status))


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of days") from error
    if not 1 <= days <= RETENTION_DAYS:
        raise argparse.ArgumentTypeError(f"--days must be 1..{RETENTION_DAYS}, got {days}")
    return days


def _status(args: argparse.Namespace, out: TextIO) -> int:
    context = Context(args)
    try:
        status = collect_status(context, live=args.live, days=args.days)
    finally:
        context.close()
    emit(args, out, status, lambda stream: render_status(status, stream))
    return 0


# --- collecting -------------------------------------------------------------------------------------------------


def item_queues() -> list[tuple[str, str, str | None]]:
    """(label, gsi1 queue, the state to pick in it: None when the queue holds one state only). Registered and
    asset_processing share the intake queue, claimed and submitted the in-flight one (domain.records)."""
    from videobatch.domain.records import INFLIGHT_QUEUE, INTAKE_QUEUE, queued_queue
    from videobatch.twelvelabs import limits

    queues: list[tuple[str, str, str | None]] = [
        ("registered", INTAKE_QUEUE, "registered"),
        ("asset_processing", INTAKE_QUEUE, "asset_processing"),
    ]
    queues += [(f"queued ({mode})", queued_queue(mode), None) for mode in limits.ANALYSIS_MODES]
    return [*queues, ("claimed", INFLIGHT_QUEUE, "claimed"), ("submitted", INFLIGHT_QUEUE, "submitted")]


def count_queue(dynamodb: Any, table_name: str, queue: str) -> int:
    """Records in one gsi1 work queue (Select=COUNT reads the index keys only, page by page)."""
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": queue}},
        "Select": "COUNT",
    }
    total = 0
    while True:
        response = dynamodb.query(**kwargs)
        total += int(response.get("Count", 0))
        if not response.get("LastEvaluatedKey"):
            return total
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def collect_status(context: Context, *, live: bool, days: int) -> dict[str, Any]:
    from videobatch.adapters.control import DynamoControlStore
    from videobatch.adapters.dynamodb import DynamoBatchRepository, DynamoItemRepository
    from videobatch.adapters.ledger import DynamoOutcomeLedger
    from videobatch.domain.outcomes import days_back, throughput
    from videobatch.domain.records import PENDING_CLAIMS_QUEUE

    table_name, dynamodb, now = context.table, context.dynamodb, context.clock.now()
    items = DynamoItemRepository(dynamodb, table_name)
    states: list[dict[str, Any]] = []
    for label, queue, state in item_queues():
        if state is None:
            count = count_queue(dynamodb, table_name, queue)
            oldest = next(iter(items.iter_queue(queue, page_size=1)), None)
        else:  # a queue two states share: count the records (the index keeps keys only)
            members = [item for item in items.iter_queue(queue) if item.state.value == state]
            count, oldest = len(members), (members[0] if members else None)
        entry: dict[str, Any] = {"state": label, "count": count}
        if oldest is not None:
            since = state_since(oldest)
            entry |= {"oldest_item_id": oldest.item_id, "oldest_key": oldest.key, "oldest_since": since.isoformat()}
            entry["oldest_age_seconds"] = round((now - since).total_seconds(), 1)
        states.append(entry)
    ledger = DynamoOutcomeLedger(dynamodb, table_name)
    history = ledger.days(days_back(now, RETENTION_DAYS))
    by_day = {totals.day: totals for totals in history}
    done = sum(t.done for t in history)
    failed = sum(t.failed for t in history)
    states.append({"state": "done", "count": done, "window_days": RETENTION_DAYS})
    states.append(
        {
            "state": "failed",
            "count": failed,
            "window_days": RETENTION_DAYS,
            "user": sum(t.failed_user for t in history),
            "pipeline": sum(t.failed_pipeline for t in history),
        }
    )
    backlog = sum(entry["count"] for entry in states if entry["state"] not in {"done", "failed"})
    hour = throughput(by_day, now=now, window_seconds=3600)
    day = throughput(by_day, now=now, window_seconds=86_400)
    pace = hour if hour.per_hour > 0 else day
    eta = round(backlog / pace.per_hour * 3600, 1) if backlog and pace.per_hour > 0 else (0.0 if not backlog else None)
    control = DynamoControlStore(dynamodb, table_name).load()
    batches = [_batch_entry(record, now) for record in DynamoBatchRepository(dynamodb, table_name).iter_open()]
    if live and batches:
        _add_live_status(context, batches)
    return {
        "table": table_name,
        "checked_at": now.isoformat(),
        "paused": {
            "paused": control.paused,
            "reason": control.reason,
            "changed_by": control.changed_by,
            "changed_at": control.changed_at.isoformat() if control.changed_at else None,
        },
        "states": states,
        "totals": {"done": done, "failed": failed, "backlog": backlog},
        "throughput": {
            "last_hour": {"done": hour.done, "failed": hour.failed, "per_hour": round(hour.per_hour, 1)},
            "last_day": {"done": day.done, "failed": day.failed, "per_hour": round(day.per_hour, 1)},
        },
        "eta_seconds": eta,
        "claims_pending": count_queue(dynamodb, table_name, PENDING_CLAIMS_QUEUE),
        "open_batches": batches,
        "usage_per_day": [
            {
                "day": totals.day.isoformat(),
                "done": totals.done,
                "failed": totals.failed,
                "content_seconds": round(totals.content_seconds, 1),
                "windows": totals.windows,
                "input_tokens": totals.input_tokens,
                "output_tokens": totals.output_tokens,
            }
            for totals in history[:days]
        ],
    }


def state_since(item: Any) -> datetime:
    """When the item entered the state it is listed under (queued: first queued, not the backoff end)."""
    moment: datetime | None = {
        "registered": item.created_at,
        "asset_processing": item.asset_created_at,
        "queued": item.queued_at,
        "claimed": item.claimed_at,
        "submitted": item.submitted_at,
    }.get(item.state.value)
    return moment or item.updated_at


def _batch_entry(record: BatchProgress, now: datetime) -> dict[str, Any]:
    settled = record.succeeded_items + record.failed_items + record.requeued_items
    return {
        "batch_id": record.batch_id,
        "analysis_mode": record.analysis_mode,
        "api_status": record.api_status,
        "created_at": record.created_at.isoformat(),
        "expires_at": record.expires_at.isoformat(),
        "expires_in_seconds": round((record.expires_at - now).total_seconds(), 1),
        "items": record.item_count,
        "requests": record.request_count,
        "settled": record.settled_count,
        "succeeded": record.succeeded_items,
        "failed": record.failed_items,
        "requeued": record.requeued_items,
        "progress": round(settled / record.item_count, 3) if record.item_count else 1.0,
    }


def _add_live_status(context: Context, batches: list[dict[str, Any]]) -> None:
    from videobatch.adapters.secrets import SecretApiKeyProvider
    from videobatch.errors import NotFoundError
    from videobatch.twelvelabs.client import TwelveLabsClient
    from videobatch_ops.common import DEFAULT_BASE_URL

    key = context.key_from_file()
    if key is None:
        secret = context.location.require("TWELVELABS_API_KEY_SECRET")
        key = SecretApiKeyProvider(context.client("secretsmanager"), secret)()
    client = TwelveLabsClient(key, base_url=context.location.get("TWELVELABS_BASE_URL") or DEFAULT_BASE_URL)
    try:
        for entry in batches:
            try:
                batch = client.retrieve_batch(entry["batch_id"])
            except NotFoundError:
                entry["live"] = {"status": "deleted"}
                continue
            finished = batch.ready_items + batch.failed_items + batch.canceled_items
            entry["live"] = {
                "status": batch.status,
                "queued": batch.queued_items,
                "processing": batch.processing_items,
                "ready": batch.ready_items,
                "failed": batch.failed_items,
                "canceled": batch.canceled_items,
                "progress": round(finished / batch.total_items, 3) if batch.total_items else 1.0,
            }
    finally:
        client.close()


# --- rendering --------------------------------------------------------------------------------------------------


def render_status(status: dict[str, Any], out: TextIO) -> None:
    out.write(f"table {status['table']} at {status['checked_at']}\n")
    paused = status["paused"]
    if paused["paused"]:
        out.write(
            f"pipeline: PAUSED since {paused['changed_at']} by {paused['changed_by']} ({paused['reason']}): "
            "no new batches; running ones are collected (videobatch resume)\n"
        )
    else:
        out.write("pipeline: running\n")
    out.write("\nitems by state:\n")
    rows = []
    for entry in status["states"]:
        label = entry["state"]
        oldest = ""
        if "oldest_item_id" in entry:
            oldest = f"{duration(entry['oldest_age_seconds'])} ({entry['oldest_key']}, {entry['oldest_item_id']})"
        if label in {"done", "failed"}:
            label = f"{label} (last {entry['window_days']} days)"
            if entry["state"] == "failed":
                oldest = f"user {entry['user']}, pipeline {entry['pipeline']}"
        rows.append([label, entry["count"], oldest])
    table(out, ["state", "count", "oldest waiting / detail"], rows)
    queued = [e for e in status["states"] if e["state"].startswith("queued") and "oldest_age_seconds" in e]
    oldest_queued = max(queued, key=lambda e: e["oldest_age_seconds"], default=None)
    if oldest_queued:
        waited = duration(oldest_queued["oldest_age_seconds"])
        out.write(f"\noldest queued item: {waited} waiting ({oldest_queued['oldest_key']})\n")
    else:
        out.write("\noldest queued item: none queued\n")
    pace = status["throughput"]
    eta = status["eta_seconds"]
    eta_text = duration(eta) if eta is not None else "unknown (nothing finished in the last day)"
    out.write(
        f"backlog: {status['totals']['backlog']} items; throughput {pace['last_hour']['per_hour']:g}/h over the last "
        f"hour ({pace['last_hour']['done']} done, {pace['last_hour']['failed']} failed), "
        f"{pace['last_day']['per_hour']:g}/h over the last day; ETA {eta_text}\n"
    )
    out.write(f"claims pending (batch create outcome unknown): {status['claims_pending']}\n")
    batches = status["open_batches"]
    out.write(f"\nopen batches: {len(batches)}\n")
    if batches:
        rows = []
        for batch in batches:
            live = batch.get("live") or {}
            progress = live.get("progress", batch["progress"])
            rows.append(
                [
                    batch["batch_id"],
                    batch["analysis_mode"],
                    live.get("status", batch["api_status"]),
                    batch["items"],
                    batch["requests"],
                    batch["succeeded"],
                    batch["failed"],
                    batch["requeued"],
                    f"{progress * 100:.0f}%",
                    _until(batch["expires_in_seconds"]),
                ]
            )
        headers = ["batch", "mode", "status", "items", "requests", "ok", "failed", "requeued", "progress", "expiry"]
        table(out, headers, rows)
        for batch in batches:
            live = batch.get("live")
            if live and "queued" in live:
                out.write(
                    "  {batch_id} live: {queued} queued, {processing} processing, {ready} ready, {failed} failed, "
                    "{canceled} canceled\n".format(batch_id=batch["batch_id"], **live)
                )
    out.write("\nusage per day (UTC):\n")
    rows = [
        [
            d["day"],
            d["done"],
            d["failed"],
            round(d["content_seconds"] / 3600, 2),
            d["windows"],
            d["input_tokens"],
            d["output_tokens"],
        ]
        for d in status["usage_per_day"]
    ]
    table(out, ["day", "done", "failed", "content h", "windows", "input tokens", "output tokens"], rows)


def _until(seconds: float) -> str:
    return f"in {duration(seconds)}" if seconds >= 0 else f"passed {duration(-seconds)} ago"
