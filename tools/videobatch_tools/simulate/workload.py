"""What the simulated users upload, and when: seeded, spread over each day."""

from __future__ import annotations

import functools
import random
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from videobatch_tools import samples
from videobatch_tools.simulate.profiles import FaultProfile

SHORT_DURATIONS = (6.0, 9.0, 14.0, 20.0, 31.0, 45.0)
LONG_SECONDS = 9_000.0  # 2 h 30 min: two windows
TOO_LONG_SECONDS = 15_000.0  # over 4 h: fails video_too_long


@dataclass(frozen=True)
class PlannedUpload:
    at: datetime
    key: str
    sample: str  # name of a body in the sample pool
    kind: str  # video | long | too_long | non_video | corrupt | reupload


@functools.cache
def sample_pool() -> Mapping[str, bytes]:
    """The pool, made once per process: the media are the same for every run (fixed seeds), and generating them
    costs a run of a few dozen videos more than its stepping does (a worker running many cases pays it once)."""
    with tempfile.TemporaryDirectory(prefix="videobatch-sim-") as directory:
        return MappingProxyType(make_sample_pool(Path(directory)))


def make_sample_pool(directory: Path) -> dict[str, bytes]:
    """Real media (PyAV), generated once per run: short videos, a long and an over-long one, text, corrupt."""
    pool: dict[str, bytes] = {}
    for index, duration in enumerate(SHORT_DURATIONS):
        path = samples.write_sample_video(directory / f"short-{index}.mp4", duration_seconds=duration, seed=index)
        pool[f"short-{index}"] = path.read_bytes()
    for name, duration in (("long", LONG_SECONDS), ("too_long", TOO_LONG_SECONDS)):
        # Hours of video at one frame every five seconds: real durations at a few hundred kilobytes.
        path = samples.write_sample_video(directory / f"{name}.mp4", duration_seconds=duration, fps=0.2)
        pool[name] = path.read_bytes()
    pool["non_video"] = samples.write_non_video(directory / "notes.txt").read_bytes()
    pool["corrupt"] = samples.write_corrupt_video(directory / "corrupt.mp4").read_bytes()
    return pool


def plan_uploads(
    rng: random.Random, *, start: datetime, days: int, per_day: int, profile: FaultProfile
) -> list[PlannedUpload]:
    planned: list[PlannedUpload] = []
    videos: list[PlannedUpload] = []  # the earlier uploads a re-upload may pick, in plan order
    for day in range(days):
        moments = sorted(rng.uniform(0, 86_400) for _ in range(per_day))
        for number, offset in enumerate(moments):
            at = start + timedelta(days=day, seconds=offset)
            upload = _one(rng, at, f"d{day}-{number:04d}", videos, profile)
            planned.append(upload)
            if upload.kind in ("video", "long"):
                videos.append(upload)
    return planned


def _one(
    rng: random.Random, at: datetime, name: str, videos: list[PlannedUpload], profile: FaultProfile
) -> PlannedUpload:
    draw = rng.random()
    if draw < profile.reupload_rate and videos:
        previous = rng.choice(videos)
        return PlannedUpload(at, previous.key, f"short-{rng.randrange(len(SHORT_DURATIONS))}", "reupload")
    draw -= profile.reupload_rate
    if draw < profile.non_video_rate:
        key = rng.choice((f"docs/{name}.txt", f"videos/{name}.mp4"))
        return PlannedUpload(at, key, "non_video", "non_video")
    draw -= profile.non_video_rate
    if draw < profile.corrupt_rate:
        return PlannedUpload(at, f"videos/{name}.mp4", "corrupt", "corrupt")
    draw -= profile.corrupt_rate
    prefix = "chapters/" if rng.random() < 0.25 else "videos/"
    shape = rng.random()
    if shape < 0.06:
        return PlannedUpload(at, f"{prefix}{name}-long.mp4", "long", "long")
    if shape < 0.08:
        return PlannedUpload(at, f"{prefix}{name}-4h.mp4", "too_long", "too_long")
    return PlannedUpload(at, f"{prefix}{name}.mp4", f"short-{rng.randrange(len(SHORT_DURATIONS))}", "video")
