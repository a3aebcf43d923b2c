"""``videobatch items`` (a page of items in one state, filtered) and ``videobatch item`` (one item, all of it).

Items waiting in a work queue are read from the queue's index, oldest first; ``done`` and ``failed`` items, which
leave every index, from the outcome ledger's journal, newest first, for the items' retention (90 days). A page
ends with a ``--page-token`` that continues after its last item.
"""

from __future__ import annotations

import argparse
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, Final, TextIO

from videobatch_ops.common import (
    EXIT_NOT_FOUND,
    Context,
    OpsError,
    add_common_flags,
    checked_prefix,
    emit,
    guarded,
    parse_since,
)
from videobatch_ops.render import table

STATES: Final = ("registered", "asset_processing", "queued", "claimed", "submitted", "done", "failed")
_TOKEN: Final = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[0-9a-f]{32}$")
RETENTION_DAYS: Final = 90


def register(subparsers: Any) -> None:
    items = subparsers.add_parser(
        "items",
        help="items in one state, filtered by failure code, time and key prefix, a page at a time",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    items.add_argument("--state", required=True, choices=STATES, help="the state to list")
    items.add_argument("--code", metavar="CODE", help="only failed items with this failure code (--state failed)")
    items.add_argument(
        "--since", metavar="WHEN", help="only items that entered the state since: 90m, 6h, 3d, 2w or an ISO time"
    )
    items.add_argument("--prefix", metavar="PREFIX", help="only objects whose key starts with PREFIX")
    items.add_argument("--limit", type=_limit, default=50, metavar="N", help="items per page (default 50, max 1000)")
    items.add_argument("--page-token", metavar="TOKEN", help="continue after the page that printed this token")
    add_common_flags(items)
    items.set_defaults(func=guarded(_items))

    item = subparsers.add_parser("item", help="one item: state, attempts, batch and tasks, result or failure")
    item.add_argument("target", help="BUCKET/KEY (or s3://BUCKET/KEY) of the upload, or its 32-hex item id")
    item.add_argument("--version-id", metavar="V", help="the object version (default: the current version)")
    item.add_argument(
        "--analysis-profile",
        metavar="NAME",
        help="the item of a reprocess with this analysis profile (videobatch reprocess), not the upload's own",
    )
    add_common_flags(item)
    item.set_defaults(func=guarded(_item))


def _limit(value: str) -> int:
    try:
        limit = int(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from error
    if not 1 <= limit <= 1000:
        raise argparse.ArgumentTypeError(f"--limit must be 1..1000, got {limit}")
    return limit


# --- items ------------------------------------------------------------------------------------------------------


def _items(args: argparse.Namespace, out: TextIO) -> int:
    if args.code is not None and args.state != "failed":
        raise OpsError("--code filters failed items only: add --state failed")
    if args.page_token is not None and not _TOKEN.match(args.page_token):
        raise OpsError(f"--page-token {args.page_token!r} is not a token this command printed")
    prefix = checked_prefix(args.prefix)
    context = Context(args)
    query = Query(args.state, parse_since(args.since, context.clock.now()), prefix, args.code, args.page_token)
    found = list(islice(_matching(context, query), args.limit + 1))
    page, more = found[: args.limit], len(found) > args.limit
    token = page[-1][0] if more and page else None
    rows = [_row(item, sort_key, args.state) for sort_key, item in page]
    document = {"state": args.state, "items": rows, "count": len(rows), "next_page_token": token}

    def render(stream: TextIO) -> None:
        if not rows:
            stream.write(f"no {args.state} items match\n")
            return
        headers = ["item", "key", "since", "attempts", "detail"]
        table(stream, headers, [[r["item_id"], r["key"], r["since"], r["attempts"], r["detail"]] for r in rows])
        stream.write(f"\n{len(rows)} {args.state} items")
        stream.write(f"; more: --page-token {token}\n" if token else "\n")

    emit(args, out, document, render)
    return 0 if rows else EXIT_NOT_FOUND


def _row(item: Any, sort_key: str, state: str) -> dict[str, Any]:
    from videobatch_ops.status import state_since

    since = item.finished_at if state in {"done", "failed"} else state_since(item)
    detail = ""
    if item.failure is not None:
        detail = f"{item.failure.code}: {item.failure.message}"[:120]
    elif item.batch_id:
        detail = f"batch {item.batch_id}"
    elif item.result_key:
        detail = item.result_key
    return {
        "item_id": item.item_id,
        "bucket": item.bucket,
        "key": item.key,
        "version_id": item.version_id,
        "profile": item.profile_name,
        "state": item.state.value,
        "since": (since or item.updated_at).isoformat(),
        "attempts": item.counted_attempts,
        "failure_code": item.failure.code if item.failure else None,
        "detail": detail,
        "sort_key": sort_key,
    }


@dataclass(frozen=True)
class Query:
    state: str
    since: datetime | None
    prefix: str | None
    code: str | None
    after: str | None  # a page token: the sort key of the previous page's last item


def _matching(context: Context, query: Query) -> Iterator[tuple[str, Any]]:
    """(sort key, item) in page order, filters applied, continuing after ``query.after``."""
    from videobatch.adapters.dynamodb import DynamoItemRepository

    items = DynamoItemRepository(context.dynamodb, context.table)
    if query.state in {"done", "failed"}:
        yield from _from_journal(context, items, query)
        return
    for sort_key, item in _from_queues(context, items, query):
        if item.state.value == query.state and (query.prefix is None or item.key.startswith(query.prefix)):
            yield sort_key, item


def _from_queues(context: Context, items: Any, query: Query) -> Iterator[tuple[str, Any]]:
    from videobatch.domain.records import sort_stamp
    from videobatch_ops.status import item_queues

    queues = sorted({queue for label, queue, _ in item_queues() if label.split(" ")[0] == query.state})
    low = query.after or (f"{sort_stamp(query.since)}#" if query.since else None)
    streams = [_queue_keys(context, queue, low) for queue in queues]
    merged = heapq.merge(*streams)
    while chunk := list(islice(merged, 100)):
        records = items.get_many([item_id for _, item_id in chunk])
        for sort_key, item_id in chunk:
            if item_id in records and records[item_id].state.value == query.state:  # shared queues hold two
                yield sort_key, records[item_id]


def _queue_keys(context: Context, queue: str, after: str | None) -> Iterator[tuple[str, str]]:
    """(gsi1sk, item id) of a work queue, ascending, after ``after``: the index keys only."""
    condition = "gsi1pk = :pk" + (" AND gsi1sk > :after" if after else "")
    values: dict[str, Any] = {":pk": {"S": queue}}
    if after:
        values[":after"] = {"S": after}
    kwargs: dict[str, Any] = {
        "TableName": context.table,
        "IndexName": "gsi1",
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ProjectionExpression": "gsi1sk",
    }
    while True:
        response = context.dynamodb.query(**kwargs)
        for row in response.get("Items", []):
            sort_key = row["gsi1sk"]["S"]
            yield sort_key, sort_key.rsplit("#", 1)[1]
        if not response.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _from_journal(context: Context, items: Any, query: Query) -> Iterator[tuple[str, Any]]:
    from videobatch.adapters.ledger import DynamoOutcomeLedger
    from videobatch.domain.outcomes import days_back

    state, since, prefix, code, after = query.state, query.since, query.prefix, query.code, query.after
    ledger = DynamoOutcomeLedger(context.dynamodb, context.table)
    days = days_back(context.clock.now(), RETENTION_DAYS)
    if after is not None:
        start = datetime.fromisoformat(after[:10]).date()
        days = [day for day in days if day <= start]
    if since is not None:
        days = [day for day in days if day >= since.date()]

    def outcomes() -> Iterator[Any]:
        for day in days:
            before = after if after is not None and after.startswith(day.isoformat()) else None
            for outcome in ledger.iter_outcomes(state, day, before=before):  # type: ignore[arg-type]
                if since is not None and outcome.finished_at < since:
                    return
                if (code is None or outcome.failure_code == code) and (
                    prefix is None or outcome.key.startswith(prefix)
                ):
                    yield outcome

    stream = outcomes()
    while chunk := list(islice(stream, 100)):
        records = items.get_many([outcome.item_id for outcome in chunk])
        for outcome in chunk:
            record = records.get(outcome.item_id)
            if record is not None and record.state.value == state:
                yield outcome.sort_key, record


# --- item -------------------------------------------------------------------------------------------------------


def parse_target(target: str) -> tuple[str, str] | str:
    """An item id (32 lowercase hex), or (bucket, key) from ``BUCKET/KEY`` or ``s3://BUCKET/KEY``."""
    from videobatch.domain.items import ITEM_ID_LENGTH

    if len(target) == ITEM_ID_LENGTH and all(c in "0123456789abcdef" for c in target):
        return target
    bucket, sep, key = target.removeprefix("s3://").partition("/")
    if not sep or not bucket or not key:
        raise OpsError(f"{target!r} is neither an item id (32 hex) nor BUCKET/KEY")
    return bucket, key


def current_version(context: Context, bucket: str, key: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        version: str | None = context.client("s3").head_object(Bucket=bucket, Key=key).get("VersionId")
    except ClientError:
        return None  # deleted or not readable: the id of the unversioned object is the best guess
    return version


def _item(args: argparse.Namespace, out: TextIO) -> int:
    from videobatch.adapters.dynamodb import DynamoItemRepository
    from videobatch.domain.items import item_id_for

    context = Context(args)
    items = DynamoItemRepository(context.dynamodb, context.table)
    target = parse_target(args.target)
    hint = ""
    if isinstance(target, str):
        item_id = target
    else:
        bucket, key = target
        version = args.version_id or current_version(context, bucket, key)
        item_id = item_id_for(bucket, key, version, args.analysis_profile)
        if not args.version_id:
            hint = f" (current version {version}; pass --version-id for another)" if version else ""
    item = items.get(item_id)
    if item is None:
        raise OpsError(f"no item {item_id} for {args.target}{hint}", EXIT_NOT_FOUND)
    if args.json:
        out.write(item.model_dump_json(indent=2) + "\n")
    else:
        render_item(item, out, context.location.get("RESULTS_BUCKET"))
    return 0


def render_item(item: Any, out: TextIO, results_bucket: str | None) -> None:
    version = f" (version {item.version_id})" if item.version_id else ""
    mode = f" ({item.analysis_mode})" if item.profile_name else ""
    pinned = ", pinned by reprocess" if item.profile_pinned else ""
    rows: list[tuple[str, str]] = [
        ("item", item.item_id),
        ("object", f"s3://{item.bucket}/{item.key}{version}"),
        ("profile", f"{item.profile_name or '-'}{mode}{pinned}"),
        ("state", item.state.value),
        ("attempts", str(item.counted_attempts)),
    ]
    if item.asset_id:
        rows.append(("asset", item.asset_id))
    if item.windows:
        spans = ", ".join(f"{w.start_seconds:g}-{w.end_seconds:g} s" for w in item.windows)
        rows.append(("windows", f"{len(item.windows)}: {spans}"))
    if item.claim_id:
        rows.append(("claim", item.claim_id))
    if item.batch_id:
        rows.append(("batch", item.batch_id))
    rows += [("task", f"{task_id} ({custom_id})") for custom_id, task_id in sorted(item.task_ids.items())]
    if item.result_key:
        rows.append(("result", f"s3://{results_bucket or item.bucket}/{item.result_key}"))
    if item.failure is not None:
        rows.append(("failure", f"{item.failure.code}: {item.failure.message}"))
    if item.state.value == "queued" and item.eligible_at:
        rows.append(("eligible at", item.eligible_at.isoformat()))
    if item.note:
        rows.append(("note", item.note))
    rows += [("registered", item.created_at.isoformat()), ("updated", item.updated_at.isoformat())]
    if item.finished_at:
        rows.append(("finished", item.finished_at.isoformat()))
    for label, value in rows:
        out.write(f"{label:<12} {value}\n")
