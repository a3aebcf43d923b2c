"""``videobatch pause`` / ``resume``: stop new batches, and start them again.

Paused, the flusher sends no new batch (it reads the pipeline's control record before it plans); uploads are still
ingested and their assets checked, running batches are collected, the sweeper repairs. ``status`` shows who paused
and why, and the flusher reports ``PipelinePaused`` (1 while paused) every minute. Both are idempotent: pausing a
paused pipeline changes nothing. The switch is written conditionally, so two operators at once cannot both win.
"""

from __future__ import annotations

import argparse
import getpass
import socket
from typing import Any, TextIO

from videobatch_ops.common import Context, OpsError, add_common_flags, emit, guarded


def register(subparsers: Any) -> None:
    pause = subparsers.add_parser(
        "pause",
        help="no new batches until resume (running batches go on and are collected)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pause.add_argument("--reason", default="", metavar="TEXT", help="why, for whoever looks at status")
    pause.add_argument("--dry-run", action="store_true", help="show the switch as it is and change nothing")
    add_common_flags(pause)
    pause.set_defaults(func=guarded(_pause), paused=True)

    resume = subparsers.add_parser("resume", help="let the flusher send new batches again")
    resume.add_argument("--dry-run", action="store_true", help="show the switch as it is and change nothing")
    add_common_flags(resume)
    resume.set_defaults(func=guarded(_pause), paused=False, reason="")


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _pause(args: argparse.Namespace, out: TextIO) -> int:
    from videobatch.adapters.control import DynamoControlStore
    from videobatch.errors import StaleStateError

    context = Context(args)
    store = DynamoControlStore(context.dynamodb, context.table)
    current = store.load()
    verb = "paused" if args.paused else "running"
    changed = current.paused != args.paused
    if changed and not args.dry_run:
        now = context.clock.now()
        reason = args.reason.strip() or "no reason given"
        new = current.pause(reason, by=_who(), now=now) if args.paused else current.resume(by=_who(), now=now)
        try:
            current = store.save(new, current)
        except StaleStateError as error:
            raise OpsError(
                f"someone else changed the switch meanwhile; look at status and try again ({error})"
            ) from error
    document = {"paused": current.paused, "changed": changed and not args.dry_run, "dry_run": args.dry_run} | {
        "reason": current.reason,
        "changed_by": current.changed_by,
        "changed_at": current.changed_at.isoformat() if current.changed_at else None,
    }

    def render(stream: TextIO) -> None:
        if not changed:
            stream.write(f"already {verb}; nothing changed\n")
        elif args.dry_run:
            stream.write(f"dry run: the pipeline would be {verb}; nothing changed\n")
        elif args.paused:
            stream.write(f"paused ({current.reason}): the next flush sends no batch; running batches go on\n")
        else:
            stream.write("resumed: the next flush sends batches again\n")

    emit(args, out, document, render)
    return 0
