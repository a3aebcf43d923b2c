"""Driving the operators' CLI against a local stack: the stack published to CloudFormation in moto (so every
command finds it by ``--stack``), the commands run in-process on the stack's virtual clock, their stdout, stderr
and exit code captured."""

from __future__ import annotations

import io
import json
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any

import httpx

from videobatch_ops import cli
from videobatch_ops.common import use_clock
from videobatch_tools.localstack.pipeline import LocalPipeline


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Ops:
    def __init__(self, pipeline: LocalPipeline) -> None:
        self.pipeline = pipeline
        self.stack = pipeline.publish_stack()

    def run(self, *argv: str, stdin: str | None = None) -> Result:
        """``videobatch ARGV --stack NAME`` (the stack flag appended unless ARGV names one or says --no-stack)."""
        args = list(argv)
        if "--stack" not in args and "--no-stack" not in args:
            args += ["--stack", self.stack]
        args = [a for a in args if a != "--no-stack"]
        out, err = io.StringIO(), io.StringIO()
        with use_clock(self.pipeline.clock), redirect_stdout(out), redirect_stderr(err):
            try:
                code = cli.main(args)
            except SystemExit as exit_:  # argparse refuses a bad flag itself (exit code 2), --help/--version (0)
                code = int(exit_.code or 0)
        return Result(code, out.getvalue(), err.getvalue())

    def ok(self, *argv: str) -> Result:
        result = self.run(*argv)
        assert result.code == 0, result
        return result

    def status(self) -> dict[str, Any]:
        document: dict[str, Any] = self.ok("status", "--json").json()
        return document

    def counts(self) -> dict[str, int]:
        """state -> count, the queued modes summed into ``queued``."""
        counts: Counter[str] = Counter()
        for entry in self.status()["states"]:
            counts[entry["state"].split(" ")[0]] += entry["count"]
        return dict(counts)

    def quiet_step(self) -> None:
        with redirect_stdout(io.StringIO()):  # the handlers' EMF lines
            self.pipeline.wiring.step()


def emulator_state(pipeline: LocalPipeline) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"{pipeline.emulator.base_url}/_emulator/state").json()
    return state


def batches_per_custom_id(pipeline: LocalPipeline) -> Counter[str]:
    """How many of TwelveLabs' batches carry each custom_id (1 each: nothing was submitted twice)."""
    seen: Counter[str] = Counter()
    for batch in emulator_state(pipeline)["batches"]:
        seen.update({item["custom_id"] for item in batch["items"]})
    return seen


def faults(pipeline: LocalPipeline, *rules: dict[str, Any]) -> None:
    response = httpx.post(f"{pipeline.emulator.base_url}/_emulator/faults", json={"seed": 0, "rules": list(rules)})
    response.raise_for_status()
