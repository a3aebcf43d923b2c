"""The flusher dies between two saga steps; the reconciler (sweeper or next flush) finishes or undoes the saga."""

from pathlib import Path
from typing import Any

import pytest

from tests.unit.services.harness import MotoStack
from videobatch.domain.items import ItemState
from videobatch.domain.records import ClaimState, ItemRecord

from .support import Crash, Wrapped, assert_each_submitted_once, past_decision_age, sweeper

pytestmark = pytest.mark.integration


def _claim_of(stack: MotoStack, item_id: str) -> Any:
    item = stack.items.get(item_id)
    assert item is not None
    return stack.claims.get(item.claim_id or "")


def test_crash_after_claim_before_create_releases_then_submits_once(stack: MotoStack, videos: dict[str, Path]) -> None:
    [item_id] = stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)

    def die(*args: Any, **kwargs: Any) -> Any:
        raise Crash("killed before the create was sent")

    flusher = stack.flusher()
    flusher._api = Wrapped(stack.twelvelabs, create_batch=die)  # the crash point
    with pytest.raises(Crash):
        flusher.run()
    claim = _claim_of(stack, item_id)
    assert (claim.state, claim.batch_id) == (ClaimState.PENDING, None)
    past_decision_age(stack)
    # The next flush reconciles first: no batch anywhere holds the claim's custom_ids, so it is released ...
    summary = stack.flusher().run()
    assert summary.claims_reconciled == 1
    # ... and its item is submitted in the same run, under a fresh attempt number.
    assert summary.items_submitted == 1
    item = stack.items.get(item_id)
    assert item is not None
    assert (item.state, item.attempts, item.released_attempts) == (ItemState.SUBMITTED, 2, 1)
    assert_each_submitted_once(stack)


def test_crash_after_create_before_anything_is_recorded(stack: MotoStack, videos: dict[str, Path]) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)

    def die_on_save(new: Any, expected: Any) -> Any:
        raise Crash("killed right after the create answered")

    flusher = stack.with_ports(claims=Wrapped(stack.claims, save=die_on_save)).flush_service()
    with pytest.raises(Crash):
        flusher.run()
    claim = _claim_of(stack, ids[0])
    assert (claim.state, claim.batch_id) == (ClaimState.PENDING, None)  # the batch id was never written down
    stack.clock.advance(stack.settings.flush_lease_seconds)
    summary = sweeper(stack).run()
    assert (summary.reconcile.claims_adopted, summary.reconcile.items_submitted) == (1, 2)
    assert {item.state for item in stack.items.get_many(ids).values()} == {ItemState.SUBMITTED}
    assert_each_submitted_once(stack)


def test_crash_while_items_are_marked_submitted(stack: MotoStack, videos: dict[str, Path]) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    saves = {"submitted": 0}

    def save(new: ItemRecord, expected: ItemRecord) -> ItemRecord:
        if new.state is ItemState.SUBMITTED:
            saves["submitted"] += 1
            if saves["submitted"] == 2:
                raise Crash("killed between two item writes")
        return stack.items.save(new, expected)

    flusher = stack.with_ports(items=Wrapped(stack.items, save=save)).flush_service()
    with pytest.raises(Crash):
        flusher.run()
    claim = _claim_of(stack, ids[0])
    assert claim.state is ClaimState.PENDING
    assert claim.batch_id is not None  # step 4 held: recovery needs no search
    assert stack.batches.get(claim.batch_id) is None  # the checker never sees a half-recorded batch
    states = sorted(item.state for item in stack.items.get_many(ids).values())
    assert states == [ItemState.CLAIMED, ItemState.SUBMITTED]
    stack.clock.advance(stack.settings.flush_lease_seconds)
    summary = sweeper(stack).run()
    assert (summary.reconcile.claims_adopted, summary.reconcile.items_submitted) == (1, 1)
    record = stack.batches.get(claim.batch_id)
    assert record is not None
    assert set(record.item_ids) == set(ids)
    assert {item.batch_id for item in stack.items.get_many(ids).values()} == {claim.batch_id}
    assert_each_submitted_once(stack)
    assert sweeper(stack).run().work_done == 0  # converged: a second pass finds nothing to do


def test_crash_while_claiming_does_not_tie_unclaimed_items_to_the_claim(
    stack: MotoStack, videos: dict[str, Path]
) -> None:
    """The claim lists two items but dies after claiming one; the other is sent by a later claim under the custom_id
    the first one listed. Reconciling the first claim must not adopt the later claim's batch."""
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    claimed = {"n": 0}

    def save(new: ItemRecord, expected: ItemRecord) -> ItemRecord:
        if new.state is ItemState.CLAIMED:
            claimed["n"] += 1
            if claimed["n"] == 2:
                raise Crash("killed between two claims")
        return stack.items.save(new, expected)

    flusher = stack.with_ports(items=Wrapped(stack.items, save=save)).flush_service()
    with pytest.raises(Crash):
        flusher.run()
    states = {item.item_id: item.state for item in stack.items.get_many(ids).values()}
    [held] = [item_id for item_id, state in states.items() if state is ItemState.CLAIMED]
    [free] = [item_id for item_id, state in states.items() if state is ItemState.QUEUED]
    first = _claim_of(stack, held)
    assert set(first.item_ids) == set(ids)  # it lists both, holds one
    # Before the first claim's deadline, the free item goes out in its own batch, with the custom_id the first
    # claim lists for it.
    assert stack.flusher().run().items_submitted == 1
    sent = stack.items.get(free)
    assert sent is not None
    assert set(sent.task_ids) <= set(first.custom_ids)
    past_decision_age(stack)
    summary = stack.flusher().run()  # before the fix: the reconciler adopted that batch and stalled every flush
    assert (summary.claims_reconciled, summary.items_submitted, summary.stop_reason) == (1, 1, None)
    released = stack.claims.get(first.claim_id)
    assert released is not None
    assert (released.state, released.item_ids) == (ClaimState.RELEASED, (held,))
    assert {item.state for item in stack.items.get_many(ids).values()} == {ItemState.SUBMITTED}
    assert_each_submitted_once(stack)


def test_crash_between_refused_create_and_claim_release(stack: MotoStack, videos: dict[str, Path]) -> None:
    """The create is refused, the items are requeued, the process dies before the claim is released."""
    [item_id] = stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    stack.faults({"endpoint": "POST /analyze/batches", "count": 1, "status": 409, "code": "asset_not_ready"})

    def die_on_release(new: Any, expected: Any) -> Any:
        if new.state is ClaimState.RELEASED:
            raise Crash("killed before the claim was released")
        return stack.claims.save(new, expected)

    flusher = stack.with_ports(claims=Wrapped(stack.claims, save=die_on_release)).flush_service()
    with pytest.raises(Crash):
        flusher.run()
    [pending] = list(stack.claims.iter_pending())
    assert stack.flusher().run().items_submitted == 1  # the requeued item goes out under a fresh attempt number
    item = stack.items.get(item_id)
    assert item is not None
    assert set(item.task_ids).isdisjoint(pending.custom_ids)
    past_decision_age(stack)
    summary = stack.flusher().run()
    assert (summary.claims_reconciled, summary.stop_reason) == (1, None)
    released = stack.claims.get(pending.claim_id)
    assert released is not None
    assert released.state is ClaimState.RELEASED
    assert released.note is not None
    assert "holds none of its items" in released.note
    assert_each_submitted_once(stack)
