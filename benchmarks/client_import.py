"""Cold-start import cost of the project's TwelveLabs client, against its floor and the official SDK.

Each measurement runs in a fresh interpreter (nothing cached in sys.modules); the median of several runs is
reported. On a shared machine the wall times swing with the load, so the project's own share is also reported as
the self time of its modules under ``-X importtime`` (the part a change to the client can move; httpx and pydantic
are excluded). Run: .venv/bin/python benchmarks/client_import.py [repetitions]
"""

from __future__ import annotations

import statistics
import subprocess
import sys

TARGETS = {
    "floor: import httpx, pydantic": "import httpx, pydantic",
    "floor: import httpx; from pydantic import BaseModel": "import httpx; from pydantic import BaseModel",
    "videobatch.twelvelabs.client": "import videobatch.twelvelabs.client",
    "client + first model use": (
        "import videobatch.twelvelabs.client as c; c.Page[c.Batch].model_validate({'data': []})"
    ),
    "official SDK: import twelvelabs": "import twelvelabs",
}
PROBE = "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"


def measure_seconds(statement: str) -> float:
    output = subprocess.run(
        [sys.executable, "-c", PROBE.format(statement=statement)], check=True, capture_output=True, text=True
    ).stdout
    return float(output.strip().splitlines()[-1])


def own_modules_seconds() -> float:
    """Self time of the ``videobatch`` modules while importing the client, from ``-X importtime``."""
    stderr = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import videobatch.twelvelabs.client"],
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    microseconds = 0
    for line in stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip().startswith("videobatch"):
            microseconds += int(parts[0].split(":")[1])
    return microseconds / 1_000_000


def main() -> None:
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    medians: dict[str, float] = {}
    for label, statement in TARGETS.items():
        measure_seconds(statement)  # warm the OS file cache and .pyc files; not counted
        medians[label] = statistics.median(measure_seconds(statement) for _ in range(repetitions))
        print(f"{label:55s} {medians[label] * 1000:8.1f} ms  (median of {repetitions})")
    floor = medians["floor: import httpx, pydantic"]
    client = medians["videobatch.twelvelabs.client"]
    sdk = medians["official SDK: import twelvelabs"]
    print(
        f"client / floor(import httpx, pydantic) = {client / floor:.2f}x; client adds {(client - floor) * 1000:.1f} ms"
    )
    print(f"official SDK / client = {sdk / client:.1f}x; SDK costs {(sdk - client) * 1000:.1f} ms more")
    own = statistics.median(own_modules_seconds() for _ in range(repetitions))
    print(f"the project's own modules (self time, -X importtime): {own * 1000:.1f} ms (median of {repetitions})")


if __name__ == "__main__":
    main()
