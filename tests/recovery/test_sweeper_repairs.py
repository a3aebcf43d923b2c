"""Each sweeper repair: stuck work ends in a state with a reason a person can act on."""

from pathlib import Path
from typing import Any

import pytest

from tests.unit.services.harness import MotoStack
from videobatch.domain.items import ItemState
from videobatch.domain.records import BatchState, ClaimState
from videobatch.errors import VideoBatchError
from videobatch.services.flusher import LEASE_NAME

from .support import Wrapped, hours, past_decision_age, sweeper

pytestmark = pytest.mark.integration


def test_expired_lease_is_reported_and_taken_over(stack: MotoStack) -> None:
    assert stack.leases.acquire(LEASE_NAME, "crashed", now=stack.clock.now(), duration_seconds=60)
    assert sweeper(stack).run().expired_leases == []
    stack.clock.advance(61)
    summary = sweeper(stack).run()
    assert summary.expired_leases == ["flusher (crashed)"]
    assert summary.work_done == 0  # reporting is not a repair: an idle stack stays idle
    assert stack.flusher().run().lease_held_elsewhere is False


def test_asset_stuck_processing_fails_with_asset_timeout(stack: MotoStack, videos: dict[str, Path]) -> None:
    stack.emulator_settings(asset_ready_seconds=10 * 24 * 3600.0)  # the platform never finishes it
    item_id = stack.ingest("in/a.mp4", videos["short"]).item_id
    stack.clock.advance(stack.settings.asset_timeout_seconds + 1)
    summary = sweeper(stack).run()
    assert (summary.assets_overdue, summary.assets_failed) == (1, 1)
    item = stack.items.get(item_id)
    assert item is not None
    assert item.failure is not None
    assert (item.state, item.failure.code) == (ItemState.FAILED, "asset_timeout")


def test_claimed_item_under_a_released_claim_is_requeued(stack: MotoStack, videos: dict[str, Path]) -> None:
    [item_id] = stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    stack.faults({"endpoint": "POST /analyze/batches", "count": 1, "status": 503})
    stack.flusher().run()
    item = stack.items.get(item_id)
    assert item is not None
    claim = stack.claims.get(item.claim_id or "")
    assert claim is not None
    # An operator (or an older release that crashed half-way) released the claim but not the item.
    stack.claims.save(claim.model_copy(update={"state": ClaimState.RELEASED}), claim)
    past_decision_age(stack)
    summary = sweeper(stack).run()
    assert summary.claimed_items_requeued == 1
    item = stack.items.get(item_id)
    assert item is not None
    assert item.state is ItemState.QUEUED
    assert item.note is not None
    assert "released" in item.note


def _drop_batch_record(stack: MotoStack, batch_id: str) -> None:
    for part in ("BATCH", "PROGRESS"):  # the facts and the progress: the whole batch record
        stack.dynamodb.delete_item(
            TableName=stack.settings.table_name, Key={"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": part}}
        )


def test_submitted_item_without_batch_record_gets_it_rebuilt(stack: MotoStack, videos: dict[str, Path]) -> None:
    ids, batch_id = stack.submit(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    _drop_batch_record(stack, batch_id)
    past_decision_age(stack)
    assert sweeper(stack).run().batch_records_rebuilt == 1
    record = stack.batches.get(batch_id)
    assert record is not None
    assert set(record.item_ids) == set(ids)
    stack.clock.advance(600)
    assert stack.checker().check(batch_id).items_succeeded == 2


def test_submitted_item_of_an_unknown_batch_is_requeued(stack: MotoStack, videos: dict[str, Path]) -> None:
    ids, batch_id = stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(600)  # let it complete, then delete it: TwelveLabs no longer knows it
    stack.twelvelabs.delete_batch(batch_id)
    _drop_batch_record(stack, batch_id)
    past_decision_age(stack)
    assert sweeper(stack).run().submitted_items_requeued == 1
    item = stack.items.get(ids[0])
    assert item is not None
    assert item.state is ItemState.QUEUED
    assert item.note is not None
    assert "no longer knows" in item.note


def test_closed_record_with_a_submitted_item_is_reopened(stack: MotoStack, videos: dict[str, Path]) -> None:
    _, batch_id = stack.submit(videos, ("short", "in/a.mp4"))
    progress = stack.batches.get_progress(batch_id)
    assert progress is not None
    stack.batches.save_progress(progress.closed(now=stack.clock.now()), progress)
    past_decision_age(stack)
    assert sweeper(stack).run().batch_records_reopened == 1
    assert stack.checker().check_open().items_succeeded == 1


def test_open_batch_the_api_no_longer_knows_is_closed_and_requeued(stack: MotoStack, videos: dict[str, Path]) -> None:
    ids, batch_id = stack.submit(videos, ("short", "in/a.mp4"))
    stack.twelvelabs.cancel_batch(batch_id)
    stack.clock.advance(60)
    stack.twelvelabs.delete_batch(batch_id)
    stack.clock.advance(hours(26))  # its expiry check is long overdue
    summary = sweeper(stack).run()
    assert (summary.batches_not_found, summary.batch_items_settled) == (1, 1)
    progress = stack.batches.get_progress(batch_id)
    assert progress is not None
    assert (progress.state, progress.api_status) == (BatchState.CLOSED, "deleted")
    item = stack.items.get(ids[0])
    assert item is not None
    assert item.state is ItemState.QUEUED
    assert item.note is not None
    assert "batch_not_found" in item.note


def test_batch_near_results_deletion_is_collected(stack: MotoStack, videos: dict[str, Path]) -> None:
    ids, _ = stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(hours(28 * 24 + 1))  # nothing checked it for 28 days
    summary = sweeper(stack).run()
    assert (summary.batches_near_deletion, summary.batch_items_settled) == (1, 1)
    item = stack.items.get(ids[0])
    assert item is not None
    assert item.state is ItemState.DONE


def test_batch_near_deletion_whose_check_fails_requeues_the_rest(stack: MotoStack, videos: dict[str, Path]) -> None:
    ids, _ = stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(hours(28 * 24 + 1))

    def broken(batch_id: str) -> Any:
        raise VideoBatchError("results cannot be merged")

    summary = sweeper(stack, batch_checker=Wrapped(stack.checker(), check=broken)).run()
    assert (summary.batches_near_deletion, summary.submitted_items_requeued) == (1, 1)
    item = stack.items.get(ids[0])
    assert item is not None
    assert item.state is ItemState.QUEUED
    assert item.note is not None
    assert item.note.startswith("batch_results_expiring")
