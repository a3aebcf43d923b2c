import json
from pathlib import Path
from typing import Any

import pytest

from videobatch.domain.items import ItemState, item_id_for
from videobatch.domain.records import INTAKE_QUEUE
from videobatch.errors import InvalidInputError
from videobatch.services.ingest import IngestOutcome, parse_object_created

from .harness import BUCKET, Stack


def test_upload_becomes_an_item_with_an_asset(stack: Stack, videos: dict[str, Path]) -> None:
    result = stack.ingest("in/cat.mp4", videos["short"])
    assert result.outcome is IngestOutcome.ASSET_CREATED
    item = stack.items.get(result.item_id)
    assert item is not None
    assert item.item_id == item_id_for(BUCKET, "in/cat.mp4", None)
    assert (item.state, item.profile_name, item.analysis_mode) == (ItemState.ASSET_PROCESSING, "summary", "general")
    assert item.asset_id
    asset = stack.twelvelabs.retrieve_asset(item.asset_id)  # the emulator fetched the presigned S3 URL for real
    assert asset.status == "processing"
    assert [i.item_id for i in stack.items.iter_queue(INTAKE_QUEUE)] == [item.item_id]


def test_duplicate_event_is_a_no_op(stack: Stack, videos: dict[str, Path]) -> None:
    event = stack.put_video("in/cat.mp4", videos["short"])
    first = stack.ingest_service().handle(parse_object_created(event))
    before = stack.items.get(first.item_id)
    again = stack.ingest_service().handle(parse_object_created(json.dumps(event)))
    assert again.outcome is IngestOutcome.DUPLICATE
    assert stack.items.get(first.item_id) == before
    assert len(stack.twelvelabs.list_assets().data) == 1  # no second asset


def test_registered_item_is_resumed_after_a_crash(stack: Stack, videos: dict[str, Path]) -> None:
    event = stack.put_video("in/cat.mp4", videos["short"])
    service = stack.ingest_service()
    crashed = stack.twelvelabs.create_asset_from_url
    calls: list[str] = []

    def crash(url: str, **_: Any) -> Any:
        calls.append(url)
        raise RuntimeError("lambda timed out")

    stack.twelvelabs.create_asset_from_url = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        service.handle(parse_object_created(event))
    item_id = item_id_for(BUCKET, "in/cat.mp4", None)
    registered = stack.items.get(item_id)
    assert registered is not None
    assert registered.state is ItemState.REGISTERED
    stack.twelvelabs.create_asset_from_url = crashed  # type: ignore[method-assign]
    resumed = service.handle(parse_object_created(event))
    assert resumed.outcome is IngestOutcome.ASSET_CREATED
    assert stack.items.get(item_id).state is ItemState.ASSET_PROCESSING  # type: ignore[union-attr]


def test_non_video_becomes_a_failed_item_with_an_event(stack: Stack, videos: dict[str, Path]) -> None:
    result = stack.ingest("in/notes.mp4", videos["text"])
    assert (result.outcome, result.reason) == (IngestOutcome.REJECTED, "not_a_video_content")
    item = stack.items.get(result.item_id)
    assert item is not None
    assert item.state is ItemState.FAILED
    assert item.failure is not None
    assert item.failure.code == "not_a_video_content"
    [event] = stack.observed_events()
    assert event["detail-type"] == "Item Failed"
    assert event["detail"]["failure_code"] == "not_a_video_content"
    assert event["detail"]["stage"] == "ingest"
    assert stack.metrics.total("ItemsFailed") == 1
    assert stack.twelvelabs.list_assets().data == []
    # A redelivery changes nothing and reports nothing twice.
    assert stack.ingest("in/notes.mp4", videos["text"]).outcome is IngestOutcome.DUPLICATE
    assert stack.observed_events() == []


def test_wrong_extension_is_rejected(stack: Stack, videos: dict[str, Path]) -> None:
    assert stack.ingest("in/notes.txt", videos["text"]).reason == "not_a_video_extension"


def test_results_are_ignored(stack: Stack, videos: dict[str, Path]) -> None:
    result = stack.ingest("results/in/cat.mp4.json", videos["text"])
    assert result.outcome is IngestOutcome.IGNORED
    assert stack.items.get(result.item_id) is None


def test_deleted_object_is_rejected(stack: Stack, videos: dict[str, Path]) -> None:
    event = stack.put_video("in/cat.mp4", videos["short"])
    stack.delete_object("in/cat.mp4")
    assert stack.ingest_service().handle(parse_object_created(event)).reason == "object_missing"


def test_versions_are_separate_items(stack: Stack, videos: dict[str, Path]) -> None:
    stack.enable_versioning()
    first = stack.ingest("in/cat.mp4", videos["short"])
    second = stack.ingest("in/cat.mp4", videos["short2"])
    assert first.item_id != second.item_id
    assert second.outcome is IngestOutcome.ASSET_CREATED


@pytest.mark.parametrize(
    "body",
    ["not json", json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}})],
)
def test_malformed_message_is_an_invalid_input_error(body: str) -> None:
    with pytest.raises(InvalidInputError, match="not an S3 Object Created event"):
        parse_object_created(body)


def test_multipart_upload_streams_the_object_from_s3(stack: Stack, videos: dict[str, Path]) -> None:
    # Objects over 4 GB go multipart; a registered item that says so exercises the same path with a small file.
    event = stack.put_video("in/cat.mp4", videos["short"])
    item_id = item_id_for(BUCKET, "in/cat.mp4", None)
    service = stack.ingest_service()
    size = videos["short"].stat().st_size
    from videobatch.domain.records import ItemRecord

    now = stack.clock.now()
    stack.items.create(
        ItemRecord(
            item_id=item_id,
            bucket=BUCKET,
            key="in/cat.mp4",
            size_bytes=size,
            profile_name="summary",
            state=ItemState.REGISTERED,
            created_at=now,
            updated_at=now,
            upload_method="multipart",
        )
    )
    assert service.handle(parse_object_created(event)).outcome is IngestOutcome.ASSET_CREATED
    item = stack.items.get(item_id)
    assert item is not None
    assert item.asset_id
    stack.clock.advance(10)
    asset = stack.twelvelabs.retrieve_asset(item.asset_id)
    assert (asset.status, asset.size) == ("ready", size)


def _with_key_in_event(event: dict[str, Any], key_in_event: str) -> dict[str, Any]:
    detail = {**event["detail"], "object": {**event["detail"]["object"], "key": key_in_event}}
    return {**event, "detail": detail}


@pytest.mark.parametrize(
    ("key", "key_in_event"),
    [
        ("in/my video.mp4", "in/my+video.mp4"),
        ("in/café.mp4", "in/caf%C3%A9.mp4"),
        ("in/a+b.mp4", "in/a%2Bb.mp4"),
        ("in/100%.mp4", "in/100%25.mp4"),
        ("in/50%25.mp4", "in/50%2525.mp4"),
    ],
)
def test_keys_arrive_url_encoded_as_s3_sends_them(
    stack: Stack, videos: dict[str, Path], key: str, key_in_event: str
) -> None:
    event = _with_key_in_event(stack.put_video(key, videos["short"]), key_in_event)
    result = stack.ingest_service().handle(parse_object_created(event))
    assert result.outcome is IngestOutcome.ASSET_CREATED
    item = stack.items.get(result.item_id)
    assert item is not None
    assert (item.item_id, item.key) == (item_id_for(BUCKET, key, None), key)


def test_an_unencoded_key_that_exists_literally_is_used_as_delivered(stack: Stack, videos: dict[str, Path]) -> None:
    """A hand-made or replayed event may carry the key unencoded: 'a+b.mp4' decodes to 'a b.mp4', which does not
    exist, while 'a+b.mp4' does."""
    event = stack.put_video("in/a+b.mp4", videos["short"])
    result = stack.ingest_service().handle(parse_object_created(event))
    assert result.outcome is IngestOutcome.ASSET_CREATED
    assert stack.items.get(result.item_id).key == "in/a+b.mp4"  # type: ignore[union-attr]
    again = stack.ingest_service().handle(parse_object_created(event))  # the duplicate finds the same item
    assert (again.outcome, again.item_id) == (IngestOutcome.DUPLICATE, result.item_id)


def test_a_key_missing_under_both_readings_fails_as_missing(stack: Stack, videos: dict[str, Path]) -> None:
    event = _with_key_in_event(stack.put_video("in/x.mp4", videos["short"]), "in/gone+too.mp4")
    result = stack.ingest_service().handle(parse_object_created(event))
    assert (result.outcome, result.reason) == (IngestOutcome.REJECTED, "object_missing")
    item = stack.items.get(result.item_id)
    assert item is not None
    assert item.key == "in/gone too.mp4"  # the decoded reading is the one reported


def test_events_for_another_bucket_are_refused_and_leave_no_item(stack: Stack, videos: dict[str, Path]) -> None:
    event = stack.put_video("in/cat.mp4", videos["short"])
    foreign = {**event, "detail": {**event["detail"], "bucket": {"name": "someone-elses-bucket"}}}
    with pytest.raises(InvalidInputError, match="this stack ingests only 'uploads'"):
        stack.ingest_service().handle(parse_object_created(foreign))
    assert stack.items.get(item_id_for("someone-elses-bucket", "in/cat.mp4", None)) is None
    assert stack.twelvelabs.list_assets().data == []
