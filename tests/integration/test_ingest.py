"""Upload events end to end: duplicates, uploads that are not videos, uploads too large for TwelveLabs."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from moto.s3.models import s3_backends

from tests.integration.conftest import StartPipeline
from tests.integration.support import Harness, Media, custom_ids
from videobatch.domain.items import ItemState, item_id_for
from videobatch_tools.localstack.lambda_runtime import object_created_event

pytestmark = pytest.mark.integration

GIB = 1024**3


def _ingested_events(harness: Harness) -> list[dict[str, Any]]:
    """The Object Created events the ingest function received (SQS record bodies), in order."""
    return [
        json.loads(record["body"])
        for invocation in harness.pipeline.wiring.invocations
        if invocation.function_id == "IngestFunction"
        for record in invocation.event["Records"]
    ]


def test_a_duplicate_object_created_event_makes_one_item_and_one_analysis(
    start_pipeline: StartPipeline, media: Media
) -> None:
    harness = start_pipeline()
    item_id = harness.upload("videos/twice.mp4", media.video(3))
    # First delivery: ingest creates the item and its asset; the asset is still processing.
    harness.run_until(lambda: harness.item(item_id).state is ItemState.ASSET_PROCESSING)
    (original,) = _ingested_events(harness)
    # EventBridge delivers at least once: the very same event again, while the asset is processing...
    assert harness.pipeline.wiring.publish_default_bus_event(original)
    harness.run_until_idle()
    # ...and once more after the item is done.
    assert harness.pipeline.wiring.publish_default_bus_event(original)
    harness.run_until_idle()

    deliveries = _ingested_events(harness)
    assert len(deliveries) == 3
    assert {event["id"] for event in deliveries} == {original["id"]}
    ingest_results = harness.observer.results_of("IngestFunction")
    assert all(result == {"batchItemFailures": []} for result in ingest_results)

    items = harness.items()
    assert list(items) == [item_id]
    assert items[item_id].state is ItemState.DONE
    assert items[item_id].attempts == 1
    state = harness.state()
    assert len(state["assets"]) == 1
    assert [custom_ids(batch) for batch in state["batches"]] == [[f"{item_id}-a1-w0"]]
    assert len(harness.object_versions(items[item_id].result_key or "")) == 1


def test_uploads_that_are_not_videos_fail_with_a_reason_and_an_item_failed_event(
    start_pipeline: StartPipeline, media: Media
) -> None:
    harness = start_pipeline()
    harness.subscribe_events()
    text_named_mp4 = harness.upload("videos/notes.mp4", media.text())
    text_file = harness.upload("videos/readme.txt", b"just some words\n")
    folder_marker = harness.pipeline.client("s3").put_object(Bucket=harness.pipeline.bucket, Key="videos/", Body=b"")
    own_result = harness.pipeline.client("s3").put_object(
        Bucket=harness.pipeline.bucket, Key="results/other.json", Body=b"{}"
    )
    harness.run_until_idle()

    items = harness.items()
    # The folder marker is ignored without an item; the results prefix never even reaches the ingest queue.
    assert set(items) == {text_named_mp4, text_file}
    marker_id = item_id_for(harness.pipeline.bucket, "videos/", folder_marker.get("VersionId"))
    assert marker_id not in items
    assert "results/other.json" not in {event["detail"]["object"]["key"] for event in _ingested_events(harness)}
    assert own_result["ResponseMetadata"]["HTTPStatusCode"] == 200

    failures = {items[i].key: items[i].failure for i in (text_named_mp4, text_file)}
    assert {key: f.code if f else None for key, f in failures.items()} == {
        "videos/notes.mp4": "not_a_video_content",
        "videos/readme.txt": "not_a_video_extension",
    }
    assert all(f is not None and f.message for f in failures.values())
    assert {items[i].state for i in items} == {ItemState.FAILED}
    assert harness.state()["assets"] == []  # nothing was sent to TwelveLabs

    events = harness.published()
    failed = {e["detail"]["key"]: e for e in events if e["detail-type"] == "Item Failed"}
    assert set(failed) == {"videos/notes.mp4", "videos/readme.txt"}
    assert {e["source"] for e in events} == {"videobatch"}
    notes = failed["videos/notes.mp4"]["detail"]
    assert notes["item_id"] == text_named_mp4
    assert notes["stage"] == "ingest"
    assert notes["failure_code"] == "not_a_video_content"
    assert notes["failure_message"] == failures["videos/notes.mp4"].message  # type: ignore[union-attr]
    assert failed["videos/notes.mp4"]["resources"] == [f"arn:aws:s3:::{harness.pipeline.bucket}/videos/notes.mp4"]


def test_an_upload_over_10_gib_fails_as_too_large_without_reaching_twelvelabs(
    start_pipeline: StartPipeline, media: Media
) -> None:
    """11 GiB cannot be uploaded for real here: a real small MP4 is stored, then S3 is made to report 11 GiB for it
    (moto's object metadata, which HEAD answers from) and its Object Created event carries the same size.

    The ingest decides on HEAD, not on the event's size (the event is only a hint); both say 11 GiB here.
    """
    harness = start_pipeline()
    harness.subscribe_events()
    pipeline = harness.pipeline
    key = "videos/huge.mp4"
    item_id = harness.upload(key, media.video(2))
    # Take the upload's notification before the wiring routes it (moto also reports a tagging event: not routed).
    drained = pipeline.moto.s3_notifications.drain()
    (notification,) = [n for n in drained if n.event_name == "s3:ObjectCreated:Put"]
    stored = s3_backends[pipeline.stack.account_id]["aws"].buckets[pipeline.bucket].keys[key]
    stored.contentsize = 11 * GIB
    assert pipeline.client("s3").head_object(Bucket=pipeline.bucket, Key=key)["ContentLength"] == 11 * GIB
    event = object_created_event(
        dataclasses.replace(notification, size=11 * GIB), moment=pipeline.clock.now(), sequencer="0000000000000000A1"
    )
    assert event is not None
    assert pipeline.wiring.publish_default_bus_event(event)
    harness.run_until_idle()

    item = harness.item(item_id)
    assert item.state is ItemState.FAILED
    assert item.failure is not None
    assert item.failure.code == "too_large"
    assert "11.81 GB" in item.failure.message  # 11 GiB, in the decimal units of the documented limit
    assert item.size_bytes == 11 * GIB
    assert harness.state()["assets"] == []
    (failed,) = [e for e in harness.published() if e["detail-type"] == "Item Failed"]
    assert failed["detail"]["failure_code"] == "too_large"
