"""``videobatch redrive``: move the ingest dead-letter queue's messages back to the ingest queue.

After the cause is fixed (the function's logs say what it was), SQS moves the messages itself
(``StartMessageMoveTask`` from the dead-letter queue to the ingest queue); this command starts the move, follows
it for up to ``--wait-seconds`` and reports the counts. Ingest is idempotent (the item id is derived from bucket,
key and version), so a redelivered event resumes its item or does nothing. A move already running is reported,
not started twice.
"""

from __future__ import annotations

import argparse
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


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "redrive",
        help="move the ingest dead-letter queue back to the ingest queue (SQS message move task)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--max-per-second", type=int, metavar="N", help="move at most N messages a second (default: SQS's pace)"
    )
    parser.add_argument(
        "--wait-seconds", type=float, default=60.0, metavar="N", help="follow the move this long (default 60)"
    )
    add_change_flags(parser)
    add_common_flags(parser)
    parser.set_defaults(func=guarded(_redrive))


def _arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def _depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def _redrive(args: argparse.Namespace, out: TextIO) -> int:
    if args.max_per_second is not None and not 1 <= args.max_per_second <= 500:
        raise OpsError(f"--max-per-second must be 1..500 (SQS's range), got {args.max_per_second}")
    if args.wait_seconds < 0:
        raise OpsError(f"--wait-seconds must not be negative, got {args.wait_seconds:g}")
    context = Context(args)
    sqs = context.client("sqs")
    source_url = context.location.require("DEAD_LETTER_QUEUE_URL")
    target_url = context.location.require("INGEST_QUEUE_URL")
    source, target = _arn(sqs, source_url), _arn(sqs, target_url)
    running = [t for t in sqs.list_message_move_tasks(SourceArn=source).get("Results", []) if t["Status"] == "RUNNING"]
    waiting = _depth(sqs, source_url)
    task: dict[str, Any] | None = running[0] if running else None
    started = False
    if task is None:
        if waiting == 0:
            raise OpsError("the dead-letter queue is empty: nothing to redrive", EXIT_NOT_FOUND)
        if not args.dry_run:
            confirm(args, waiting, "move these dead-lettered upload events back to the ingest queue")
            options: dict[str, Any] = {"SourceArn": source, "DestinationArn": target}
            if args.max_per_second is not None:
                options["MaxNumberOfMessagesPerSecond"] = args.max_per_second
            sqs.start_message_move_task(**options)
            started = True
    if started or task is not None:
        task = _follow(sqs, source, args.wait_seconds)
    document = {
        "dead_letter_queue": source,
        "destination": target,
        "messages_waiting": waiting,
        "dry_run": args.dry_run,
        "started": started,
        "task": task,
    }

    def render(stream: TextIO) -> None:
        if args.dry_run and task is None:
            stream.write(f"dry run: {waiting} messages would be moved to the ingest queue; nothing changed\n")
            return
        assert task is not None
        moved = task.get("ApproximateNumberOfMessagesMoved", 0)
        total = task.get("ApproximateNumberOfMessagesToMove", waiting)
        prefix = "started" if started else "a move was already running"
        stream.write(f"{prefix}: {task['Status'].lower()}, {moved} of {total} messages moved back to ingest\n")
        if task.get("FailureReason"):
            stream.write(f"failure: {task['FailureReason']}\n")

    emit(args, out, document, render)
    return 0 if task is None or task.get("Status") != "FAILED" else 2


def _follow(sqs: Any, source: str, wait_seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_seconds
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=source, MaxResults=1).get("Results", [])
        task: dict[str, Any] = dict(tasks[0]) if tasks else {"Status": "UNKNOWN"}
        if task["Status"] != "RUNNING" or time.monotonic() >= deadline:
            return task
        time.sleep(min(2.0, max(deadline - time.monotonic(), 0.0)))
