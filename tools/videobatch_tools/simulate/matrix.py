"""Many simulations at once: API variants x fault profiles x seeds, and the table of their outcomes.

``videobatch simulate --api-variant all --faults none,api,all --seeds 1,2`` runs one simulation per cell and seed
(the emulator switched to one variant at a time, plus ``default``: no variant) and prints, per variant and profile,
the done / failed / pending items and the invariant violations summed over the seeds. A cell is green when every
seed settled (pending 0) with no violation.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Final

from twelvelabs_emulator.variants import Variant
from videobatch_tools.simulate.runner import COUNTED, SimulationConfig, SimulationResult, run_case

DEFAULT_VARIANT: Final = "default"  # the emulator as documented, no variant


def variant_sets(names: Sequence[str]) -> list[tuple[str, ...]]:
    """``--api-variant`` values -> the variant sets to run: ``all`` is every variant alone plus ``default``;
    otherwise the named variants together (comma-separated or repeated), one run."""
    if not names:
        return [()]
    if "all" in names:
        return [(), *((variant.value,) for variant in Variant)]
    chosen: list[str] = []
    for name in names:
        chosen += [part for part in name.split(",") if part and part != DEFAULT_VARIANT]
    return [tuple(Variant(name).value for name in dict.fromkeys(chosen))]


@dataclass(frozen=True)
class Cell:
    variant: str
    profile: str
    seeds: int
    done: int
    failed: int
    pending: int
    violations: int

    @property
    def green(self) -> bool:
        return self.pending == 0 and self.violations == 0


def label(variants: Sequence[str]) -> str:
    return "+".join(variants) if variants else DEFAULT_VARIANT


def cases(
    base: SimulationConfig, *, variants: Iterable[tuple[str, ...]], profiles: Iterable[str], seeds: Iterable[int]
) -> list[SimulationConfig]:
    # Seed by seed, so a matrix stopped early has covered every cell once before it repeats any.
    variants = list(variants)
    profiles = list(profiles)
    return [
        replace(base, api_variants=chosen, faults=profile, seed=seed)
        for seed in seeds
        for profile in profiles
        for chosen in variants
    ]


def run_all(configs: Sequence[SimulationConfig], *, jobs: int, quiet: bool = True) -> Iterator[SimulationResult]:
    """Every case, in worker processes when ``jobs`` > 1 (one simulation is bound by one core), yielded in the
    order given as each is done (a long matrix shows its progress)."""
    if jobs <= 1:
        yield from (run_case(config) for config in configs)
        return
    context = multiprocessing.get_context("spawn")
    initializer = _silence if quiet else None
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=initializer) as pool:
        yield from pool.map(run_case, configs)


def _silence() -> None:
    """A worker's handlers log every injected fault and the wiring every failed invocation: expected noise."""
    logging.getLogger().setLevel(logging.CRITICAL)
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the worker's for its whole life


def tabulate(results: Iterable[SimulationResult]) -> list[Cell]:
    cells: dict[tuple[str, str], list[SimulationResult]] = {}
    for result in results:
        cells.setdefault((label(result.config.api_variants), result.config.faults), []).append(result)
    return [
        Cell(
            variant=variant,
            profile=profile,
            seeds=len(runs),
            done=sum(r.counts["done"] for r in runs),
            failed=sum(r.counts["failed"] for r in runs),
            pending=sum(r.counts["pending"] for r in runs),
            violations=sum(r.counts[kind] for r in runs for kind in COUNTED),
        )
        for (variant, profile), runs in cells.items()
    ]


def format_table(cells: Sequence[Cell]) -> str:
    header = ("variant", "profile", "seeds", "done", "failed", "pending", "violations", "ok")
    rows = [header] + [
        (c.variant, c.profile, str(c.seeds), str(c.done), str(c.failed), str(c.pending), str(c.violations),
         "yes" if c.green else "NO")
        for c in cells
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"
