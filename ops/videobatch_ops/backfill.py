"""``videobatch backfill s3://BUCKET/PREFIX``: send objects already in the bucket through ingest, as uploads.

The bucket is listed by version (``ListObjectVersions``, page by page): the latest version of each key (every
version with ``--all-versions``), skipping delete markers and what they hide, folder markers and the results prefix.
For each, the "Object Created" event S3 would have sent goes to the ingest queue, at ``--rate`` events a second, so
ingest treats it exactly as an upload (same limits, retries and dead-letter queue). Objects whose item exists
already are not sent (``--resend`` sends them anyway); either way the item ids are deterministic (bucket, key,
version), so running it twice creates nothing twice. An empty prefix means the whole bucket: say so with
``--whole-bucket``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from itertools import islice
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
    parse_s3_uri,
)
from videobatch_ops.render import Progress


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="send objects already in the bucket through ingest, as upload events (safe to run twice)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("uri", metavar="s3://BUCKET/PREFIX", help="the stack's video bucket and a key prefix")
    parser.add_argument("--whole-bucket", action="store_true", help="allow an empty prefix: every object")
    parser.add_argument("--all-versions", action="store_true", help="every version of each key, not only the latest")
    parser.add_argument("--resend", action="store_true", help="send objects whose item exists already too")
    parser.add_argument("--rate", type=float, default=50.0, metavar="N", help="at most N events a second (default 50)")
    add_change_flags(parser)
    add_common_flags(parser, settings_overrides=True)
    parser.set_defaults(func=guarded(_backfill))


def _backfill(args: argparse.Namespace, out: TextIO) -> int:
    bucket, prefix = parse_s3_uri(args.uri)
    if not prefix and not args.whole_bucket:
        raise OpsError(f"{args.uri} has an empty prefix, i.e. the whole bucket: pass --whole-bucket to mean it")
    if not 0 < args.rate <= 3000:
        raise OpsError(f"--rate must be in (0, 3000] events a second, got {args.rate:g}")
    context = Context(args, with_function=bool(args.stack))
    try:
        stack_bucket = context.location.require("VIDEO_BUCKET")
        if bucket != stack_bucket:
            raise OpsError(f"s3://{bucket} is not this stack's video bucket (s3://{stack_bucket}): ingest refuses it")
        counts = _Backfill(context, args, bucket, prefix).run()
    finally:
        context.close()
    document: dict[str, Any] = {"bucket": bucket, "prefix": prefix, "dry_run": args.dry_run, **counts}

    def render(stream: TextIO) -> None:
        head = "dry run: " if args.dry_run else ""
        what = "would be sent" if args.dry_run else "sent"
        stream.write(
            f"{head}s3://{bucket}/{prefix}: {counts['listed']} objects listed, {counts['known']} ingested already, "
            f"{counts['to_send'] if args.dry_run else counts['sent']} {what} to ingest\n"
        )

    emit(args, out, document, render)
    if counts["listed"] == 0:
        return EXIT_NOT_FOUND
    return 0


class _Backfill:
    """Two passes over the listing: one to count (to confirm, and to size the progress bar; a listing costs a
    request per 1,000 objects), one to send, paced at ``--rate``."""

    def __init__(self, context: Context, args: argparse.Namespace, bucket: str, prefix: str) -> None:
        from videobatch_ops.requeue import operations

        self._ops = operations(context, with_api=False)
        self._args = args
        self._bucket = bucket
        self._prefix = prefix

    def chunks(self, counts: dict[str, int]) -> Iterator[list[Any]]:
        """Versions to send, ten at a time (SQS's batch), known items left out unless --resend."""
        from videobatch.domain.items import item_id_for

        bucket = self._bucket
        versions = self._ops.latest_versions(bucket, self._prefix, all_versions=self._args.all_versions)
        while chunk := list(islice(versions, 10)):
            counts["listed"] += len(chunk)
            if not self._args.resend:
                known = self._ops.items.get_many([item_id_for(bucket, v.key, v.version_id) for v in chunk])
                fresh = [v for v in chunk if item_id_for(bucket, v.key, v.version_id) not in known]
                counts["known"] += len(chunk) - len(fresh)
                chunk = fresh
            if chunk:
                yield chunk

    def run(self) -> dict[str, int]:
        counts = {"listed": 0, "known": 0, "to_send": 0, "sent": 0}
        counts["to_send"] = sum(len(chunk) for chunk in self.chunks(counts))
        if not counts["to_send"] or self._args.dry_run:
            return counts
        confirm(self._args, counts["to_send"], f"send these objects under s3://{self._bucket}/{self._prefix} to ingest")
        progress = Progress("objects sent to ingest", total=counts["to_send"])
        interval = 1.0 / self._args.rate
        next_send = time.monotonic()
        again = {"listed": 0, "known": 0}
        for chunk in self.chunks(again):
            delay = next_send - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            counts["sent"] += self._ops.send([self._ops.upload_event(self._bucket, v) for v in chunk])
            next_send = time.monotonic() + interval * len(chunk)
            progress.update(counts["sent"])
        progress.finish()
        return counts
