"""Packing and submission end to end: request counts, the active-slot cap, content hours, windowed long videos."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from tests.integration.conftest import StartPipeline
from tests.integration.support import Media, attempt_of, custom_ids
from twelvelabs_emulator.models import EmulatorSettings
from videobatch.domain.items import ItemState
from videobatch.twelvelabs.client import TwelveLabsClient
from videobatch.twelvelabs.models import BatchCreateRequest, BatchItemRequest, Prompt, VideoContext

pytestmark = pytest.mark.integration


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_more_items_than_active_slots_hold_wait_for_a_free_slot(start_pipeline: StartPipeline, media: Media) -> None:
    """The issue's 2,500 videos -> 1,000/1,000/500 with a batch waiting for a slot, scaled down by 100.

    25 videos, 10 per batch, 2 slots reserved for other users of the key and one slot taken by another tool's batch:
    the pipeline may hold 2 batches at a time, so the third (5 items) waits until one of the first two has finished.
    MaxWaitSeconds 0 makes the partial batch due at once, so only the slot limit can hold it back.
    """
    harness = start_pipeline(
        parameter_overrides={"ReservedBatchSlots": "2", "MaxWaitSeconds": "0", "MaxItemsPerBatch": "10"},
        # 2 s videos take 20 s each, two at a time: a batch of 10 runs ~100 s, longer than a flush period.
        emulator_settings=EmulatorSettings(item_concurrency=2, content_seconds_per_second=0.1, asset_ready_seconds=20),
        sample_active=True,
    )
    pipeline = harness.pipeline
    cap = 5 - pipeline.settings.reserved_batch_slots
    assert (pipeline.settings.max_items_per_batch, cap) == (10, 3)

    # Another tool on the same account: one long batch (a 2 h video at 0.1 s/s runs far beyond this test).
    other_tool = TwelveLabsClient(pipeline.api_key, base_url=pipeline.emulator.api_url, clock=pipeline.clock)
    try:
        asset = other_tool.create_asset_from_file(media.long_video(7200, seed=99), filename="other.mp4")
        pipeline.clock.advance(30)  # past asset_ready_seconds
        foreign = other_tool.create_batch(
            BatchCreateRequest(
                analysis_mode="general",
                requests=[
                    BatchItemRequest(
                        video=VideoContext(asset_id=asset.id),
                        custom_id="other-tool",
                        prompt=Prompt(input_text="Describe the video."),
                    )
                ],
            )
        ).batch_id
    finally:
        other_tool.close()

    item_ids = {harness.upload(f"videos/clip-{n:02d}.mp4", media.video(2, seed=n)) for n in range(25)}
    # Idle means every item of ours is done; the other tool's batch is not the pipeline's business.
    harness.run_until_idle()

    items = harness.items()
    assert set(items) == item_ids
    assert {item.state for item in items.values()} == {ItemState.DONE}
    assert {item.attempts for item in items.values()} == {1}

    ours = [b for b in harness.batches() if b["batch_id"] != foreign]
    assert [b["total_items"] for b in ours] == [10, 10, 5]
    # Every video in exactly one request of one batch.
    submitted = Counter(attempt_of(cid)[0] for batch in ours for cid in custom_ids(batch))
    assert submitted == dict.fromkeys(item_ids, 1)

    # The cap held after every handler invocation, counting the other tool's batch; and it was reached.
    samples = harness.observer.active_samples
    assert samples, "no samples taken"
    assert max(len(active) for _, active in samples) == cap
    assert all(len(active) <= cap for _, active in samples)
    assert all(len(active - {foreign}) <= 2 for _, active in samples)

    # The third batch waited: the flush that sent it found every slot taken, watched for one (the slot watch) and
    # sent the batch only after one of the first two had completed.
    flushes = harness.observer.results_of("FlusherFunction")
    [third] = [f for f in flushes if f["batches_submitted"] and f is not flushes[0]]
    assert third["slot_watch_seconds"] > 0, flushes
    assert third["items_submitted"] == 5, flushes
    first_done = min(_at(b["completed_at"]) for b in ours[:2])
    assert _at(ours[2]["created_at"]) >= first_done
    assert _at(ours[1]["created_at"]) == _at(ours[0]["created_at"])  # the first two went out in one flush


def test_content_hours_split_batches_before_the_request_count_does(start_pipeline: StartPipeline, media: Media) -> None:
    """With the content limit lowered to 1 h, four 25-minute videos go 2 + 2 (1,000 requests would hold all)."""
    harness = start_pipeline(
        parameter_overrides={"MaxWaitSeconds": "0", "MaxContentSecondsPerBatch": "3600"},
    )
    for n in range(4):
        harness.upload(f"videos/talk-{n}.mp4", media.long_video(1500, seed=n))
    harness.run_until_idle()

    items = harness.items()
    assert {item.state for item in items.values()} == {ItemState.DONE}
    batches = harness.batches()
    assert [b["total_items"] for b in batches] == [2, 2]
    for batch in batches:
        content = sum(i["window_end_seconds"] - i["window_start_seconds"] for i in batch["items"])
        assert content == pytest.approx(3000, abs=1)
        assert content <= 3600
    flushes = [f for f in harness.observer.results_of("FlusherFunction") if f["batches_submitted"]]
    assert sum(f["batches_submitted"] for f in flushes) == 2


def test_a_long_video_is_analysed_in_two_windows_of_one_batch_and_merged(
    start_pipeline: StartPipeline, media: Media
) -> None:
    """2 h 30 min under chapters/ (time-based metadata): two 75-minute windows, one batch, one merged result."""
    harness = start_pipeline()
    item_id = harness.upload("chapters/lecture.mp4", media.long_video(9000))
    harness.run_until_idle()

    item = harness.item(item_id)
    assert item.state is ItemState.DONE
    assert [(w.start_seconds, w.end_seconds) for w in item.windows] == [(0, 4500), (4500, 9000)]

    (batch,) = harness.batches()
    assert batch["analysis_mode"] == "time_based_metadata"
    assert sorted(custom_ids(batch)) == [f"{item_id}-a1-w0", f"{item_id}-a1-w1"]
    bounds = sorted((i["window_start_seconds"], i["window_end_seconds"]) for i in batch["items"])
    assert bounds == [(0, 4500), (4500, 9000)]

    document = harness.result(item)
    assert document["batch_id"] == batch["batch_id"]
    assert [w["custom_id"] for w in document["windows"]] == [f"{item_id}-a1-w0", f"{item_id}-a1-w1"]
    task_ids = {i["custom_id"]: i["task_id"] for i in batch["items"]}
    assert [w["task_id"] for w in document["windows"]] == [task_ids[w["custom_id"]] for w in document["windows"]]
    segments = [s for found in document["result"]["body"].values() for s in found]
    starts = [_seconds(s["start_time"]) for s in segments]
    # Segments from both windows, on the video's own timeline.
    assert any(start < 4500 for start in starts)
    assert any(start >= 4500 for start in starts)
    assert all(0 <= start <= 9000 for start in starts)


def _seconds(stamp: str | float) -> float:
    if isinstance(stamp, int | float):
        return float(stamp)
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
