"""Resumable multipart uploads on the service harness (the in-memory stack, the emulator in process).

The emulator hands out 4,096-byte chunks (conftest), so the 28 kB sample video is a 7-chunk upload; the URL limit is
lowered for these tests so the real ingest path plans it as multipart, exactly as it plans a 5 GB video. The emulator
counts the PUTs of every chunk (``puts_received``): a resumed upload must send each chunk once.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from videobatch.adapters.memory import MemoryUploadQueue
from videobatch.domain.items import ItemState, item_id_for
from videobatch.domain.records import ItemRecord
from videobatch.errors import UploadIncompleteError
from videobatch.runtime import InvocationBudget
from videobatch.services.ingest import IngestOutcome, IngestResult, IngestService, parse_object_created
from videobatch.services.ports import ObjectRef
from videobatch.twelvelabs import limits

from .harness import Stack

KEY = "long/match.mp4"
CHUNK_BYTES = 4096  # the emulator's chunk size in these tests (conftest)


class ChunkBudget(InvocationBudget):
    """An invocation with time for ``chunks`` chunks: the uploader asks before each one."""

    def __init__(self, chunks: float) -> None:
        super().__init__()
        self.left = chunks

    def remaining_seconds(self) -> float:
        self.left -= 1
        return 60.0 if self.left >= 0 else 0.0


class CrashAfterConfirming:
    """The item store, with the process dying right after the save that confirmed chunk ``k``."""

    def __init__(self, inner: Any, k: int) -> None:
        self._inner = inner
        self._k = k

    def save(self, new: ItemRecord, expected: ItemRecord) -> ItemRecord:
        stored = self._inner.save(new, expected)
        if new.upload_session is not None and new.upload_session.confirmed_chunks == self._k:
            raise RuntimeError(f"lambda died after confirming chunk {self._k}")
        return stored  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class RecordingObjects:
    """The object store, recording every read (to show memory is bounded by one chunk)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.ranges: list[int] = []
        self.streams = 0

    def read_range(self, ref: ObjectRef, start_byte: int, length_bytes: int) -> bytes:
        self.ranges.append(length_bytes)
        return self._inner.read_range(ref, start_byte, length_bytes)  # type: ignore[no-any-return]

    def iter_chunks(self, ref: ObjectRef, chunk_size_bytes: int) -> Any:
        self.streams += 1
        return self._inner.iter_chunks(ref, chunk_size_bytes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture(autouse=True)
def multipart_for_small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    # Anything over 1 kB goes multipart, as anything over 4 GB does in production.
    monkeypatch.setattr(limits, "MAX_URL_UPLOAD_BYTES", 1_000)


def ingest_service(
    stack: Stack, queue: MemoryUploadQueue | None, chunks: float = math.inf, **ports: Any
) -> IngestService:
    return stack.with_ports(upload_queue=queue, budget=ChunkBudget(chunks), **ports).ingest_service()


def puts_by_chunk(stack: Stack, upload_id: str) -> dict[int, int]:
    return dict(stack.emulator.state.uploads[upload_id].puts_received)


def stored(stack: Stack, item_id: str) -> ItemRecord:
    item = stack.items.get(item_id)
    assert item is not None
    return item


def total_chunks(path: Path) -> int:
    return math.ceil(path.stat().st_size / CHUNK_BYTES)


def run_to_done(stack: Stack, item_id: str) -> ItemRecord:
    """Asset ready, queued, submitted, analysed, result stored."""
    stack.clock.advance(10)
    stack.asset_checker().run()
    assert stored(stack, item_id).state is ItemState.QUEUED
    stack.clock.advance(stack.settings.max_wait_seconds)
    stack.flusher().run()
    assert stored(stack, item_id).state is ItemState.SUBMITTED
    for _ in range(20):
        stack.clock.advance(60)
        stack.checker().check_open()
        if stored(stack, item_id).state is ItemState.DONE:
            break
    return stored(stack, item_id)


def test_an_upload_out_of_time_hands_the_rest_to_the_next_invocation_and_the_item_ends_done(
    stack: Stack, videos: dict[str, Path]
) -> None:
    total = total_chunks(videos["short"])
    assert total == 7
    queue = MemoryUploadQueue()
    event = stack.put_video(KEY, videos["short"])

    first = ingest_service(stack, queue, chunks=3).handle(parse_object_created(event))
    assert (first.outcome, first.state, first.reason) == (
        IngestOutcome.UPLOAD_CONTINUED,
        ItemState.REGISTERED,
        "3/7 chunks",
    )
    session = stored(stack, first.item_id).upload_session
    assert session is not None
    assert (session.confirmed_chunks, session.total_chunks, session.chunk_bytes) == (3, 7, CHUNK_BYTES)
    assert puts_by_chunk(stack, session.upload_id) == {1: 1, 2: 1, 3: 1}
    assert len(queue.sent) == 1  # the continuation: the same event, back on the ingest queue

    second = ingest_service(stack, queue, chunks=2).handle(parse_object_created(queue.sent[0]))
    assert (second.outcome, second.reason) == (IngestOutcome.UPLOAD_CONTINUED, "5/7 chunks")
    third = ingest_service(stack, queue).handle(parse_object_created(queue.sent[1]))
    assert third.outcome is IngestOutcome.ASSET_CREATED
    assert len(queue.sent) == 2  # finished: nothing more handed on

    assert puts_by_chunk(stack, session.upload_id) == dict.fromkeys(range(1, total + 1), 1)
    item = stored(stack, first.item_id)
    assert (item.state, item.asset_id, item.upload_session) == (ItemState.ASSET_PROCESSING, session.asset_id, None)
    assert stack.metrics.total("UploadChunksSent") == total
    assert stack.metrics.total("UploadsContinued") == 2
    assert stack.metrics.total("UploadSessionsStarted") == 1
    stack.clock.advance(10)
    asset = stack.twelvelabs.retrieve_asset(session.asset_id)
    assert (asset.status, asset.size) == ("ready", videos["short"].stat().st_size)
    assert run_to_done(stack, item.item_id).state is ItemState.DONE


@pytest.mark.parametrize("k", [1, 4, 6, 7])
def test_a_crash_after_confirming_chunk_k_resumes_at_k_plus_1_and_sends_no_chunk_twice(
    stack: Stack, videos: dict[str, Path], k: int
) -> None:
    queue = MemoryUploadQueue()
    event = stack.put_video(KEY, videos["short"])
    crashing = ingest_service(stack, queue, items=CrashAfterConfirming(stack.items, k))
    with pytest.raises(RuntimeError, match=f"after confirming chunk {k}"):
        crashing.handle(parse_object_created(event))
    item_id = parse_and_find(stack, event)
    session = stored(stack, item_id).upload_session
    assert session is not None
    assert session.confirmed_chunks == k
    assert puts_by_chunk(stack, session.upload_id) == dict.fromkeys(range(1, k + 1), 1)

    # SQS redelivers the message after its visibility timeout.
    resumed = ingest_service(stack, queue).handle(parse_object_created(event))
    assert resumed.outcome is IngestOutcome.ASSET_CREATED
    assert puts_by_chunk(stack, session.upload_id) == dict.fromkeys(range(1, 8), 1)
    assert stored(stack, item_id).asset_id == session.asset_id
    assert len(stack.emulator.state.uploads) == 1  # the same session, continued
    assert queue.sent == []


def parse_and_find(stack: Stack, event: dict[str, Any]) -> str:
    detail = parse_object_created(event).detail
    return item_id_for(detail.bucket.name, detail.object.key, detail.object.version_id)


def test_a_crash_between_a_put_and_its_report_sends_that_one_chunk_again(stack: Stack, videos: dict[str, Path]) -> None:
    event = stack.put_video(KEY, videos["short"])
    report = stack.twelvelabs.report_completed_chunks
    calls: list[int] = []

    def dying_report(upload_id: str, chunks: Any) -> Any:
        calls.append(chunks[0].chunk_index)
        if chunks[0].chunk_index == 3:
            raise RuntimeError("lambda timed out")
        return report(upload_id, chunks)

    stack.twelvelabs.report_completed_chunks = dying_report  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        ingest_service(stack, MemoryUploadQueue()).handle(parse_object_created(event))
    stack.twelvelabs.report_completed_chunks = report  # type: ignore[method-assign]
    session = stored(stack, parse_and_find(stack, event)).upload_session
    assert session is not None
    assert session.confirmed_chunks == 2
    assert ingest_service(stack, MemoryUploadQueue()).handle(parse_object_created(event)).outcome is (
        IngestOutcome.ASSET_CREATED
    )
    # Chunk 3 was PUT but never confirmed: it is the only one sent twice.
    assert puts_by_chunk(stack, session.upload_id) == {1: 1, 2: 1, 3: 2, 4: 1, 5: 1, 6: 1, 7: 1}


def test_an_expired_session_starts_a_new_one_from_chunk_1(stack: Stack, videos: dict[str, Path]) -> None:
    queue = MemoryUploadQueue()
    event = stack.put_video(KEY, videos["short"])
    first = ingest_service(stack, queue, chunks=2).handle(parse_object_created(event))
    assert first.outcome is IngestOutcome.UPLOAD_CONTINUED
    old = stored(stack, first.item_id).upload_session
    assert old is not None

    stack.clock.advance(25 * 3600)  # the continuation waited past the session's 24 h (e.g. the queue was stuck)
    again = ingest_service(stack, queue).handle(parse_object_created(queue.sent[0]))
    assert again.outcome is IngestOutcome.ASSET_CREATED
    item = stored(stack, first.item_id)
    assert item.asset_id is not None
    assert item.asset_id != old.asset_id
    new_upload_id = next(u for u in stack.emulator.state.uploads if u != old.upload_id)
    assert stack.emulator.state.uploads[old.upload_id].status == "expired"
    assert puts_by_chunk(stack, new_upload_id) == dict.fromkeys(range(1, 8), 1)
    assert stack.metrics.total("UploadSessionsRestarted") == 1
    assert stack.metrics.total("UploadSessionsStarted") == 2
    assert run_to_done(stack, item.item_id).state is ItemState.DONE


def test_a_session_about_to_expire_is_not_continued(stack: Stack, videos: dict[str, Path]) -> None:
    queue = MemoryUploadQueue()
    event = stack.put_video(KEY, videos["short"])
    first = ingest_service(stack, queue, chunks=2).handle(parse_object_created(event))
    old = stored(stack, first.item_id).upload_session
    assert old is not None
    stack.clock.advance((old.expires_at - stack.clock.now()).total_seconds() - 60)  # a minute before expiry
    ingest_service(stack, queue).handle(parse_object_created(queue.sent[0]))
    assert stack.metrics.total("UploadSessionsRestarted") == 1
    renewed = stored(stack, first.item_id)
    assert renewed.asset_id is not None
    assert renewed.asset_id != old.asset_id
    assert stack.emulator.state.uploads[old.upload_id].puts_received == {1: 1, 2: 1}  # nothing more into the old one


def test_without_a_queue_the_message_fails_and_its_redelivery_continues(stack: Stack, videos: dict[str, Path]) -> None:
    event = stack.put_video(KEY, videos["short"])
    with pytest.raises(UploadIncompleteError, match="stopped at 4/7 chunks"):
        ingest_service(stack, None, chunks=4).handle(parse_object_created(event))
    item_id = parse_and_find(stack, event)
    session = stored(stack, item_id).upload_session
    assert session is not None
    assert session.confirmed_chunks == 4
    result: IngestResult = ingest_service(stack, None).handle(parse_object_created(event))
    assert result.outcome is IngestOutcome.ASSET_CREATED
    assert puts_by_chunk(stack, session.upload_id) == dict.fromkeys(range(1, 8), 1)


def test_an_invocation_with_no_time_left_sends_nothing_and_hands_on(stack: Stack, videos: dict[str, Path]) -> None:
    queue = MemoryUploadQueue()
    event = stack.put_video(KEY, videos["short"])
    result = ingest_service(stack, queue, chunks=0).handle(parse_object_created(event))
    assert (result.outcome, result.reason) == (IngestOutcome.UPLOAD_CONTINUED, "0/7 chunks")
    session = stored(stack, result.item_id).upload_session
    assert session is not None
    assert puts_by_chunk(stack, session.upload_id) == {}
    assert len(queue.sent) == 1


def test_memory_is_bounded_by_one_chunk_read_as_a_range(stack: Stack, videos: dict[str, Path]) -> None:
    objects = RecordingObjects(stack.objects)
    event = stack.put_video(KEY, videos["short"])
    result = ingest_service(stack, MemoryUploadQueue(), objects=objects).handle(parse_object_created(event))
    assert result.outcome is IngestOutcome.ASSET_CREATED
    assert objects.streams == 0  # never the whole object as one stream
    sniff, *chunks = objects.ranges
    size = videos["short"].stat().st_size
    assert chunks == [CHUNK_BYTES] * 6 + [size - 6 * CHUNK_BYTES]
    assert max(chunks) <= CHUNK_BYTES
    assert sniff == 512


def test_a_concurrent_delivery_that_moved_the_item_stops_the_upload(stack: Stack, videos: dict[str, Path]) -> None:
    queue = MemoryUploadQueue()
    event = stack.put_video(KEY, videos["short"])
    first = ingest_service(stack, queue, chunks=2).handle(parse_object_created(event))
    item = stored(stack, first.item_id)
    # Another delivery confirmed chunk 3 meanwhile; this one read the item before that.
    assert item.upload_session is not None
    stack.items.save(item.upload_progressed(item.upload_session.confirmed(3), now=stack.clock.now()), item)
    stale_get = stack.items.get

    class StaleItems:
        def get(self, item_id: str) -> ItemRecord | None:
            return item if item_id == item.item_id else stale_get(item_id)

        def __getattr__(self, name: str) -> Any:
            return getattr(stack.items, name)

    result = ingest_service(stack, queue, items=StaleItems()).handle(parse_object_created(queue.sent[0]))
    assert result.outcome is IngestOutcome.DUPLICATE
    assert len(queue.sent) == 1  # no continuation from the loser


def test_a_complete_session_is_recorded_as_the_asset_even_past_its_expiry(
    stack: Stack, videos: dict[str, Path]
) -> None:
    event = stack.put_video(KEY, videos["short"])
    with pytest.raises(RuntimeError):
        ingest_service(stack, None, items=CrashAfterConfirming(stack.items, 7)).handle(parse_object_created(event))
    session = stored(stack, parse_and_find(stack, event)).upload_session
    assert session is not None
    assert session.complete
    stack.clock.advance(25 * 3600)
    assert ingest_service(stack, None).handle(parse_object_created(event)).outcome is IngestOutcome.ASSET_CREATED
    assert stored(stack, parse_and_find(stack, event)).asset_id == session.asset_id
    assert stack.metrics.total("UploadSessionsRestarted") == 0
    assert len(stack.emulator.state.uploads) == 1
