"""The main job end to end on the local stack: uploads to S3 become analyses in S3, through the real handlers.

moto (in server mode) plays AWS with the resources ``template.yaml`` defines; the emulator plays TwelveLabs; the
template's wiring (S3 -> EventBridge -> SQS -> ingest, the schedules, the one-time expiry checks) is driven on a
virtual clock until nothing is left to do. No AWS account and no API key are involved.

With ``external`` (``videobatch demo --api-url URL --api-key-file PATH``) TwelveLabs is that endpoint: a few
short samples only (the real API bills them), the endpoint's virtual clock driven when it has one, else real
time with a progress line per wait and at most ``max_wait_seconds`` of waiting (exit code 3 when reached).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from videobatch.domain.items import ItemState
from videobatch.domain.records import ItemRecord
from videobatch_tools import samples
from videobatch_tools.localstack.external_api import ExternalApi
from videobatch_tools.localstack.pipeline import STACK_NAME, LocalPipeline


@dataclass(frozen=True)
class Upload:
    key: str
    duration_seconds: float = 0.0
    kind: str = "video"  # video | tiny-long | text
    audio: bool = False


UPLOADS = (
    Upload("videos/kitchen.mp4", 12),
    Upload("videos/street.mp4", 20, audio=True),
    Upload("videos/harbour.mov", 16),
    Upload("chapters/interview.mp4", 45),
    Upload("chapters/lecture-2h30.mp4", 9_000, kind="tiny-long"),
    Upload("videos/notes.mp4", kind="text"),
    Upload("videos/readme.txt", kind="text"),
)
# Against an endpoint of someone else's (the real API bills content hours): one short video and one refusal.
EXTERNAL_UPLOADS = (Upload("videos/kitchen.mp4", 12), Upload("videos/notes.mp4", kind="text"))
TIMED_OUT = 3
# Against an external endpoint: the one short video goes out at the next flush instead of waiting 15 minutes for
# company, and idle (every schedule looked once more after the last work) comes a minute after the end, not 15.
EXTERNAL_PARAMETERS = {"MaxWaitSeconds": "0", "SweepRate": "rate(1 minute)"}


def run(
    out: TextIO,
    *,
    external: ExternalApi | None = None,
    max_wait_seconds: float = 1800.0,
    stack_name: str = STACK_NAME,
) -> int:
    """Upload the samples, drive the pipeline until idle, print every video's outcome; 0 when all are terminal,
    3 when the wait against a real-time endpoint ran out first."""
    started = time.perf_counter()
    uploads = UPLOADS if external is None else EXTERNAL_UPLOADS
    with (
        tempfile.TemporaryDirectory(prefix="videobatch-demo-") as workdir,
        LocalPipeline(
            external_api=external,
            stack_name=stack_name,
            parameter_overrides=EXTERNAL_PARAMETERS if external is not None else None,
            # An external endpoint cannot fetch presigned URLs of the local S3 (127.0.0.1): push the bytes instead.
            environment_overrides={"URL_UPLOAD_MAX_BYTES": "0"} if external is not None else None,
        ) as pipeline,
    ):
        out.write(
            f"local stack: moto at {pipeline.moto.endpoint_url}, {_describe(pipeline, external, max_wait_seconds)}\n"
        )
        for seed, upload in enumerate(uploads):
            pipeline.upload(upload.key, _make(Path(workdir), upload, seed).read_bytes())
        out.write(f"uploaded {len(uploads)} objects to s3://{pipeline.bucket}/; running the pipeline until idle\n")
        idle = True
        if external is None or external.virtual:
            report = pipeline.run_until_idle()
        else:
            report, idle = pipeline.run_until_idle_within(max_wait_seconds, on_wait=_progress(pipeline, out))
        items = sorted(pipeline.items(), key=lambda item: item.key)
        _print_table(items, out)
        _print_sample_result(pipeline, items, out)
        _print_status(pipeline, out)
        clock = "real" if external is not None and not external.virtual else "virtual"
        out.write(
            f"\n{report.steps} steps, {report.advanced_seconds / 3600:.1f} h of {clock} time, "
            f"{time.perf_counter() - started:.1f} s of wall time\n"
        )
    if not idle:
        waiting = sum(1 for item in items if item.state not in TERMINAL)
        out.write(f"stopped after waiting {max_wait_seconds:g} s: {waiting} item(s) still on their way\n")
        return TIMED_OUT
    return 0 if len(items) == len(uploads) and all(item.state in TERMINAL for item in items) else 1


TERMINAL = frozenset({ItemState.DONE, ItemState.FAILED})


def _describe(pipeline: LocalPipeline, external: ExternalApi | None, max_wait_seconds: float) -> str:
    if external is None:
        return f"TwelveLabs emulator at {pipeline.api_url}"
    if external.virtual:
        return f"TwelveLabs at {external.url} (its virtual clock driven through /_emulator/clock)"
    return f"TwelveLabs at {external.url} (real time; waiting at most {max_wait_seconds:g} s)"


def _progress(pipeline: LocalPipeline, out: TextIO) -> Callable[[float, float, list[str]], None]:
    """One line per wait on real time: how long so far, what the items are doing."""

    def show(elapsed: float, wait: float, reasons: list[str]) -> None:
        states = Counter(item.state.value for item in pipeline.items())
        summary = ", ".join(f"{state} {count}" for state, count in sorted(states.items())) or "no items yet"
        out.write(f"[{elapsed:6.0f} s] {summary}; next look in {wait:.0f} s\n")
        out.flush()

    return show


def _make(workdir: Path, upload: Upload, seed: int) -> Path:
    path = workdir / Path(upload.key).name
    if upload.kind == "text":
        return samples.write_non_video(path)
    if upload.kind == "tiny-long":
        return samples.write_sample_video(path, duration_seconds=upload.duration_seconds, fps=0.2)
    return samples.write_sample_video(path, duration_seconds=upload.duration_seconds, audio=upload.audio, seed=seed)


def _print_table(items: list[ItemRecord], out: TextIO) -> None:
    out.write(f"\n{'video':<28} {'state':<7} {'profile':<9} {'windows':>7} {'tries':>5}  result or reason\n")
    for item in items:
        where = f"s3://{item.bucket}/{item.result_key}" if item.result_key else ""
        if item.failure is not None:
            where = f"{item.failure.code}: {item.failure.message}"
        out.write(
            f"{item.key:<28} {item.state.value:<7} {item.profile_name or '-':<9} {len(item.windows):>7} "
            f"{item.attempts:>5}  {where}\n"
        )


def _print_sample_result(pipeline: LocalPipeline, items: list[ItemRecord], out: TextIO) -> None:
    done = [item for item in items if item.result_key]
    if not done:
        return
    document = json.loads(pipeline.read_result(done[0].result_key or ""))
    text = json.dumps(document, indent=2)
    lines = text.splitlines()
    out.write(f"\nresult of {done[0].key} (first {min(len(lines), 25)} of {len(lines)} lines):\n")
    out.write("\n".join(lines[:25]) + "\n")


def _print_status(pipeline: LocalPipeline, out: TextIO) -> None:
    """What an operator sees: ``videobatch status --stack NAME`` against the local stack (published to
    CloudFormation in moto, on its virtual clock)."""
    import io
    from contextlib import redirect_stdout

    from videobatch_ops import cli
    from videobatch_ops.common import use_clock

    stack = pipeline.publish_stack()
    shown = io.StringIO()
    with use_clock(pipeline.clock), redirect_stdout(shown):
        cli.main(["status", "--stack", stack, "--days", "1"])
    out.write(f"\n$ videobatch status --stack {stack} --days 1\n{shown.getvalue()}")
