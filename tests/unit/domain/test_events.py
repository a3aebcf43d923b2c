import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from videobatch.domain.events import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    SOURCE,
    BatchFinished,
    BatchSubmitted,
    ItemFailed,
    ItemSucceeded,
    OutgoingEvent,
    parse_event,
    to_put_events_entry,
)
from videobatch.errors import InvalidInputError

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "outgoing"
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

SUCCEEDED = ItemSucceeded(
    occurred_at=T,
    item_id="0" * 32,
    bucket="uploads",
    key="videos/a b.mp4",
    version_id="v1",
    profile="summary",
    attempts=1,
    analysis_mode="general",
    result_s3_uri="s3://uploads/results/0/result.txt",
    result_media_type="text/plain",
    batch_id="b" * 24,
    task_ids=("t" * 24,),
    window_count=1,
    video_duration_seconds=60.0,
    truncated=False,
    submitted_at=T - timedelta(hours=1),
)
FAILED = ItemFailed(
    occurred_at=T, item_id="1" * 32, bucket="uploads", key="x.mp4", attempts=0, stage="ingest",
    failure_code="not_a_video_content", failure_message="x.mp4 is not a video",
)  # fmt: skip
SUBMITTED = BatchSubmitted(
    occurred_at=T, batch_id="b" * 24, analysis_mode="time_based_metadata", item_count=2, request_count=3,
    content_seconds=9000.0, fill_ratio=0.003, trigger="max_wait", oldest_queued_at=T - timedelta(minutes=15),
    oldest_wait_seconds=900.0, expires_at=T + timedelta(hours=24),
)  # fmt: skip
FINISHED = BatchFinished(
    occurred_at=T, batch_id="b" * 24, analysis_mode="general", status="expired", request_count=3, ready_requests=1,
    failed_requests=1, canceled_requests=1, items_succeeded=1, items_failed=0, items_requeued=1,
    submitted_at=T - timedelta(hours=24), duration_seconds=86_400.0,
)  # fmt: skip


def _sample_paths() -> list[Path]:
    return sorted(SAMPLES.glob("*.json"))


def test_there_is_one_sample_per_detail_type() -> None:
    types = sorted(json.loads(path.read_text())["detail-type"] for path in _sample_paths())
    assert types == sorted(EVENT_TYPES)


@pytest.mark.parametrize("path", _sample_paths(), ids=lambda p: p.name)
def test_samples_parse_with_the_models(path: Path) -> None:
    envelope = json.loads(path.read_text())
    event = parse_event(envelope)
    assert envelope["detail-type"] == event.DETAIL_TYPE
    assert event.schema_version == SCHEMA_VERSION
    # The sample's envelope is what to_put_events_entry would produce for it.
    entry = to_put_events_entry(event, "default")
    assert entry["Resources"] == envelope["resources"]
    assert json.loads(entry["Detail"]) == envelope["detail"]


@pytest.mark.parametrize(
    ("event", "resources"),
    [
        (SUCCEEDED, ["arn:aws:s3:::uploads/videos/a b.mp4"]),
        (FAILED, ["arn:aws:s3:::uploads/x.mp4"]),
        (SUBMITTED, []),
        (FINISHED, []),
    ],
)
def test_put_events_entry(event: OutgoingEvent, resources: list[str]) -> None:
    entry = to_put_events_entry(event, "videobatch-bus")
    assert entry["Source"] == SOURCE
    assert entry["DetailType"] == event.DETAIL_TYPE
    assert entry["EventBusName"] == "videobatch-bus"
    assert entry["Time"] == T
    assert entry["Resources"] == resources
    detail = json.loads(entry["Detail"])
    assert detail["schema_version"] == "1.0"
    assert type(event).model_validate(detail) == event


def _envelope(detail_type: str, detail: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "version": "0", "id": "x", "detail-type": detail_type, "source": "videobatch", "account": "1",
        "time": "2026-03-01T12:00:00Z", "region": "us-east-1", "resources": [], "detail": detail, **overrides,
    }  # fmt: skip


def test_parse_event_rejects_unknown_detail_type() -> None:
    with pytest.raises(InvalidInputError, match="'Item Exploded' is not a videobatch event"):
        parse_event(_envelope("Item Exploded", {}))


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        (_envelope("Item Failed", {}, source="aws.s3"), "source"),
        (_envelope("Item Failed", {**FAILED.model_dump(mode="json"), "schema_version": "2.0"}), "schema_version"),
        (_envelope("Item Failed", {**FAILED.model_dump(mode="json"), "surprise": 1}), "surprise"),
        (_envelope("Batch Finished", {**FINISHED.model_dump(mode="json"), "status": "failed"}), "status"),
    ],
)
def test_parse_event_rejects_invalid_envelopes(envelope: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_event(envelope)


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"result_s3_uri": "https://example.com/x"}, "result_s3_uri"),
        ({"task_ids": ()}, "task_ids"),
        ({"occurred_at": datetime(2026, 3, 1)}, "occurred_at"),
    ],
)
def test_item_succeeded_validates_fields(update: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ItemSucceeded.model_validate({**SUCCEEDED.model_dump(), **update})
