"""Steps per second of ``videobatch simulate`` on the memory backend against the moto backend, same seed, one run.

Each round runs the same simulation (seed, days, videos, fault profile, schedule) once on each backend, in an order
alternating round by round, so machine load drifts across both rather than favouring one. A run's speed is its
steps over the wall time of its stepping loop alone (set-up, that is moto's server, sample media and imports, is
not counted, nor is it what a longer run spends its time on). The reported figures are medians over rounds, and the
ratio is the median of the per-round ratios. The final counts of both backends are printed beside each other: the
same seed must give the same counts (``tests/simulation`` asserts it for a short horizon).

The default profile is ``none``: under ``api`` the moto backend also sleeps for real through every latency fault
(1.2 s each), which the memory backend turns into an immediate timeout, and the ratio would flatter the memory
backend with waiting rather than work.

Prints a line per run, then one line:
  simulation_speed memory_steps_per_s=... moto_steps_per_s=... ratio=...
Run: .venv/bin/python benchmarks/simulation_speed.py [--rounds N] [--days D] [--videos-per-day V] [--faults P]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import statistics
import sys

from videobatch_tools.simulate.runner import Simulation, SimulationConfig, SimulationResult

COUNTS = ("done", "failed", "pending", "lost", "double_submitted", "limit_violation", "stale_overwrite")


def run(config: SimulationConfig) -> SimulationResult:
    with contextlib.redirect_stderr(io.StringIO()):
        return Simulation(config).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--videos-per-day", type=int, default=15)
    parser.add_argument("--faults", default="none")
    parser.add_argument("--schedule-minutes", type=int, default=5)
    args = parser.parse_args(argv)
    logging.getLogger().setLevel(logging.CRITICAL)  # injected faults make handlers log errors: expected

    speeds: dict[str, list[float]] = {"memory": [], "moto": []}
    ratios: list[float] = []
    counts: dict[str, tuple[int, ...]] = {}
    for round_number in range(args.rounds):
        order = ("memory", "moto") if round_number % 2 == 0 else ("moto", "memory")
        this_round: dict[str, float] = {}
        for backend in order:
            config = SimulationConfig(
                seed=args.seed,
                days=args.days,
                videos_per_day=args.videos_per_day,
                faults=args.faults,
                schedule_minutes=args.schedule_minutes,
                backend=backend,
            )
            result = run(config)
            this_round[backend] = result.steps_per_second
            speeds[backend].append(result.steps_per_second)
            counts[backend] = tuple(result.counts[name] for name in COUNTS)
            print(
                f"round {round_number + 1} {backend:6}: {result.steps} steps in {result.loop_seconds:.2f} s "
                f"({result.steps_per_second:.1f} steps/s; {result.wall_seconds:.1f} s with set-up)  "
                f"{result.final_line()}",
                flush=True,
            )
        ratios.append(this_round["memory"] / max(this_round["moto"], 1e-9))
    same = counts["memory"] == counts["moto"]
    print(f"final counts {', '.join(COUNTS)}: memory={counts['memory']} moto={counts['moto']} same={same}")
    memory, moto = statistics.median(speeds["memory"]), statistics.median(speeds["moto"])
    print(
        f"simulation_speed memory_steps_per_s={memory:.1f} moto_steps_per_s={moto:.1f} "
        f"ratio={statistics.median(ratios):.1f} same_counts={same}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
