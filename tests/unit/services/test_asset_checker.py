from pathlib import Path
from typing import Any

import pytest

from videobatch.domain.items import ItemState
from videobatch.domain.records import INTAKE_QUEUE, queued_queue
from videobatch.services import asset_checker

from .harness import Stack


def test_ready_assets_are_queued_with_windows(stack: Stack, videos: dict[str, Path]) -> None:
    short = stack.ingest("in/cat.mp4", videos["short"]).item_id
    long = stack.ingest("in/long.mp4", videos["three_hours"]).item_id
    assert stack.asset_checker().run().still_processing == 2
    stack.clock.advance(10)
    summary = stack.asset_checker().run()
    assert (summary.queued, summary.failed) == (2, 0)
    items = stack.items.get_many([short, long])
    assert items[short].state is ItemState.QUEUED
    assert items[short].duration_seconds == pytest.approx(20, abs=0.5)
    assert len(items[short].windows) == 1
    assert items[short].queued_at == stack.clock.now()
    assert [w.duration_seconds for w in items[long].windows] == pytest.approx([5400, 5400], abs=1)
    assert {i.item_id for i in stack.items.iter_queue(queued_queue("general"))} == {short, long}
    assert list(stack.items.iter_queue(INTAKE_QUEUE)) == []
    assert stack.asset_checker().run().checked == 0


def test_too_long_video_fails_with_reason_and_event(stack: Stack, videos: dict[str, Path]) -> None:
    item_id = stack.ingest("in/over.mp4", videos["over_four_hours"]).item_id
    stack.clock.advance(10)
    assert stack.asset_checker().run().failed == 1
    item = stack.items.get(item_id)
    assert item is not None
    assert item.state is ItemState.FAILED
    assert item.failure is not None
    assert item.failure.code == "video_too_long"
    [event] = stack.observed_events()
    assert (event["detail-type"], event["detail"]["stage"]) == ("Item Failed", "asset")


def test_failed_asset_fails_the_item_with_its_message(stack: Stack, tmp_path: Path) -> None:
    from videobatch_tools.samples import write_corrupt_video

    item_id = stack.ingest("in/broken.mp4", write_corrupt_video(tmp_path / "broken.mp4")).item_id
    stack.clock.advance(10)
    stack.asset_checker().run()
    item = stack.items.get(item_id)
    assert item is not None
    assert item.failure is not None
    assert (item.state, item.failure.code) == (ItemState.FAILED, "asset_failed")
    assert item.failure.message


def test_asset_that_never_becomes_ready_times_out(stack: Stack, videos: dict[str, Path]) -> None:
    item_id = stack.ingest("in/cat.mp4", videos["short"]).item_id
    item = stack.items.get(item_id)
    assert item is not None
    stack.twelvelabs.delete_asset(item.asset_id or "")
    stack.clock.advance(60)
    assert stack.asset_checker().run().still_processing == 1
    stack.clock.advance(stack.settings.asset_timeout_seconds)
    assert stack.asset_checker().run().failed == 1
    failed = stack.items.get(item_id)
    assert failed is not None
    assert failed.failure is not None
    assert failed.failure.code == "asset_timeout"


def test_checks_many_assets_fifty_per_call(stack: Stack, videos: dict[str, Path]) -> None:
    for n in range(3):
        stack.ingest(f"in/{n}.mp4", videos["short"])
    calls: list[int] = []
    real = stack.twelvelabs.list_assets

    def counting(**kwargs: object) -> object:
        calls.append(len(kwargs["asset_ids"]))  # type: ignore[arg-type]
        return real(**kwargs)  # type: ignore[arg-type]

    stack.twelvelabs.list_assets = counting  # type: ignore[assignment,method-assign]
    stack.clock.advance(10)
    checker = stack.asset_checker()
    assert checker.run().queued == 3
    assert calls == [3]


def test_an_asset_the_pipeline_cannot_use_fails_its_item_alone(
    stack: Stack, videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = stack.ingest("in/odd.mp4", videos["three_hours"]).item_id
    fine = stack.ingest("in/fine.mp4", videos["short"]).item_id
    stack.clock.advance(10)
    real = asset_checker.plan_windows

    def planning(duration_seconds: float, **bounds: Any) -> Any:
        if duration_seconds > 3600:  # stands for an answer about one asset that no rule anticipated
            raise ValueError("a duration no window plan fits")
        return real(duration_seconds, **bounds)

    monkeypatch.setattr(asset_checker, "plan_windows", planning)
    summary = stack.asset_checker().run()
    assert (summary.queued, summary.failed) == (1, 1)
    items = stack.items.get_many([odd, fine])
    assert items[fine].state is ItemState.QUEUED
    failure = items[odd].failure
    assert failure is not None
    assert failure.code == "asset_unusable"
    assert "a duration no window plan fits" in failure.message
