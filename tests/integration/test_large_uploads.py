"""Large uploads on the local stack: the real ingest handler, its 60 s Lambda timeout on the virtual clock, the ingest
queue in moto carrying the continuations, the emulator counting every chunk PUT.

A multipart upload here is a small video with a lowered URL limit and 4 kB chunks: what matters is the number of
chunks and the time each takes, which a wrapped object store sets (each chunk read costs virtual seconds).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.integration.conftest import StartPipeline
from tests.integration.support import Harness, Media
from videobatch.domain.items import ItemState
from videobatch.services.ports import ObjectRef
from videobatch.twelvelabs import limits

pytestmark = pytest.mark.integration

CHUNK_BYTES = 4096
SNIFF_BYTES = 512


class SlowChunks:
    """The object store, each chunk read taking ``seconds`` of virtual time and, optionally, one of them crashing."""

    def __init__(self, inner: Any, clock: Any, seconds: float, crash_at_chunk: int | None = None) -> None:
        self._inner = inner
        self._clock = clock
        self._seconds = seconds
        self._crash_at_start = None if crash_at_chunk is None else (crash_at_chunk - 1) * CHUNK_BYTES
        self.crashed = False

    def read_range(self, ref: ObjectRef, start_byte: int, length_bytes: int) -> bytes:
        if length_bytes != SNIFF_BYTES or start_byte:
            if start_byte == self._crash_at_start and not self.crashed:
                self.crashed = True
                raise RuntimeError("the Lambda sandbox died")
            self._clock.advance(self._seconds)
        return self._inner.read_range(ref, start_byte, length_bytes)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture(autouse=True)
def multipart_for_small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_URL_UPLOAD_BYTES", 1_000)


def start(start_pipeline: StartPipeline, seconds_per_chunk: float, crash_at_chunk: int | None = None) -> Harness:
    harness = start_pipeline(multipart_chunk_bytes=CHUNK_BYTES)
    runtime = harness.pipeline.runtime
    runtime.objects = SlowChunks(runtime.objects, harness.pipeline.clock, seconds_per_chunk, crash_at_chunk)
    return harness


def ingest_runs(harness: Harness) -> list[Any]:
    return [i for i in harness.pipeline.wiring.invocations if i.function_id == "IngestFunction"]


def puts_by_chunk(harness: Harness) -> dict[int, int]:
    (session,) = harness.pipeline.emulator.state.uploads.values()
    return dict(session.puts_received)


def test_an_upload_longer_than_one_invocation_continues_through_the_ingest_queue_and_ends_done(
    start_pipeline: StartPipeline, media: Media
) -> None:
    body = media.video(20)
    chunks = math.ceil(len(body) / CHUNK_BYTES)
    assert chunks >= 5
    # 12 s a chunk: a 60 s invocation (50 s of budget after the margin) sends three, then hands on.
    harness = start(start_pipeline, seconds_per_chunk=12)
    item_id = harness.upload("long/final.mp4", body)
    harness.run_until_idle()
    harness.assert_no_handler_errors()
    item = harness.item(item_id)
    assert item.state is ItemState.DONE
    assert puts_by_chunk(harness) == dict.fromkeys(range(1, chunks + 1), 1)
    runs = ingest_runs(harness)
    assert len(runs) == math.ceil(chunks / 3)
    # None overran its timeout (the wiring counts an overrun as an error, as Lambda does).
    assert all(run.error is None for run in runs)


def test_an_invocation_that_dies_after_confirming_chunk_k_is_redelivered_and_resumes_at_k_plus_1(
    start_pipeline: StartPipeline, media: Media
) -> None:
    body = media.video(20)
    chunks = math.ceil(len(body) / CHUNK_BYTES)
    harness = start(start_pipeline, seconds_per_chunk=1, crash_at_chunk=4)
    item_id = harness.upload("long/crash.mp4", body)
    harness.pipeline.run_until_idle()  # the harness's own would stop at the (expected) handler error
    failed = [run for run in ingest_runs(harness) if run.error is not None]
    # The crash at chunk 4's read: chunks 1-3 were confirmed, the message failed and came back after its timeout.
    assert len(failed) == 1
    assert harness.item(item_id).state is ItemState.DONE
    assert puts_by_chunk(harness) == dict.fromkeys(range(1, chunks + 1), 1)
