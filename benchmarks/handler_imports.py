"""Cold start of each Lambda handler against a floor, measured round by round so machine load cannot fake a ratio.

Targets, each in a fresh interpreter (nothing in sys.modules; every module from its .pyc, the project's compiled
first as pip compiles site-packages; the OS file cache warm after one uncounted round) that sees what a function
sees: the standard library, the layer's packages (shared/requirements.txt and what they require, linked from this
environment) and the project's package, not the rest of the development environment (with click and pygments
installed, ``import httpx`` loads click for its command line, ~15 ms on both sides of every ratio, none in Lambda):
- each handler module (``functions/<name>/<name>_handler.py``) imported by name from its folder, as the Lambda
  runtime's bootstrap does (``importlib.import_module``), against the import floor ``import boto3, pydantic`` (a
  handler module builds no client and needs no httpx yet);
- each handler imported, its runtime built (the template's environment; the secrets' providers made, none read)
  and its service made with every port that service holds loaded (the runtime builds each adapter on first use:
  resolving the ports the service was given, and theirs, loads what its first invocation loads) and the DynamoDB
  client made: what the first invocation pays before any call, against the floor ``import boto3, httpx, pydantic``
  and one boto3 client (what any handler of this shape pays). The TwelveLabs client makes its httpx client (and
  TLS context) on first use, as boto3 makes its connection pool, so neither side counts one.
Each round measures every target once, in a shuffled order; a target's ratio in a round is its time over its
floor's in the same round, and the reported ratio is the median over rounds (load drifts between rounds, not within
one target's pairing). Only the import (and build) is timed, not interpreter start-up. A reference row, the floor
with one pydantic model defined and used, shows how much of every ratio is pydantic's own first model. The
quartiles of each target's ratios show the machine's noise (on a shared 2-core VM a floor run varies by +-20 %).

Prints a table, then one line:
  handler_imports: max_ratio=... max_ratio_with_runtime=...
Run: .venv/bin/python benchmarks/handler_imports.py [rounds]
"""

from __future__ import annotations

import atexit
import compileall
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# Two floors, each doing the same kind of work as the targets measured against it: a handler module imports boto3
# and pydantic (and builds nothing); a handler with its runtime also has httpx and a client, as the floor.
IMPORT_FLOOR = "floor (import)"
IMPORT_FLOOR_STATEMENT = "import boto3, pydantic"
FLOOR = "floor"
FLOOR_STATEMENT = "import boto3, httpx, pydantic; boto3.client('dynamodb', region_name='us-east-1')"
# For reading the ratios, not part of the summary: ``import pydantic`` is lazy (pydantic 2 loads its machinery at
# the first model), so the floor pays almost nothing for it; this row is the floor plus one model used.
PYDANTIC_USED = "floor + one pydantic model (reference)"
PYDANTIC_USED_STATEMENT = FLOOR_STATEMENT + "\nclass Model(pydantic.BaseModel):\n    seconds: float\nModel(seconds=1.0)"
# As the Lambda runtime's bootstrap (awslambdaric ``_get_handler``) loads a handler: its folder (the task root) on
# sys.path, the module imported by name.
IMPORT_HANDLER = "import importlib, sys\nsys.path.insert(0, {folder!r})\nimportlib.import_module({name!r})"
BUILD_RUNTIME = """
import os
from videobatch.config import Settings
from videobatch import runtime as r
rt = r.build_runtime(Settings.from_env(os.environ))  # the keys from Secrets Manager, as in Lambda
r.set_runtime(rt)
for name in {factories!r}:
    r.load_ports(getattr(rt, name)())
rt.items._client.meta  # the DynamoDB client, made as the first call makes it
"""
# The runtime factories each handler calls (functions/*/*_handler.py: ``get_runtime().<factory>()``).
SERVICE_FACTORIES = {
    "asset_checker": ("asset_check_service",),
    "batch_checker": ("batch_check_service",),
    "flusher": ("flush_service",),
    "ingest": ("ingest_service", "deletion_service"),
    "sweeper": ("sweep_service",),
    "webhook": ("webhook_service",),
}
PROBE = "import time\nt = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)"
# What a Lambda container has in its environment before the handler module is imported (template Globals).
ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "videobatch",
    "POWERTOOLS_METRICS_NAMESPACE": "VideoBatch",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "TABLE_NAME": "t",
    "EVENT_BUS_NAME": "b",
    "VIDEO_BUCKET": "v",
    "TWELVELABS_API_KEY_SECRET": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k",
    "WEBHOOK_SECRET": "arn:aws:secretsmanager:us-east-1:123456789012:secret:w",
}


def targets() -> dict[str, str]:
    found = {IMPORT_FLOOR: IMPORT_FLOOR_STATEMENT, FLOOR: FLOOR_STATEMENT, PYDANTIC_USED: PYDANTIC_USED_STATEMENT}
    for path in sorted(ROOT.glob("functions/*/*_handler.py")):
        statement = IMPORT_HANDLER.format(folder=str(path.parent), name=path.stem)
        found[f"{path.parent.name}"] = statement
        if path.parent.name not in SERVICE_FACTORIES:
            raise SystemExit(f"handler_imports: no service factory listed for {path.parent.name}")
        factories = SERVICE_FACTORIES[path.parent.name]
        found[f"{path.parent.name} + runtime"] = statement + BUILD_RUNTIME.format(factories=factories)
    return found


def link_layer(target: Path) -> None:
    """Link each top-level module of the layer's distributions (and their dependencies') into ``target``."""
    lines = (ROOT / "shared" / "requirements.txt").read_text().splitlines()
    wanted = [Requirement(line).name for line in lines if line.strip() and not line.startswith("#")]
    seen: set[str] = set()
    while wanted:
        name = canonicalize_name(wanted.pop())
        if name in seen:
            continue
        seen.add(name)
        distribution = metadata.distribution(name)
        for text in distribution.requires or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
        for top in {file.parts[0] for file in distribution.files or () if file.parts[0] != ".."}:
            source = Path(str(distribution.locate_file(top)))
            if not top.endswith(".dist-info") and source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)


def probe_environment() -> dict[str, str]:
    # Bytecode on both sides: site-packages has its .pyc from pip, so the project's own modules must have theirs
    # too, or the ratio counts compiling our sources (~70 ms here) against a floor that compiles nothing. With
    # PYTHONDONTWRITEBYTECODE set (as on this machine) the warm-up round could not write them.
    inherited = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return {**inherited, **ENVIRONMENT, "PYTHONPATH": f"{LAYER}{os.pathsep}{ROOT / 'shared'}"}


def compile_sources() -> None:
    for folder in ("shared", "functions"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def measure_seconds(statement: str) -> float:
    output = subprocess.run(
        [sys.executable, "-S", "-c", PROBE.format(statement=statement)],  # -S: no site-packages, no .pth
        check=True,
        capture_output=True,
        text=True,
        env=probe_environment(),
        cwd=ROOT,
    ).stdout
    return float(output.strip().splitlines()[-1])


LAYER = Path(tempfile.mkdtemp(prefix="videobatch-layer-"))  # links only; removed at exit
atexit.register(shutil.rmtree, LAYER, ignore_errors=True)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    link_layer(LAYER)
    statements = targets()
    order = list(statements)
    compile_sources()
    for label in order:  # warm the OS file cache and .pyc files; not counted
        measure_seconds(statements[label])
    times: dict[str, list[float]] = {label: [] for label in order}
    ratios: dict[str, list[float]] = {label: [] for label in order}
    shuffle = random.Random(0)
    for _ in range(rounds):
        shuffle.shuffle(order)
        seconds = {label: measure_seconds(statements[label]) for label in order}
        for label, value in seconds.items():
            times[label].append(value)
            floor = FLOOR if label in (FLOOR, PYDANTIC_USED) or "+ runtime" in label else IMPORT_FLOOR
            ratios[label].append(value / seconds[floor])
    print(f"cold start, {rounds} rounds (every target once per round, shuffled); ratio = time / floor, same round")
    print(f"{IMPORT_FLOOR} = {IMPORT_FLOOR_STATEMENT} (for the handler imports)")
    print(f"{FLOOR} = {FLOOR_STATEMENT} (for the handlers + runtime)")
    for label in statements:
        median_ms = statistics.median(times[label]) * 1000
        low, _, high = statistics.quantiles(ratios[label], n=4) if rounds > 1 else [ratios[label][0]] * 3
        ratio = statistics.median(ratios[label])
        print(f"{label:40s} {median_ms:8.1f} ms  median ratio {ratio:5.2f}x  (quartiles {low:.2f}-{high:.2f})")
    plain = [statistics.median(ratios[label]) for label in statements if "floor" not in label and "+" not in label]
    built = [statistics.median(ratios[label]) for label in statements if "+ runtime" in label]
    print(f"handler_imports: max_ratio={max(plain):.2f} max_ratio_with_runtime={max(built):.2f}")


if __name__ == "__main__":
    main()
