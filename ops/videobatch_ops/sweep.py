"""``videobatch sweep``: run the sweeper now (reconcile unfinished submissions, repair stuck items and batches).

By default it invokes the deployed sweeper function (``lambda:InvokeFunction``, synchronously), so the sweep runs
with the function's own role, settings and metrics, exactly as the scheduled one does, and prints the summary it
returned. ``--local`` runs the sweeper service here instead, with your credentials and the function's settings
(read from its environment with --stack; ``--set NAME=VALUE`` overrides one), printing the metrics it would have
sent: for when the function itself cannot run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TextIO

from videobatch_ops.common import Context, OpsError, add_common_flags, emit, function_configuration, guarded


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run the sweeper now: invoke the deployed function (default) or, with --local, here",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--local", action="store_true", help="run the sweeper service in this process instead of invoking the function"
    )
    add_common_flags(parser, settings_overrides=True)
    parser.set_defaults(func=guarded(_sweep))


def _sweep(args: argparse.Namespace, out: TextIO) -> int:
    if args.local:
        return _sweep_here(args, out)
    if args.settings:
        raise OpsError("--set changes the settings of a sweep run here: add --local (the function has its own)")
    context = Context(args)
    name = context.location.get("SWEEPER_FUNCTION")
    if name is None and args.stack:
        name = function_configuration(context.session, args.stack, "SweeperFunction")[0]
    if name is None:
        raise OpsError("SWEEPER_FUNCTION is unknown: pass --stack NAME or --sweeper-function (or --local)")
    response = context.client("lambda").invoke(
        FunctionName=name, InvocationType="RequestResponse", Payload=json.dumps({"source": "videobatch.ops"})
    )
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = payload.get("errorMessage") if isinstance(payload, Mapping) else payload
        error_type = payload.get("errorType", "") if isinstance(payload, Mapping) else ""
        raise OpsError(f"the sweeper function {name} failed: {error_type}: {message}")
    summary = dict(payload) if isinstance(payload, Mapping) else {"returned": payload}
    document = {"function": name, "summary": summary}

    def render(stream: TextIO) -> None:
        stream.write(f"swept by function {name}\n")
        for key, text in _flatten(summary):
            stream.write(f"  {key:<40} {text}\n")

    emit(args, out, document, render)
    return 0


def _sweep_here(args: argparse.Namespace, out: TextIO) -> int:
    context = Context(args, with_function=bool(args.stack))
    try:
        runtime = context.runtime()
        summary = runtime.sweep_service().run()
    finally:
        context.close()
    counts = summary.model_dump(mode="json")
    document = {"summary": counts, "metrics": context.metrics.recorded}

    def render(stream: TextIO) -> None:
        stream.write(f"swept table {runtime.settings.table_name} here\n")
        for key, text in _flatten(counts):
            stream.write(f"  {key:<40} {text}\n")
        for metric, value in sorted(context.metrics.recorded.items()):
            stream.write(f"  metric {metric:<33} {value:g}\n")

    emit(args, out, document, render)
    return 0


def _flatten(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested summaries (the reconciler's inside the sweeper's) as ``outer.inner`` rows; lists joined."""
    rows: list[tuple[str, str]] = []
    for name, value in values.items():
        if isinstance(value, Mapping):
            rows += _flatten(value, f"{prefix}{name}.")
        elif isinstance(value, list):
            rows.append((f"{prefix}{name}", ", ".join(map(str, value)) or "-"))
        else:
            rows.append((f"{prefix}{name}", str(value)))
    return rows
