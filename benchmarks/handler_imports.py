"""Cold-start import time of each Lambda handler module, against the floor ``import boto3, httpx, pydantic``.

Each handler file (``functions/<name>/<name>_handler.py``) is imported by path, as the Lambda runtime does, in a
fresh interpreter (nothing cached in sys.modules; .pyc files are warm after the first, uncounted, run). The time
is the median of several runs and covers only the import (interpreter start-up excluded). A few reference points
(the floor, AWS Lambda Powertools, the shared runtime module) show where the time goes.
Run: .venv/bin/python benchmarks/handler_imports.py [repetitions]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = "floor: import boto3, httpx, pydantic"
REFERENCES = {
    FLOOR: "import boto3, httpx, pydantic",
    "aws_lambda_powertools Logger + Metrics": "from aws_lambda_powertools import Logger, Metrics",
    "floor + powertools": "import boto3, httpx, pydantic; from aws_lambda_powertools import Logger, Metrics",
    "videobatch.runtime (every service + adapter)": "import videobatch.runtime",
}
IMPORT_BY_FILE = (
    "import importlib.util, sys; "
    "spec = importlib.util.spec_from_file_location({name!r}, {path!r}); "
    "module = importlib.util.module_from_spec(spec); sys.modules[{name!r}] = module; spec.loader.exec_module(module)"
)
PROBE = "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
# What a Lambda container has in its environment before the handler module is imported.
ENVIRONMENT = {"POWERTOOLS_SERVICE_NAME": "videobatch", "POWERTOOLS_METRICS_NAMESPACE": "VideoBatch"}


def handler_statements() -> dict[str, str]:
    statements: dict[str, str] = {}
    for path in sorted(ROOT.glob("functions/*/*_handler.py")):
        statements[f"{path.parent.name} handler"] = IMPORT_BY_FILE.format(name=path.stem, path=str(path))
    return statements


def measure_seconds(statement: str) -> float:
    output = subprocess.run(
        [sys.executable, "-c", PROBE.format(statement=statement)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **ENVIRONMENT},
        cwd=ROOT,
    ).stdout
    return float(output.strip().splitlines()[-1])


def main() -> None:
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    medians: dict[str, float] = {}
    for label, statement in {**REFERENCES, **handler_statements()}.items():
        measure_seconds(statement)  # warm the OS file cache and .pyc files; not counted
        medians[label] = statistics.median(measure_seconds(statement) for _ in range(repetitions))
    floor = medians[FLOOR]
    print(f"cold import, median of {repetitions} fresh interpreters each; ratio = time / ({FLOOR.split(': ')[1]})")
    for label, seconds in medians.items():
        print(f"{label:48s} {seconds * 1000:8.1f} ms  {seconds / floor:5.2f}x  (+{(seconds - floor) * 1000:6.1f} ms)")


if __name__ == "__main__":
    main()
