import dataclasses
from pathlib import Path
from typing import Any

import pytest

from videobatch.domain.items import ItemState
from videobatch.domain.records import ClaimRecord, ClaimState
from videobatch.errors import StaleStateError
from videobatch.services.reconciler import (
    API_CLOCK_SKEW_SECONDS,
    CREATE_SETTLE_SECONDS,
    FoundBatch,
    ReconcileService,
    RecordOutcome,
)

from .harness import Stack


def _reconciler(stack: Stack, **ports: Any) -> ReconcileService:
    """As the Lambdas wire it; ``ports`` replaces some of the runtime's adapters (items, claims, twelvelabs, ...)."""
    return dataclasses.replace(stack.runtime, **ports).reconcile_service()


def _lost_create(stack: Stack, videos: dict[str, Path], *keys: str) -> tuple[list[str], ClaimRecord]:
    """Items claimed, batch created, answer lost: a pending claim without a batch id."""
    ids = stack.queue(videos, *(("short", key) for key in keys))
    stack.clock.advance(stack.settings.max_wait_seconds)
    stack.faults({"endpoint": "POST /analyze/batches", "count": 1, "lose_response": True})
    stack.flusher().run()
    [claim] = stack.claims.iter_pending()
    return ids, claim


def _decidable(stack: Stack) -> None:
    stack.clock.advance(stack.settings.flush_lease_seconds + CREATE_SETTLE_SECONDS + API_CLOCK_SKEW_SECONDS + 1)


class _Claims:
    """The real claim store with chosen calls replaced."""

    def __init__(self, real: Any, **overrides: Any) -> None:
        self._real, self._overrides = real, overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(self._real, name)


def test_claims_before_their_create_deadline_are_left_alone(stack: Stack, videos: dict[str, Path]) -> None:
    _lost_create(stack, videos, "in/a.mp4")
    stack.clock.advance(stack.settings.flush_lease_seconds - 1)
    assert _reconciler(stack).run().claims_checked == 0  # its flusher may still be working on it


def test_adoption_is_idempotent(stack: Stack, videos: dict[str, Path]) -> None:
    ids, claim = _lost_create(stack, videos, "in/a.mp4", "in/b.mp4")
    _decidable(stack)
    first = _reconciler(stack).run()
    assert (first.claims_adopted, first.items_submitted) == (1, 2)
    assert stack.metrics.total("ClaimsAdopted") == 1
    assert _reconciler(stack).run().claims_checked == 0  # no longer pending
    # Reconciling the stale pending copy again converges on the same outcome, writing nothing.
    fresh = stack.claims.get(claim.claim_id)
    assert fresh is not None
    result = _reconciler(stack).recorder.record(claim, _found(stack, fresh))
    assert result.outcome is RecordOutcome.ALREADY_RECORDED
    assert {item.state for item in stack.items.get_many(ids).values()} == {ItemState.SUBMITTED}


def _found(stack: Stack, claim: ClaimRecord) -> FoundBatch:
    batch = stack.twelvelabs.retrieve_batch(claim.batch_id or "")
    with stack.twelvelabs.stream_batch_results(batch.batch_id) as lines:
        task_ids = {line.custom_id: line.task_id for line in lines if line.custom_id}
    return FoundBatch(
        batch_id=batch.batch_id,
        status=batch.status,
        created_at=batch.created_at,
        expires_at=batch.expires_at,
        task_ids=task_ids,
    )


def test_partial_batch_adopts_what_is_there_and_requeues_the_rest(stack: Stack, videos: dict[str, Path]) -> None:
    [in_batch], claim = _lost_create(stack, videos, "in/a.mp4")
    # A second item claimed under the same claim whose requests the batch does not hold (impossible by the
    # atomic create; made here by hand to exercise the anomaly path).
    [extra_id] = stack.queue(videos, ("short2", "in/x.mp4"))
    extra = stack.items.get(extra_id)
    assert extra is not None
    claimed = stack.items.save(
        extra.model_copy(update={"state": ItemState.CLAIMED, "attempts": 1, "claim_id": claim.claim_id}), extra
    )
    widened = {
        "item_ids": (*claim.item_ids, extra_id),
        "attempts": (*claim.attempts, claimed.attempts),
        "windows": (*claim.windows, len(claimed.windows)),
    }
    claim = stack.claims.save(claim.model_copy(update=widened), claim)
    _decidable(stack)
    summary = _reconciler(stack).run()
    assert (summary.claims_adopted, summary.items_submitted, summary.items_requeued, summary.anomalies) == (1, 1, 1, 1)
    requeued = stack.items.get(extra_id)
    assert requeued is not None
    assert requeued.state is ItemState.QUEUED
    assert requeued.note is not None
    assert requeued.note.startswith("anomaly")
    assert stack.items.get(in_batch).state is ItemState.SUBMITTED  # type: ignore[union-attr]


def test_a_known_batch_that_vanished_releases_the_claim(stack: Stack, videos: dict[str, Path]) -> None:
    [item_id], claim = _lost_create(stack, videos, "in/a.mp4")
    [batch] = stack.twelvelabs.iter_batches()
    stack.claims.save(claim.model_copy(update={"batch_id": batch.batch_id}), claim)
    stack.twelvelabs.cancel_batch(batch.batch_id)
    stack.clock.advance(60)
    stack.twelvelabs.delete_batch(batch.batch_id)
    _decidable(stack)
    assert _reconciler(stack).run().claims_released == 1
    assert stack.items.get(item_id).state is ItemState.QUEUED  # type: ignore[union-attr]


def test_absence_is_not_concluded_while_the_list_moves(stack: Stack, videos: dict[str, Path]) -> None:
    _lost_create(stack, videos, "in/a.mp4")
    [batch] = stack.twelvelabs.iter_batches()
    listings = iter([[batch], []])  # second scan misses it: a deletion shifted the pages

    class Api:
        def __getattr__(self, name: str) -> Any:
            return getattr(stack.twelvelabs, name)

        def iter_batches(self, **_: Any) -> Any:
            return iter(next(listings))

        def stream_batch_results(self, batch_id: str) -> Any:
            return _empty_results()

    _decidable(stack)
    summary = _reconciler(stack, twelvelabs=Api()).run()
    assert summary.claims_waiting == 1  # first scan saw a batch (without our ids), the second did not


class _empty_results:  # a context manager standing in for a results stream with no lines
    def __enter__(self) -> Any:
        return iter(())

    def __exit__(self, *exc: object) -> None:
        return None


def test_recorder_reports_conflict_and_orphan(stack: Stack, videos: dict[str, Path]) -> None:
    _, claim = _lost_create(stack, videos, "in/a.mp4")
    [batch] = stack.twelvelabs.iter_batches()
    found = FoundBatch(
        batch_id=batch.batch_id,
        status=batch.status,
        created_at=batch.created_at,
        expires_at=batch.expires_at,
        task_ids={},
    )
    recorder = _reconciler(stack).recorder
    other = claim.model_copy(update={"batch_id": "f" * 24})
    assert recorder.record(other, found).outcome is RecordOutcome.CONFLICT
    released = claim.model_copy(update={"state": ClaimState.RELEASED})
    assert recorder.record(released, found).outcome is RecordOutcome.ORPHANED


def test_recorder_raises_when_the_claim_vanishes_or_keeps_changing(stack: Stack, videos: dict[str, Path]) -> None:
    _, claim = _lost_create(stack, videos, "in/a.mp4")
    [batch] = stack.twelvelabs.iter_batches()
    found = FoundBatch(
        batch_id=batch.batch_id,
        status=batch.status,
        created_at=batch.created_at,
        expires_at=batch.expires_at,
        task_ids={},
    )

    def lose(new: Any, expected: Any) -> Any:
        raise StaleStateError("lost")

    vanished = _reconciler(stack, claims=_Claims(stack.claims, save=lose, get=lambda claim_id: None))
    with pytest.raises(StaleStateError, match="lost"):
        vanished.recorder.record(claim, found)
    churning = _reconciler(stack, claims=_Claims(stack.claims, save=lose))
    with pytest.raises(StaleStateError, match="keeps changing"):
        churning.recorder.record(claim, found)


def test_recorder_raises_when_the_claim_ends_elsewhere(stack: Stack, videos: dict[str, Path]) -> None:
    _, claim = _lost_create(stack, videos, "in/a.mp4")
    [batch] = stack.twelvelabs.iter_batches()
    found = FoundBatch(
        batch_id=batch.batch_id,
        status=batch.status,
        created_at=batch.created_at,
        expires_at=batch.expires_at,
        task_ids={},
    )
    noted = stack.claims.save(claim.model_copy(update={"batch_id": batch.batch_id}), claim)
    saves = iter([True])

    def save(new: ClaimRecord, expected: ClaimRecord) -> ClaimRecord:
        if next(saves):  # the final "created" write loses to an operator who released it meanwhile
            stack.claims.save(expected.model_copy(update={"state": ClaimState.RELEASED}), expected)
            raise StaleStateError("released meanwhile")
        return stack.claims.save(new, expected)

    recorder = _reconciler(stack, claims=_Claims(stack.claims, save=save)).recorder
    with pytest.raises(StaleStateError, match="released meanwhile"):
        recorder.record(noted, found)


def test_an_undecidable_claim_does_not_stall_the_others_or_the_flush(stack: Stack, videos: dict[str, Path]) -> None:
    """A pending claim naming a batch recorded for another claim (should never happen) fails its own turn only."""
    [sent] = stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    assert stack.flusher().run().items_submitted == 1
    item = stack.items.get(sent)
    assert item is not None
    assert item.batch_id is not None
    impostor = ClaimRecord(
        claim_id="impostor",
        owner="nobody",
        analysis_mode=item.analysis_mode,
        created_at=stack.clock.now(),
        item_ids=(sent,),
        attempts=(item.attempts,),
        windows=(len(item.windows),),
        content_seconds=item.duration_seconds or 1.0,
        batch_id=item.batch_id,
    )
    stack.claims.create(impostor)
    [waiting] = stack.queue(videos, ("short2", "in/b.mp4"))
    _decidable(stack)
    summary = _reconciler(stack).run()
    assert (summary.claims_checked, summary.claims_errored) == (1, 1)
    assert stack.metrics.total("ClaimsUnreconciled") == 1
    flush = stack.flusher().run()  # the flush behind it still runs
    assert (flush.items_submitted, flush.stop_reason) == (1, None)
    queued = stack.items.get(waiting)
    assert queued is not None
    assert queued.state is ItemState.SUBMITTED
    untouched = stack.items.get(sent)
    assert untouched == item  # the impostor changed nothing
