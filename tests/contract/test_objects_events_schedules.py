"""Objects, events and one-time schedules: the same rules on S3/EventBridge/Scheduler (moto) and in memory."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from videobatch.domain.events import ItemFailed
from videobatch.errors import InvalidInputError, RejectedUploadError, StaleStateError
from videobatch.services.ports import ObjectRef

from .conftest import BUCKET, Backend


def test_head_range_and_exact_versions(backend: Backend) -> None:
    first = backend.upload("a b/café.mp4", b"0123456789", "video/mp4")
    backend.upload("a b/café.mp4", b"second!")
    info = backend.objects.head(first)
    assert (info.size_bytes, info.content_type) == (10, "video/mp4")
    assert info.etag
    assert '"' not in info.etag
    assert backend.objects.read_range(first, 2, 3) == b"234"
    assert backend.objects.read_range(first, 8, 100) == b"89"
    assert backend.objects.read_range(first, 0, 0) == b""
    latest = ObjectRef(bucket=BUCKET, key="a b/café.mp4")
    assert backend.objects.head(latest).size_bytes == 7


def test_a_missing_object_is_a_rejected_upload(backend: Backend) -> None:
    with pytest.raises(RejectedUploadError) as caught:
        backend.objects.head(ObjectRef(bucket=BUCKET, key="gone.mp4"))
    assert caught.value.reason == "object_missing"


def test_chunks_are_exact(backend: Backend) -> None:
    ref = backend.upload("a.mp4", bytes(range(256)) * 4)
    chunks = list(backend.objects.iter_chunks(ref, 300))
    assert [len(chunk) for chunk in chunks] == [300, 300, 300, 124]
    assert b"".join(chunks) == bytes(range(256)) * 4


def test_write_once_is_idempotent_and_refuses_different_bytes(backend: Backend) -> None:
    assert backend.objects.write_once(BUCKET, "results/a.mp4.json", b'{"a":1}', "application/json")
    assert not backend.objects.write_once(BUCKET, "results/a.mp4.json", b'{"a":1}', "application/json")
    with pytest.raises(StaleStateError):
        backend.objects.write_once(BUCKET, "results/a.mp4.json", b'{"a":2}', "application/json")
    assert backend.read("results/a.mp4.json") == b'{"a":1}'


def test_keys_over_s3s_1024_byte_limit_are_refused(backend: Backend) -> None:
    """Real S3 answers KeyTooLongError beyond 1,024 bytes of UTF-8; moto stores such a key without complaint (shown
    below), so both stores enforce the AWS rule themselves."""
    exact = "k" * 1022 + "é"  # 1,024 bytes
    assert backend.objects.write_once(BUCKET, exact, b"x", "text/plain")
    with pytest.raises(InvalidInputError, match=r"1025 bytes exceeds the 1024-byte limit"):
        backend.objects.write_once(BUCKET, exact + "x", b"x", "text/plain")
    if backend.name == "moto":
        backend._s3.put_object(Bucket=BUCKET, Key=exact + "x", Body=b"x")  # moto: lenient where S3 is not


def _failed(n: int) -> ItemFailed:
    return ItemFailed(
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        item_id=f"{n:032x}",
        bucket=BUCKET,
        key=f"in/{n}.mp4",
        attempts=0,
        stage="ingest",
        failure_code="not_a_video_content",
        failure_message="not a video",
    )


def test_events_arrive_whole_and_in_order(backend: Backend) -> None:
    backend.events.publish([_failed(n) for n in range(12)])  # more than one PutEvents call holds
    published = backend.published()
    assert [event["item_id"] for event in published] == [f"{n:032x}" for n in range(12)]
    assert published[0]["failure_code"] == "not_a_video_content"


def test_a_batch_gets_one_expiry_check(backend: Backend) -> None:
    at = datetime(2026, 1, 2, 0, 5, 7, 250_000, tzinfo=UTC)
    assert backend.scheduler.schedule_batch_check("b" * 24, at)
    assert not backend.scheduler.schedule_batch_check("b" * 24, at)
    assert backend.scheduled() == {"b" * 24: "2026-01-02T00:05:07"}
    assert backend.scheduler.cancel_batch_check("b" * 24)
    assert not backend.scheduler.cancel_batch_check("b" * 24)
    assert backend.scheduled() == {}
