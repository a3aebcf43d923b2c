"""``videobatch simulate --seed N --days D [--videos-per-day V] [--faults PROFILE] [--backend memory|moto]
[--api-variant NAME|all]``.

One seed, one profile and one variant set: one simulation, its faults and its final line. Several (``--seeds``,
comma-separated ``--faults``, ``--api-variant all``): one simulation per combination (``--jobs`` in parallel),
each final line, then the variant x profile table (``matrix``), also written to ``--matrix-out``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    from videobatch_tools.simulate.profiles import PROFILES  # light: no boto3, no PyAV

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="run days of uploads through the real handlers on the local stack, with faults, checking invariants",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", help="comma-separated seeds, one run each (instead of --seed)")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--videos-per-day", type=int, default=30)
    parser.add_argument(
        "--faults",
        default="none",
        help=f"fault profile, or several comma-separated (one run each): {', '.join(PROFILES)}",
    )
    parser.add_argument(
        "--backend",
        choices=("memory", "moto"),
        default="memory",
        help="memory: in-memory ports and the emulator in process (fast, default); moto: moto server + HTTP emulator",
    )
    parser.add_argument(
        "--api-variant",
        action="append",
        default=[],
        metavar="NAME|all",
        help="emulator variant(s) to run under (repeat or comma-separate to combine); all: each alone + default",
    )
    parser.add_argument("--settle-days", type=float, default=4.0, help="extra days allowed to settle (default 4)")
    parser.add_argument(
        "--schedule-minutes",
        type=int,
        default=5,
        help="rate of the asset checker, flusher and batch checker (template default 1; 5 runs ~4x faster)",
    )
    parser.add_argument(
        "--max-items-per-batch",
        type=int,
        default=12,
        help="MaxItemsPerBatch (default 12, so a few dozen videos a day exercise the packing limits and slots)",
    )
    parser.add_argument("--progress-hours", type=float, default=24.0, help="virtual hours between progress lines")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for several runs (default 1)")
    parser.add_argument("--matrix-out", type=Path, help="write the variant x profile table here")
    parser.add_argument("--list-profiles", action="store_true", help="the fault profiles and their backend limits")
    parser.add_argument("--quiet", action="store_true", help="only the fault summary and the final line")
    parser.add_argument("--verbose", action="store_true", help="keep the pipeline's warnings and the servers' stderr")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from videobatch_tools.simulate.profiles import PROFILES

    if args.list_profiles:
        return _list_profiles()
    profiles = [name for name in args.faults.split(",") if name]
    unknown = [name for name in profiles if name not in PROFILES]
    if unknown or not profiles:
        sys.stderr.write(f"simulate: unknown fault profile {unknown or args.faults!r}; one of {', '.join(PROFILES)}\n")
        return 2
    from videobatch_tools.simulate.matrix import variant_sets
    from videobatch_tools.simulate.runner import SimulationConfig

    try:
        variants = variant_sets(args.api_variant)
    except ValueError as error:
        sys.stderr.write(f"simulate: {error}\n")
        return 2
    seeds = [int(seed) for seed in args.seeds.split(",")] if args.seeds else [args.seed]
    base = SimulationConfig(
        seed=seeds[0],
        days=args.days,
        videos_per_day=args.videos_per_day,
        faults=profiles[0],
        settle_days=args.settle_days,
        schedule_minutes=args.schedule_minutes,
        max_items_per_batch=args.max_items_per_batch,
        progress_hours=args.progress_hours,
        backend=args.backend,
        api_variants=variants[0],
    )
    with contextlib.ExitStack() as stack:
        if not args.verbose:
            # Injected faults make the handlers log errors and the emulator print dropped connections: expected.
            logging.getLogger().setLevel(logging.CRITICAL)
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        if len(variants) == 1 and len(profiles) == 1 and len(seeds) == 1:
            return _one(base, args)
        return _many(base, args, variants=variants, profiles=profiles, seeds=seeds)


def _list_profiles() -> int:
    from videobatch_tools.simulate.runner import BACKEND_LIMITS

    out = sys.stdout
    out.write("profile   on the memory backend (against moto)\n")
    for name, note in BACKEND_LIMITS.items():
        out.write(f"{name:9} {note}\n")
    return 0


def _one(config: Any, args: argparse.Namespace) -> int:
    from videobatch_tools.simulate.runner import Simulation, format_faults

    out = sys.stdout
    result = Simulation(config).run(progress=None if args.quiet else out)
    if not args.quiet:
        for line in result.violations[:50]:
            out.write(f"violation {line}\n")
        out.write(
            f"{result.config.backend} backend: {result.steps} steps in {result.wall_seconds:.1f} s wall "
            f"({result.steps_per_second:.1f} steps/s over the {result.loop_seconds:.1f} s loop), "
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


def _many(
    base: Any, args: argparse.Namespace, *, variants: list[tuple[str, ...]], profiles: list[str], seeds: list[int]
) -> int:
    from videobatch_tools.simulate.matrix import cases, format_table, run_all, tabulate

    out = sys.stdout
    results = []
    configs = cases(base, variants=variants, profiles=profiles, seeds=seeds)
    for result in run_all(configs, jobs=args.jobs, quiet=not args.verbose):
        results.append(result)
        out.write(result.final_line() + "\n")
        if not args.quiet:
            out.writelines(f"  violation {line}\n" for line in result.violations[:10])
        out.flush()
        if args.matrix_out is not None:  # the table so far, so a run stopped early leaves what it found
            args.matrix_out.write_text(format_table(tabulate(results)))
    cells = tabulate(results)
    table = format_table(cells)
    out.write(table)
    if args.matrix_out is not None:
        args.matrix_out.write_text(table)
    return 0 if all(cell.green for cell in cells) else 1
