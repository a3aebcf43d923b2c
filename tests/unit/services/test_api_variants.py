"""The pipeline against the emulator's variants of what the TwelveLabs docs leave open (docs/emulator.md)."""

from __future__ import annotations

from pathlib import Path

from videobatch.domain.items import ItemState
from videobatch_tools.samples import write_sample_video

from .harness import Stack


def test_ready_lines_with_an_error_keep_their_warning_in_the_result_and_the_event(
    stack: Stack, videos: dict[str, Path]
) -> None:
    stack.emulator_settings(variants=["ready_with_warning"])
    [item_id], batch_id = stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(3600)
    assert stack.checker().check(batch_id).items_succeeded == 1
    item = stack.items.get(item_id)
    assert item is not None
    assert item.state is ItemState.DONE
    document = stack.read_json(item.result_key or "")
    [warning] = document["warnings"]
    assert warning["window"] == 0
    assert warning["message"]
    [succeeded] = [e for e in stack.observed_events() if e["detail-type"] == "Item Succeeded"]
    assert succeeded["detail"]["warnings"] == [warning["message"]]


def test_new_enum_values_are_carried_and_the_videos_still_finish(stack: Stack, videos: dict[str, Path]) -> None:
    stack.emulator_settings(variants=["new_enum_values"])
    ids, batch_id = stack.submit(videos, ("short", "in/a.mp4"), ("three_hours", "in/b.mp4"))
    progress = stack.batches.get_progress(batch_id)
    assert progress is not None
    stack.clock.advance(3600)
    summary = stack.checker().check_open()
    assert summary.items_succeeded == 2
    assert {item.state for item in stack.items.get_many(ids).values()} == {ItemState.DONE}


def test_a_batch_in_a_status_the_client_does_not_know_holds_its_slot(stack: Stack, videos: dict[str, Path]) -> None:
    _, batch_id = stack.submit(videos, ("short", "in/a.mp4"))
    progress = stack.batches.get_progress(batch_id)
    assert progress is not None
    stack.batches.save_progress(progress.observed("validating", 0), progress)  # what a check saw last
    stack.queue(videos, ("short2", "in/b.mp4"))
    summary = stack.flusher(reserved_batch_slots=3).run()  # two usable slots
    # The API lists no active batch (the filter knows no 'validating'), yet ours is counted: one slot is left.
    assert (summary.active_batches, summary.free_slots) == (0, 1)
    assert stack.metrics.total("UnknownBatchStatuses") == 1


def test_a_two_hour_video_stays_within_the_window_limit_when_the_platform_measures_it_longer(
    stack: Stack, tmp_path: Path
) -> None:
    """window_overrun: the platform sees each video 0.5 s longer than the probe. A 2 h video planned as one
    window without end_time would fail video_duration_too_long; planned windows stay a minute below 2 h."""
    stack.emulator_settings(variants=["window_overrun"])
    two_hours = write_sample_video(tmp_path / "two.mp4", duration_seconds=7200)
    [item_id], batch_id = stack.submit({"two": two_hours}, ("two", "in/two.mp4"))
    item = stack.items.get(item_id)
    assert item is not None
    assert len(item.windows) == 2
    stack.clock.advance(6 * 3600)
    assert stack.checker().check(batch_id).items_succeeded == 1


def test_results_noise_loses_no_result(stack: Stack, videos: dict[str, Path]) -> None:
    stack.emulator_settings(variants=["results_noise"])
    ids, batch_id = stack.submit(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    stack.clock.advance(3600)
    assert stack.checker().check(batch_id).items_succeeded == 2
    assert {item.state for item in stack.items.get_many(ids).values()} == {ItemState.DONE}
