"""``videobatch simulate --seed N --days D [--videos-per-day V] [--faults PROFILE]``."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
from typing import Any


def register(subparsers: Any) -> None:
    from videobatch_tools.simulate.profiles import PROFILES  # light: no boto3, no PyAV

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="run days of uploads through the real handlers on the local stack, with faults, checking invariants",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--videos-per-day", type=int, default=30)
    parser.add_argument("--faults", choices=sorted(PROFILES), default="none")
    parser.add_argument("--settle-days", type=float, default=4.0, help="extra days allowed to settle (default 4)")
    parser.add_argument(
        "--schedule-minutes",
        type=int,
        default=5,
        help="rate of the asset checker, flusher and batch checker (template default 1; 5 runs ~4x faster)",
    )
    parser.add_argument("--quiet", action="store_true", help="only the fault summary and the final line")
    parser.add_argument("--verbose", action="store_true", help="keep the pipeline's warnings and the servers' stderr")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from videobatch_tools.simulate.runner import Simulation, SimulationConfig, format_faults

    config = SimulationConfig(
        seed=args.seed,
        days=args.days,
        videos_per_day=args.videos_per_day,
        faults=args.faults,
        settle_days=args.settle_days,
        schedule_minutes=args.schedule_minutes,
    )
    out = sys.stdout
    with contextlib.ExitStack() as stack:
        if not args.verbose:
            # Injected faults make the handlers log errors and the emulator print dropped connections: expected.
            logging.getLogger().setLevel(logging.CRITICAL)
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        result = Simulation(config).run(progress=None if args.quiet else out)
    if not args.quiet:
        for line in result.violations[:50]:
            out.write(f"violation {line}\n")
        out.write(
            f"{result.steps} steps in {result.wall_seconds:.1f} s wall "
            f"({result.steps / max(result.wall_seconds, 1e-9):.1f} steps/s), "
            f"{result.virtual_seconds / 86_400:.2f} virtual days\n"
        )
    if result.boundaries_reached:
        crashed = result.boundaries_reached - len(result.boundaries_not_crashed)
        out.write(f"crash points: {crashed} of {result.boundaries_reached} step boundaries reached were crashed at\n")
        if args.verbose:
            out.writelines(f"  never crashed: {boundary}\n" for boundary in result.boundaries_not_crashed)
    out.write(format_faults(result.faults))
    out.write(result.final_line() + "\n")
    return 0 if result.ok else 1
