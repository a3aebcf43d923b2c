"""Batch and item failures end to end: expiry, retryable and terminal item errors, the attempt limit."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from tests.integration.conftest import StartPipeline
from tests.integration.support import Media, attempt_of, custom_ids
from twelvelabs_emulator.models import EmulatorSettings
from videobatch.domain.items import ItemState

pytestmark = pytest.mark.integration

NORMAL = EmulatorSettings(item_concurrency=8, content_seconds_per_second=600.0, asset_ready_seconds=20.0)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_an_expired_batch_requeues_its_items_and_they_finish_in_a_later_batch(
    start_pipeline: StartPipeline, media: Media
) -> None:
    """TwelveLabs slowed down so much that the 24 h expiry hits with one item processing and two queued."""
    harness = start_pipeline(
        # One item at a time, 2 s of video taking 200,000 s (55 h): the batch cannot finish in 24 h.
        emulator_settings=NORMAL.model_copy(update={"item_concurrency": 1, "content_seconds_per_second": 1e-5}),
        # Hourly schedules: a day of virtual time in a few dozen steps.
        parameter_overrides={
            "AssetCheckRate": "rate(1 hour)",
            "FlushRate": "rate(1 hour)",
            "BatchCheckRate": "rate(1 hour)",
            "SweepRate": "rate(6 hours)",
            "MaxWaitSeconds": "0",
        },
    )
    harness.subscribe_events()
    item_ids = {harness.upload(f"videos/slow-{n}.mp4", media.video(2, seed=n)) for n in range(3)}

    harness.run_until(lambda: any(b["status"] == "expired" for b in harness.batches()))
    # TwelveLabs is back to normal before the requeued items are submitted again.
    harness.set_emulator(**NORMAL.model_dump())
    harness.run_until_idle()

    first, second = harness.batches()
    assert first["status"] == "expired"
    outcomes = Counter((item["status"], (item["error"] or {}).get("code")) for item in first["items"])
    assert outcomes == {("failed", "batch_processing_timeout"): 1, ("canceled", "batch_expired"): 2}
    assert second["status"] == "completed"
    assert _at(second["created_at"]) >= _at(first["expires_at"])

    items = harness.items()
    assert set(items) == item_ids
    assert {(item.state, item.attempts) for item in items.values()} == {(ItemState.DONE, 2)}
    # Every (item, attempt) was submitted in exactly one batch: attempt 1 in the expired one, attempt 2 in the next.
    submitted = Counter(cid for batch in (first, second) for cid in custom_ids(batch))
    assert set(submitted.values()) == {1}
    assert {attempt_of(cid)[1] for cid in custom_ids(first)} == {1}
    assert {attempt_of(cid)[1] for cid in custom_ids(second)} == {2}
    assert {attempt_of(cid)[0] for cid in submitted} == item_ids
    for item in items.values():
        document = harness.result(item)
        assert (document["batch_id"], document["attempt"]) == (second["batch_id"], 2)

    finished = {
        e["detail"]["batch_id"]: e["detail"] for e in harness.published() if e["detail-type"] == "Batch Finished"
    }
    assert finished[first["batch_id"]]["status"] == "expired"
    assert finished[second["batch_id"]]["status"] == "completed"


def test_a_retryable_item_failure_is_requeued_after_backoff_and_then_succeeds(
    start_pipeline: StartPipeline, media: Media
) -> None:
    harness = start_pipeline()
    harness.faults([{"item_failure": {"code": "internal_error", "message": "Transient trouble.", "rate": 1.0}}])
    item_ids = {harness.upload(f"videos/flaky-{n}.mp4", media.video(2, seed=n)) for n in range(2)}

    def requeued() -> bool:
        return all(harness.item(i).state is ItemState.QUEUED and harness.item(i).attempts == 1 for i in item_ids)

    harness.run_until(requeued)
    harness.faults([])  # the trouble is over
    harness.run_until_idle()

    first, second = harness.batches()
    assert {(i["status"], i["error"]["code"]) for i in first["items"]} == {("failed", "internal_error")}
    assert {i["status"] for i in second["items"]} == {"ready"}
    # Requeued with the policy's backoff (60 s after the first failure), not at once.
    assert _at(second["created_at"]) - _at(first["completed_at"]) >= timedelta(seconds=60)
    items = harness.items()
    assert {(item.state, item.attempts) for item in items.values()} == {(ItemState.DONE, 2)}
    assert {harness.result(item)["batch_id"] for item in items.values()} == {second["batch_id"]}
    checks = harness.observer.results_of("BatchCheckerFunction")
    assert sum(c["items_requeued"] for c in checks) == 2


def test_a_terminal_item_failure_fails_the_item_with_the_apis_code_and_message(
    start_pipeline: StartPipeline, media: Media
) -> None:
    harness = start_pipeline()
    harness.subscribe_events()
    message = "The video stream cannot be decoded."
    harness.faults([{"item_failure": {"code": "video_file_broken", "message": message, "rate": 1.0}}])
    item_id = harness.upload("videos/broken.mp4", media.video(2))
    harness.run_until_idle()

    item = harness.item(item_id)
    assert item.state is ItemState.FAILED
    assert item.attempts == 1
    assert item.failure is not None
    assert (item.failure.code, item.failure.message) == ("video_file_broken", message)
    assert item.result_key is None
    assert len(harness.batches()) == 1  # not retried
    (failed,) = [e["detail"] for e in harness.published() if e["detail-type"] == "Item Failed"]
    assert (failed["stage"], failed["failure_code"], failed["failure_message"]) == (
        "analysis",
        "video_file_broken",
        message,
    )
    assert failed["task_ids"] == [harness.batches()[0]["items"][0]["task_id"]]


def test_an_item_failing_every_attempt_fails_with_max_attempts_exceeded(
    start_pipeline: StartPipeline, media: Media
) -> None:
    harness = start_pipeline()
    harness.faults([{"item_failure": {"code": "service_unavailable", "rate": 1.0}}])
    item_id = harness.upload("videos/unlucky.mp4", media.video(2))
    harness.run_until_idle()

    max_attempts = harness.pipeline.settings.max_attempts
    item = harness.item(item_id)
    assert item.state is ItemState.FAILED
    assert item.attempts == max_attempts
    assert item.failure is not None
    assert item.failure.code == "max_attempts_exceeded"
    assert "service_unavailable" in item.failure.message
    batches = harness.batches()
    assert [custom_ids(b) for b in batches] == [[f"{item_id}-a{n}-w0"] for n in range(1, max_attempts + 1)]
    assert {i["error"]["code"] for b in batches for i in b["items"]} == {"service_unavailable"}
