"""Result files end to end: written once per video, whatever the batch checker does afterwards, and complete."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from tests.integration.conftest import StartPipeline
from tests.integration.support import Harness, Media
from tests.surgery import overwrite_item
from twelvelabs_emulator.models import EmulatorSettings
from videobatch.domain.items import ItemState
from videobatch.domain.records import BatchState

pytestmark = pytest.mark.integration


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _versions(harness: Harness, key: str) -> list[tuple[str, str]]:
    return [(v["VersionId"], v["ETag"]) for v in harness.object_versions(key)]


def _schedule_batch_check(harness: Harness, batch_id: str, name: str) -> None:
    """A one-time batch check for ``batch_id`` due now, exactly as the flusher schedules the expiry check."""
    pipeline = harness.pipeline
    settings = pipeline.settings
    pipeline.client("scheduler").create_schedule(
        Name=name,
        GroupName=settings.scheduler_group_name,
        ScheduleExpression=f"at({pipeline.clock.now():%Y-%m-%dT%H:%M:%S})",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": settings.batch_checker_arn,
            "RoleArn": settings.scheduler_role_arn,
            "Input": json.dumps({"batch_id": batch_id}),
        },
        ActionAfterCompletion="DELETE",
    )


def test_each_result_is_written_once_and_holds_the_analysis_and_its_provenance(
    start_pipeline: StartPipeline, media: Media
) -> None:
    # The short video is ready at once; the 1 h one keeps the batch open for 6 minutes of batch-checker runs.
    harness = start_pipeline(
        emulator_settings=EmulatorSettings(item_concurrency=2, content_seconds_per_second=10, asset_ready_seconds=20)
    )
    short_id = harness.upload("videos/short.mp4", media.video(3))
    long_id = harness.upload("videos/hour.mp4", media.long_video(3600))
    harness.run_until_idle()

    short, long = harness.item(short_id), harness.item(long_id)
    assert (short.state, long.state) == (ItemState.DONE, ItemState.DONE)
    assert short.finished_at is not None
    assert long.finished_at is not None
    assert short.finished_at < long.finished_at  # the batch stayed open after the short one was written
    (batch,) = harness.batches()
    checks_while_open = [
        c
        for c in harness.observer.results_of("BatchCheckerFunction")
        if c["batches_checked"] and not c["batches_closed"]
    ]
    assert len(checks_while_open) >= 3
    written = {item.item_id: _versions(harness, item.result_key or "") for item in (short, long)}
    assert all(len(versions) == 1 for versions in written.values())

    # More checks of the closed batch: on the schedule and by a late one-time check naming it.
    _schedule_batch_check(harness, batch["batch_id"], "late-check")
    harness.run_until_idle()
    assert {i: _versions(harness, harness.item(i).result_key or "") for i in written} == written

    # A checker that wrote the result and died before recording it: the item is still submitted, the batch open.
    progress = harness.pipeline.runtime.batches.get_progress(batch["batch_id"])
    assert progress is not None
    assert progress.state is BatchState.CLOSED
    harness.pipeline.runtime.batches.save_progress(progress.reopened(), progress)
    runtime = harness.pipeline.runtime
    unrecorded = short.model_copy(update={"state": ItemState.SUBMITTED, "result_key": None, "finished_at": None})
    overwrite_item(runtime.items._client, runtime.settings.table_name, unrecorded)  # type: ignore[attr-defined]
    checks_before = len(harness.observer.results_of("BatchCheckerFunction"))
    harness.run_until_idle()
    rerun = harness.observer.results_of("BatchCheckerFunction")[checks_before:]
    assert sum(c["items_succeeded"] for c in rerun) == 1  # it settled the item again, writing the same bytes
    redone = harness.item(short_id)
    assert (redone.state, redone.result_key) == (ItemState.DONE, short.result_key)
    assert {i: _versions(harness, harness.item(i).result_key or "") for i in written} == written

    document = harness.result(short)
    emulated = {i["custom_id"]: i for i in batch["items"]}[f"{short_id}-a1-w0"]
    _assert_document(document, short_id, "videos/short.mp4", batch, emulated)


def _assert_document(
    document: dict[str, Any], item_id: str, key: str, batch: dict[str, Any], emulated: dict[str, Any]
) -> None:
    assert document["item_id"] == item_id
    assert document["source"]["key"] == key
    assert document["model"] == "pegasus1.5"
    assert document["batch_id"] == batch["batch_id"]
    assert document["attempt"] == 1
    assert document["profile"] == "summary"
    assert document["analysis_mode"] == "general"
    (window,) = document["windows"]
    assert window["task_id"] == emulated["task_id"]
    assert window["custom_id"] == emulated["custom_id"]
    assert window["generation_id"] == emulated["result"]["generation_id"]
    assert window["finish_reason"] == "stop"
    usage = emulated["result"]["usage"]
    assert document["usage"]["output_tokens"] == usage["output_tokens"] > 0
    assert document["usage"]["input_tokens"] == usage.get("input_tokens", 0)
    timings = document["timings"]
    assert _at(timings["registered_at"]) <= _at(timings["queued_at"]) <= _at(timings["submitted_at"])
    assert _at(timings["batch_created_at"]) == _at(batch["created_at"])
    # The analysis itself: the model's JSON for the profile's schema, as the API returned it.
    assert document["result"]["media_type"] == "application/json"
    (part,) = document["result"]["body"]  # json_schema output: one {window, data} entry per window
    assert part["window"] == {"index": 0, "start_seconds": 0.0, "end_seconds": pytest.approx(3.0, abs=0.5)}
    assert part["data"] == json.loads(emulated["result"]["data"])
    assert {"title", "summary", "topics", "tone", "key_moments"} <= set(part["data"])


def test_with_a_separate_results_bucket_results_land_there_and_not_beside_the_videos(
    start_pipeline: StartPipeline, media: Media
) -> None:
    harness = start_pipeline(parameter_overrides={"SeparateResultsBucket": "true", "MaxWaitSeconds": "0"})
    settings = harness.pipeline.settings
    assert settings.results_bucket
    assert settings.results_bucket != harness.pipeline.bucket
    harness.subscribe_events()
    item_id = harness.upload("videos/cat.mp4", media.video(2.0))
    harness.run_until_idle()
    item = harness.item(item_id)
    assert item.state is ItemState.DONE
    assert item.result_key is not None
    assert harness.result(item)["source"]["key"] == "videos/cat.mp4"  # read from the results bucket
    beside = harness.pipeline.client("s3").list_objects_v2(Bucket=harness.pipeline.bucket, Prefix="results/")
    assert beside.get("KeyCount", 0) == 0
    (succeeded,) = [e for e in harness.published() if e["detail-type"] == "Item Succeeded"]
    assert succeeded["detail"]["result_s3_uri"] == f"s3://{settings.results_bucket}/{item.result_key}"
