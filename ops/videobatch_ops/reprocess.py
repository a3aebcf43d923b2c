"""``videobatch reprocess``: analyse done videos again with another analysis profile.

Each reprocess is an item of its own, ``item_id_for(bucket, key, version, profile)``, created by ingest from the
upload event this command sends (with the profile pinned in it), so the analysis follows the pipeline's whole path
(a new asset, a batch, the result); its result is stored beside the first one, with the profile in its address
(``<ResultsPrefix><key>.version-<v>.profile-<NAME>.json``, latest pointer ``latest/<key>.profile-<NAME>.json``).
Running it twice reprocesses nothing twice: the second run finds the items. Look one up with
``videobatch item BUCKET/KEY --analysis-profile NAME``.
"""

from __future__ import annotations

import argparse
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
    parse_s3_uri,
)
from videobatch_ops.render import Progress, table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reprocess",
        help="analyse done videos again with another analysis profile (each result kept)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("target", nargs="?", help="one video: KEY, BUCKET/KEY or s3://BUCKET/KEY (its latest version)")
    what.add_argument("--prefix", metavar="PREFIX", help="every done video whose key starts with PREFIX")
    parser.add_argument(
        "--analysis-profile",
        required=True,
        metavar="NAME",
        help="the analysis profile to use (a profile of the stack's profiles, by name)",
    )
    parser.add_argument("--limit", type=int, default=10_000, metavar="N", help="at most N videos (default 10000)")
    add_change_flags(parser)
    add_common_flags(parser, settings_overrides=True)
    parser.set_defaults(func=guarded(_reprocess))


def stack_profiles(context: Context) -> Any:
    """The profiles the functions use: the stack's PROFILES_SOURCE when it has one, else the packaged file."""
    from videobatch.adapters.profiles_source import profile_source
    from videobatch.domain.profiles import load_default_profiles

    source = context.location.get("PROFILES_SOURCE")
    if not source:
        return load_default_profiles()
    loaded = profile_source(source, context.session, max_age_seconds=0, results_prefix="\0")
    return loaded.current(context.metrics)


def _reprocess(args: argparse.Namespace, out: TextIO) -> int:
    from videobatch.errors import ConfigurationError
    from videobatch_ops.requeue import operations

    if args.limit < 1:
        raise OpsError(f"--limit must be at least 1, got {args.limit}")
    context = Context(args, with_function=bool(args.stack))
    try:
        bucket = context.location.require("VIDEO_BUCKET")
        try:
            profile = stack_profiles(context).by_name(args.analysis_profile)
        except ConfigurationError as error:
            raise OpsError(f"--analysis-profile: {error}") from error
        ops = operations(context, with_api=False)
        if args.target is not None:
            key = _single_key(args.target, bucket)
            versions = [v for v in ops.latest_versions(bucket, key) if v.key == key]
            if not versions:
                raise OpsError(f"no object s3://{bucket}/{key}", EXIT_NOT_FOUND)
        else:
            prefix = checked_prefix(args.prefix)
            assert prefix is not None
            versions = list(islice(ops.latest_versions(bucket, prefix), args.limit))
        plan = list(ops.reprocess_plan(bucket, versions, profile))
        if not plan:
            raise OpsError(f"no object under s3://{bucket}/{args.prefix}", EXIT_NOT_FOUND)
        to_send = [listed for listed, what in plan if what == "send"]
        sent = 0
        if to_send and not args.dry_run:
            confirm(args, len(to_send), f"reprocess these videos with {profile.name}")
            progress = Progress("videos sent to ingest", total=len(to_send))
            for start in range(0, len(to_send), 10):
                chunk = to_send[start : start + 10]
                sent += ops.send([ops.upload_event(bucket, v, pinned=profile.name) for v in chunk])
                progress.update(sent)
            progress.finish()
    finally:
        context.close()
    rows = [{"key": v.key, "version_id": v.version_id, "action": what} for v, what in plan]
    document = {"profile": profile.name, "dry_run": args.dry_run, "plan": rows, "sent": sent}

    def render(stream: TextIO) -> None:
        table(stream, ["key", "version", "what"], [[r["key"], r["version_id"], r["action"]] for r in rows])
        if args.dry_run:
            stream.write(f"\ndry run: {len(to_send)} of {len(plan)} would be reprocessed with {profile.name}\n")
        else:
            stream.write(f"\nsent {sent} of {len(plan)} to ingest, to be analysed with {profile.name}\n")

    emit(args, out, document, render)
    return 0 if args.dry_run or sent else EXIT_NOT_FOUND


def _single_key(target: str, bucket: str) -> str:
    if target.startswith("s3://") or target.startswith(f"{bucket}/"):
        named, key = parse_s3_uri(target)
        if named != bucket:
            raise OpsError(f"{target}: this stack ingests s3://{bucket}, not s3://{named}")
        if not key:
            raise OpsError(f"{target} names no key")
        return key
    if not target.strip():
        raise OpsError("the key is empty")
    return target
