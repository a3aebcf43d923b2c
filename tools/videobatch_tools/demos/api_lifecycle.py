"""A full batch lifecycle against the local emulator, driven by the project's own TwelveLabs client.

Real generated videos are uploaded as assets, probed by the emulator, analysed in two batches (a structured
summary in ``general`` mode, chapters in ``time_based_metadata`` mode) and their results streamed back while the
emulator's virtual clock is moved through its control API. Nothing here touches AWS or the real API.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from twelvelabs_emulator.server import EmulatorConfig, EmulatorServer
from videobatch.twelvelabs.client import TwelveLabsClient
from videobatch.twelvelabs.models import Asset, BatchCreateRequest, BatchResultItem
from videobatch_tools import samples

SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "topics": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title", "summary", "topics"],
}
CHAPTERS = {
    "type": "segment_definitions",
    "segment_definitions": [
        {
            "id": "chapters",
            "description": "Chapters of the video",
            "fields": [{"name": "title", "type": "string", "description": "Chapter title"}],
        }
    ],
}
TICK_SECONDS = 30.0
MAX_TICKS = 2_000


@dataclass(frozen=True)
class SampleVideo:
    name: str
    duration_seconds: float
    fps: float = 8
    size: int = 360
    is_video: bool = True


SAMPLES = (
    SampleVideo("kitchen.mp4", 12),
    SampleVideo("street.mp4", 20),
    SampleVideo("lecture-2h30.mp4", 9_000, fps=0.2),
    SampleVideo("notes.mp4", 0, is_video=False),
)


def run(out: TextIO) -> int:
    """Run the lifecycle and print a table of every video's outcome; 0 when every video reached a final state."""
    with tempfile.TemporaryDirectory(prefix="videobatch-demo-") as workdir:
        paths = _write_samples(Path(workdir))
        api_key = secrets.token_hex(16)
        config = EmulatorConfig(api_key=api_key, clock="virtual")
        with EmulatorServer(config) as server, httpx.Client(base_url=server.base_url) as control:
            advance = _advancer(control)
            with TwelveLabsClient(api_key, base_url=server.api_url) as client:
                assets = _upload(client, paths, advance, out)
                rows = _analyse(client, assets, advance, out)
    _print_table(rows, out)
    return 0 if all(row[2] in {"ready", "failed"} for row in rows) else 1


def _write_samples(workdir: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for seed, sample in enumerate(SAMPLES):
        path = workdir / sample.name
        if sample.is_video:
            samples.write_sample_video(
                path, duration_seconds=sample.duration_seconds, fps=sample.fps, width=sample.size, height=sample.size,
                seed=seed,
            )  # fmt: skip
        else:
            samples.write_non_video(path)
        paths[sample.name] = path
    return paths


def _advancer(control: httpx.Client) -> Callable[[float], str]:
    def advance(seconds: float) -> str:
        response = control.post("/_emulator/clock", json={"advance_seconds": seconds})
        response.raise_for_status()
        now: str = response.json()["now"]
        return now

    return advance


def _upload(
    client: TwelveLabsClient, paths: dict[str, Path], advance: Callable[[float], str], out: TextIO
) -> dict[str, Asset]:
    created = {name: client.create_asset_from_file(path.read_bytes(), filename=name) for name, path in paths.items()}
    out.write(f"uploaded {len(created)} files as assets; waiting for the emulator to probe them\n")
    ids = [asset.id for asset in created.values()]
    for _ in range(MAX_TICKS):
        listed = {asset.id: asset for asset in client.iter_assets(asset_ids=ids)}
        if all(asset.status in {"ready", "failed"} for asset in listed.values()):
            return {name: listed[asset.id] for name, asset in created.items()}
        advance(TICK_SECONDS)
    raise RuntimeError("assets did not finish processing")


def _analyse(
    client: TwelveLabsClient, assets: dict[str, Asset], advance: Callable[[float], str], out: TextIO
) -> list[tuple[str, str, str, str]]:
    rows = [(name, asset.id, "failed", f"asset failed: {asset.error.message if asset.error else '?'}")
            for name, asset in assets.items() if asset.status != "ready"]  # fmt: skip
    ready = {name: asset for name, asset in assets.items() if asset.status == "ready"}
    batches = [client.create_batch(request) for request in _requests(ready)]
    for batch in batches:
        out.write(f"batch {batch.batch_id}: {batch.total_items} items, expires {batch.expires_at.isoformat()}\n")
    results: dict[str, BatchResultItem] = {}
    for _ in range(MAX_TICKS):
        states = [client.retrieve_batch(batch.batch_id) for batch in batches]
        for batch in batches:
            with client.stream_batch_results(batch.batch_id) as lines:
                results.update({line.task_id: line for line in lines if line.status in {"ready", "failed"}})
        if all(state.status == "completed" for state in states):
            break
        advance(TICK_SECONDS)
    names = {asset.id: name for name, asset in ready.items()}
    for line in sorted(results.values(), key=lambda item: item.custom_id or ""):
        task = client.retrieve_task(line.task_id)
        asset_id = task.video_source.asset_id if task.video_source else None
        rows.append((names.get(asset_id or "", "?"), line.custom_id or "", line.status, _excerpt(line)))
    return rows


def _requests(ready: dict[str, Asset]) -> list[BatchCreateRequest]:
    summary_items: list[dict[str, Any]] = []
    chapter_items: list[dict[str, Any]] = []
    for index, (_name, asset) in enumerate(sorted(ready.items())):
        video = {"type": "asset_id", "asset_id": asset.id}
        duration = asset.duration or 0.0
        # Windows of at most 2 h: the long lecture is analysed in two halves.
        windows = [(0.0, duration)] if duration <= 7_200 else [(0.0, duration / 2), (duration / 2, duration)]
        for part, (start, end) in enumerate(windows):
            window = {} if len(windows) == 1 else {"start_time": start, "end_time": end}
            summary_items.append({"video": video, "custom_id": f"summary-{index}-w{part}", **window})
            chapter_items.append({"video": video, "custom_id": f"chapters-{index}-w{part}", **window})
    summary = BatchCreateRequest.model_validate(
        {
            "analysis_mode": "general",
            "defaults": {
                "prompt": {"input_text": "Summarise this video for a catalogue."},
                "response_format": {"type": "json_schema", "json_schema": SUMMARY_SCHEMA},
            },
            "requests": summary_items,
        }
    )
    chapters = BatchCreateRequest.model_validate(
        {"analysis_mode": "time_based_metadata", "defaults": {"response_format": CHAPTERS}, "requests": chapter_items}
    )
    return [summary, chapters]


def _excerpt(line: BatchResultItem) -> str:
    if line.error is not None:
        return f"{line.error.code}: {line.error.message}"
    if line.data is None:
        return ""
    text = line.data.data
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), separators=(",", ":"))
    return text[:70] + ("..." if len(text) > 70 else "")


def _print_table(rows: list[tuple[str, str, str, str]], out: TextIO) -> None:
    out.write(f"\n{'video':<18} {'request':<22} {'status':<7} result\n")
    for name, request, status, excerpt in rows:
        out.write(f"{name:<18} {request:<22} {status:<7} {excerpt}\n")
