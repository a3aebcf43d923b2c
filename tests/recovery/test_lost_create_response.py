"""The create call's answer is lost: the batch may or may not exist. Both outcomes converge, nothing twice."""

from pathlib import Path

import pytest

from tests.unit.services.harness import MotoStack
from videobatch.domain.items import ItemState
from videobatch.domain.records import ClaimState

from .support import assert_each_submitted_once, past_decision_age, sweeper

pytestmark = pytest.mark.integration


def test_created_but_answer_lost_is_adopted(stack: MotoStack, videos: dict[str, Path]) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("three_hours", "in/b.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    stack.faults({"endpoint": "POST /analyze/batches", "count": 1, "lose_response": True})
    assert stack.flusher().run().claims_unresolved == 1
    stack.observed_events()
    stack.clock.advance(stack.settings.flush_lease_seconds)  # its flusher is certainly gone now
    summary = sweeper(stack).run()
    assert (summary.reconcile.claims_adopted, summary.reconcile.items_submitted) == (1, 2)
    items = stack.items.get_many(ids)
    [batch_id] = {item.batch_id for item in items.values()}
    assert batch_id is not None
    assert all(item.state is ItemState.SUBMITTED and item.attempts == 1 for item in items.values())
    assert sum(len(item.task_ids) for item in items.values()) == 3
    record = stack.batches.get(batch_id)
    assert record is not None
    claim = stack.claims.get(record.claim_id)
    assert claim is not None
    assert (claim.state, claim.batch_id) == (ClaimState.CREATED, batch_id)
    assert [e["detail-type"] for e in stack.observed_events()] == ["Batch Submitted"]
    assert stack.flusher().run().batches_submitted == 0
    assert_each_submitted_once(stack)
    # ... and the adopted batch completes like any other.
    stack.clock.advance(3 * 3600)
    assert stack.checker().check(batch_id).items_succeeded == 2


def test_refused_with_503_is_released_and_submitted_exactly_once(stack: MotoStack, videos: dict[str, Path]) -> None:
    [item_id] = stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    stack.faults({"endpoint": "POST /analyze/batches", "count": 1, "status": 503})
    assert stack.flusher().run().claims_unresolved == 1  # a 5xx after sending: outcome unknown to the client
    stack.clock.advance(stack.settings.flush_lease_seconds)
    assert sweeper(stack).run().reconcile.claims_waiting == 1  # no batch yet, but a slow create could still land
    past_decision_age(stack)
    summary = sweeper(stack).run()
    assert (summary.reconcile.claims_released, summary.reconcile.items_requeued) == (1, 1)
    item = stack.items.get(item_id)
    assert item is not None
    assert (item.state, item.attempts, item.released_attempts) == (ItemState.QUEUED, 1, 1)
    assert item.note is not None
    assert "reconciler released" in item.note
    assert stack.flusher().run().items_submitted == 1
    item = stack.items.get(item_id)
    assert item is not None
    assert (item.state, item.attempts, item.counted_attempts) == (ItemState.SUBMITTED, 2, 1)
    assert_each_submitted_once(stack)
    assert list(stack.claims.iter_pending()) == []
