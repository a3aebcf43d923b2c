"""The one writer of claims and batch records: ``SubmissionRecorder``.

A submission is a saga whose every step is durable and repeatable (docs/reliability.md has the argument):

1. claim record ``pending`` (items, custom_ids, create deadline)    4. claim ``pending`` + ``batch_id``
2. items ``queued -> claimed`` (conditional, claim id on the item)   5. items ``claimed -> submitted``
3. ``POST /analyze/batches`` before the claim's create deadline       6. batch record, 7. expiry check
                                                                      8. Batch Submitted, 9. claim ``created``

A pending claim is therefore the log of an unfinished saga. ``record`` runs steps 4-9 and is used by both the
flusher (with the create answer) and the reconciler (with the batch it found on the API); every write is
conditional, so the two racing converge on one outcome. The recorder also owns the rest of a claim's and a batch
record's life: opening and narrowing claims, releasing them, rebuilding a lost batch record (sweeper), counting a
batch's settled items and closing it (batch checker), reopening it. Item moves go through the ``ItemWriter``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Literal

from pydantic import BaseModel, ConfigDict

from videobatch.domain.events import BatchFinished, BatchSubmitted
from videobatch.domain.items import ItemState
from videobatch.domain.records import BatchProgress, BatchRecord, BatchState, ClaimRecord, ClaimState, ItemRecord
from videobatch.errors import StaleStateError

if TYPE_CHECKING:
    from videobatch.clock import Clock
    from videobatch.config import Settings
    from videobatch.services.lifecycle import ItemWriter
    from videobatch.services.ports import BatchStore, ClaimStore, EventPublisher, ExpiryScheduler, ItemStore
    from videobatch.twelvelabs.limits import AnalysisMode
    from videobatch.twelvelabs.models import Batch, BatchCreated

logger = logging.getLogger(__name__)

# An expiry check scheduled in the past would never fire; a late adoption schedules it this far ahead instead.
MIN_SCHEDULE_LEAD_SECONDS: Final = 60.0


class FoundBatch(BaseModel):
    """An API batch holding a claim's requests: what recording needs of it."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    batch_id: str
    status: str
    created_at: datetime
    expires_at: datetime
    task_ids: dict[str, str]  # custom_id -> task_id, only the claim's own

    @classmethod
    def from_created(cls, created: BatchCreated) -> FoundBatch:
        task_ids = {entry.custom_id: entry.task_id for entry in created.items if entry.custom_id}
        return cls(
            batch_id=created.batch_id,
            status=created.status,
            created_at=created.created_at,
            expires_at=created.expires_at,
            task_ids=task_ids,
        )


class RecordOutcome(StrEnum):
    RECORDED = "recorded"  # this call finished the saga
    ALREADY_RECORDED = "already_recorded"  # someone else finished it first: same outcome
    ORPHANED = "orphaned"  # the claim was released meanwhile: this batch belongs to nobody
    CONFLICT = "conflict"  # the claim names another batch: impossible by the atomic create, logged


class RecordResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    outcome: RecordOutcome
    items_submitted: int = 0
    items_requeued: int = 0  # claimed items the batch does not hold (anomaly)


class SubmissionRecorder:
    """Saga steps 4-9 for a claim and the batch that holds its requests, and every other claim or batch write."""

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        writer: ItemWriter,
        batches: BatchStore,
        claims: ClaimStore,
        scheduler: ExpiryScheduler,
        events: EventPublisher,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._writer = writer
        self._batches = batches
        self._claims = claims
        self._scheduler = scheduler
        self._events = events

    # --- claims -------------------------------------------------------------------------------------------

    def open_claim(self, claim: ClaimRecord) -> ClaimRecord:
        """Saga step 1."""
        return self._claims.create(claim)

    def save_claim(self, new: ClaimRecord, expected: ClaimRecord) -> ClaimRecord:
        """A pending claim rewritten (narrowed to the items it holds, or a note); StaleStateError on a race."""
        return self._claims.save(new, expected)

    def note_claim(self, claim: ClaimRecord, note: str) -> None:
        """Leave the claim pending with why; losing to the reconciler (which acts on it already) is fine."""
        try:
            self._claims.save(claim.noted(note), claim)
        except StaleStateError:
            logger.info("claim changed before its note was written", extra={"claim_id": claim.claim_id})

    def create_deadline(self, claim: ClaimRecord) -> datetime:
        """The owner sends the create only before this; the one rule for flusher and reconciler alike."""
        lease = timedelta(seconds=self._settings.flush_lease_seconds)
        return claim.create_deadline_at or claim.created_at + lease

    def release(
        self,
        claim: ClaimRecord,
        note: str,
        *,
        known_items: Sequence[ItemRecord] | None = None,
        deferred: AbstractSet[str] = frozenset(),
        deferred_until: datetime | None = None,
    ) -> int:
        """Items of the claim back to ``queued`` (their place kept; ``deferred`` ones at ``deferred_until``), then
        the claim ``released``; returns items moved. Items first: a crash in between leaves a pending claim that
        the next run releases again."""
        candidates = self._items.get_many(claim.item_ids).values() if known_items is None else known_items
        moved = 0
        for item in candidates:
            if not claimed_by(item, claim):
                continue
            later = deferred_until if item.item_id in deferred else None
            moved += self._writer.release(item, note, eligible_at=later) is not None
        try:
            self._claims.save(claim.released(note), claim)
        except StaleStateError:
            logger.info("claim changed before its release was written", extra={"claim_id": claim.claim_id})
        return moved

    # --- saga steps 4-9 ------------------------------------------------------------------------------------

    def record(
        self, claim: ClaimRecord, found: FoundBatch, known_items: Sequence[ItemRecord] | None = None
    ) -> RecordResult:
        """``known_items``: the claim's items as the caller last wrote them (the flusher); else read consistently."""
        noted = self._note_batch(claim, found)
        if isinstance(noted, RecordResult):
            return noted
        if known_items is None:
            items = self._items.get_many(noted.item_ids)
        else:
            items = {item.item_id: item for item in known_items}
        in_batch = _items_in_batch(noted, found)
        submitted, requeued = self._settle_claimed(noted, found, items, in_batch)
        batch = self._ensure_batch_record(noted, found, items, in_batch)
        if batch is not None:  # a check of a batch closed meanwhile finds nothing to do, then deletes itself
            self.schedule_expiry_check(found.batch_id, found.expires_at)
        if submitted:
            self._publish_submitted(noted, found, [items[i] for i in in_batch if i in items])
        outcome = self._finish_claim(noted)
        return RecordResult(outcome=outcome, items_submitted=submitted, items_requeued=requeued)

    def _note_batch(self, claim: ClaimRecord, found: FoundBatch) -> ClaimRecord | RecordResult:
        """Step 4: the claim names its batch. Returns the claim to continue with, or the final result."""
        for _ in range(3):  # a concurrent note write (same batch) may move the version once or twice
            if claim.state is ClaimState.RELEASED:
                logger.error("batch created for a released claim", extra=_ids(claim, found))
                return RecordResult(outcome=RecordOutcome.ORPHANED)
            if claim.batch_id is not None and claim.batch_id != found.batch_id:
                logger.error("claim names another batch", extra=_ids(claim, found) | {"named": claim.batch_id})
                return RecordResult(outcome=RecordOutcome.CONFLICT)
            if claim.state is ClaimState.CREATED:
                return RecordResult(outcome=RecordOutcome.ALREADY_RECORDED)
            if claim.batch_id == found.batch_id:
                return claim
            try:
                return self._claims.save(claim.noting_batch(found.batch_id), claim)
            except StaleStateError:
                fresh = self._claims.get(claim.claim_id)
                if fresh is None:
                    raise
                claim = fresh
        raise StaleStateError(f"claim {claim.claim_id} keeps changing while its batch is recorded")

    def _settle_claimed(
        self, claim: ClaimRecord, found: FoundBatch, items: dict[str, ItemRecord], in_batch: Sequence[str]
    ) -> tuple[int, int]:
        """Step 5: claimed items the batch holds -> submitted; claimed items it does not hold -> queued."""
        now = self._clock.now()
        requeued = 0
        moves: list[tuple[ItemRecord, ItemRecord]] = []
        for item_id in claim.item_ids:
            item = items.get(item_id)
            if item is None or not claimed_by(item, claim):
                continue  # moved on already (an earlier run of this step, or an operator)
            if item_id not in in_batch:
                note = f"anomaly: batch {found.batch_id} of claim {claim.claim_id} lacks this item's requests"
                logger.error("partial batch for a claim", extra=_ids(claim, found) | {"item_id": item_id})
                requeued += self._writer.release(item, note) is not None
                continue
            moves.append((item.submit(found.batch_id, found.task_ids, now=now), item))
        stored = [record for record in self._writer.save_all(moves) if record is not None]
        items.update((record.item_id, record) for record in stored)
        return len(stored), requeued

    def _ensure_batch_record(
        self, claim: ClaimRecord, found: FoundBatch, items: dict[str, ItemRecord], in_batch: Sequence[str]
    ) -> BatchRecord | None:
        """Step 6, after the items: the batch checker only ever sees a record whose items are already submitted."""
        if not in_batch:
            return None
        members = [items[i] for i in in_batch if i in items]
        record = self._batch_record(found, claim.analysis_mode, claim.claim_id, members)
        return self._batches.create(record, record.progress(found.status))  # a record of this claim is accepted

    def _batch_record(
        self, found: FoundBatch, analysis_mode: AnalysisMode, claim_id: str, members: Sequence[ItemRecord]
    ) -> BatchRecord:
        """The one definition of a batch record (its expiry check is ``schedule_expiry_check``'s)."""
        counting = self._settings.content_counting
        return BatchRecord(
            batch_id=found.batch_id,
            analysis_mode=analysis_mode,
            claim_id=claim_id,
            created_at=found.created_at,
            expires_at=found.expires_at,
            item_ids=tuple(item.item_id for item in members),
            windows=tuple(len(item.windows) for item in members),
            attempts=tuple(item.attempts for item in members),
            content_seconds=sum(item.content_seconds(counting) for item in members),
        )

    def schedule_expiry_check(self, batch_id: str, expires_at: datetime) -> None:
        """Step 7: one check at ``expires_at`` + grace (never in the past, where it would not fire)."""
        at = max(
            expires_at + timedelta(seconds=self._settings.expiry_grace_seconds),
            self._clock.now() + timedelta(seconds=MIN_SCHEDULE_LEAD_SECONDS),
        )
        self._scheduler.schedule_batch_check(batch_id, at)  # False: scheduled before, fine

    def _publish_submitted(self, claim: ClaimRecord, found: FoundBatch, members: Sequence[ItemRecord]) -> None:
        """Step 8, at least once: a crash before step 9 publishes again on the next run (consumers dedupe by id)."""
        trigger: Literal["full", "max_wait"] | None = None
        if claim.trigger in ("full", "max_wait"):
            trigger = "full" if claim.trigger == "full" else "max_wait"
        if trigger is None or not members:
            return
        now = self._clock.now()
        oldest = min(item.queued_at or item.created_at for item in members)
        content = sum(item.content_seconds(self._settings.content_counting) for item in members)
        if content <= 0:
            return
        self._events.publish(
            [
                BatchSubmitted(
                    occurred_at=now,
                    batch_id=found.batch_id,
                    analysis_mode=claim.analysis_mode,
                    item_count=len(members),
                    request_count=sum(len(item.windows) for item in members),
                    content_seconds=content,
                    fill_ratio=claim.fill_ratio or 0.0,
                    trigger=trigger,
                    oldest_queued_at=oldest,
                    oldest_wait_seconds=max(0.0, (now - oldest).total_seconds()),
                    expires_at=found.expires_at,
                )
            ]
        )

    def _finish_claim(self, claim: ClaimRecord) -> RecordOutcome:
        """Step 9: the claim leaves the pending queue; losing this write to an identical one is the same outcome."""
        try:
            self._claims.save(claim.recorded(), claim)
        except StaleStateError:
            fresh = self._claims.get(claim.claim_id)
            if fresh is not None and fresh.state is ClaimState.CREATED and fresh.batch_id == claim.batch_id:
                return RecordOutcome.ALREADY_RECORDED
            raise
        return RecordOutcome.RECORDED

    # --- batch records after the saga ---------------------------------------------------------------------

    def rebuild_batch(self, api_batch: Batch, members: Sequence[ItemRecord], claim_ids: AbstractSet[str]) -> bool:
        """The sweeper's repair: a batch the items name but whose record was lost; False when it exists already."""
        found = FoundBatch(
            batch_id=api_batch.batch_id,
            status=api_batch.status,
            created_at=api_batch.created_at,
            expires_at=api_batch.expires_at,
            task_ids={cid: task for item in members for cid, task in item.task_ids.items()},
        )
        claim_id = sorted(claim_ids)[0] if claim_ids else "unknown"
        record = self._batch_record(found, api_batch.analysis_mode, claim_id, members)
        try:
            self._batches.create(record, record.progress(api_batch.status))
        except StaleStateError:
            return False
        self.schedule_expiry_check(api_batch.batch_id, api_batch.expires_at)
        logger.warning("batch record rebuilt", extra={"batch_id": api_batch.batch_id, "items": len(members)})
        return True

    def reopen_batch(self, progress: BatchProgress) -> bool:
        """Closed while an item was still submitted to it (a race): open again so the checker collects it."""
        try:
            self._batches.save_progress(progress.reopened(), progress)
        except StaleStateError:
            return False
        logger.warning("batch record reopened for items still submitted", extra={"batch_id": progress.batch_id})
        return True

    def update_progress(
        self, progress: BatchProgress, new: BatchProgress, record: BatchRecord | None, api_batch: Batch | None
    ) -> BatchProgress | None:
        """A check's outcome (``new``, built from ``progress``); when it closes the batch (``record`` given then),
        its expiry check is dropped and Batch Finished published. None: changed meanwhile."""
        # The check's successes reach the outcome ledger here: one write per batch check, not one per item.
        self._writer.flush_outcomes()
        if new == progress:
            return progress  # nothing moved: no write
        try:
            stored = self._batches.save_progress(new, progress)
        except StaleStateError:
            logger.info("batch progress changed meanwhile", extra={"batch_id": progress.batch_id})
            return None
        if stored.state is BatchState.CLOSED and record is not None:
            # The expiry check has nothing left to do; an idle stack should not wake for it.
            self._scheduler.cancel_batch_check(progress.batch_id)
            self._events.publish([_finished_event(record, stored, api_batch, self._clock.now())])
            logger.info("batch closed", extra={"batch_id": progress.batch_id})
        return stored


def _finished_event(
    record: BatchRecord, progress: BatchProgress, api_batch: Batch | None, now: datetime
) -> BatchFinished:
    status: Literal["completed", "canceled", "expired"] = "expired"  # a deleted batch has certainly expired
    if api_batch is not None and api_batch.status in ("completed", "canceled"):
        status = "completed" if api_batch.status == "completed" else "canceled"
    return BatchFinished(
        occurred_at=now,
        batch_id=record.batch_id,
        analysis_mode=record.analysis_mode,
        status=status,
        request_count=record.request_count,
        ready_requests=api_batch.ready_items if api_batch else 0,
        failed_requests=api_batch.failed_items if api_batch else 0,
        canceled_requests=api_batch.canceled_items if api_batch else 0,
        items_succeeded=progress.succeeded_items,
        items_failed=progress.failed_items,
        items_requeued=progress.requeued_items,
        submitted_at=record.created_at,
        duration_seconds=max(0.0, (now - record.created_at).total_seconds()),
    )


def claimed_by(item: ItemRecord, claim: ClaimRecord) -> bool:
    """Whether ``item`` is held by ``claim`` (claimed with its id): only such items can be in the claim's batch."""
    return item.state is ItemState.CLAIMED and item.claim_id == claim.claim_id


def _items_in_batch(claim: ClaimRecord, found: FoundBatch) -> list[str]:
    """The claim's items (claim order) with at least one request in the batch."""
    holding = {claim.custom_ids[cid] for cid in found.task_ids if cid in claim.custom_ids}
    return [item_id for item_id in claim.item_ids if item_id in holding]


def _ids(claim: ClaimRecord, found: FoundBatch) -> dict[str, str]:
    return {"claim_id": claim.claim_id, "batch_id": found.batch_id}
