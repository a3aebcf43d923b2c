"""Reconciler: finishes or undoes submissions whose flusher stopped half-way (crash, lost create answer).

A submission is a saga whose every step is durable and repeatable (docs/reliability.md has the argument):

1. claim record ``pending`` (items, custom_ids, create deadline)    4. claim ``pending`` + ``batch_id``
2. items ``queued -> claimed`` (conditional, claim id on the item)   5. items ``claimed -> submitted``
3. ``POST /analyze/batches`` before the claim's create deadline       6. batch record, 7. expiry check
                                                                      8. Batch Submitted, 9. claim ``created``

A pending claim is therefore the log of an unfinished saga. ``SubmissionRecorder`` runs steps 4-9 and is used by
both the flusher (with the create answer) and the reconciler (with the batch it found on the API); every write is
conditional, so the two racing converge on one outcome. ``ReconcileService`` decides each pending claim whose
create deadline has passed: adopt the batch holding its custom_ids, or release the claim, but only on proof that
no batch holds them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from videobatch.clock import Clock
from videobatch.config import Settings
from videobatch.domain.events import BatchSubmitted
from videobatch.domain.items import ItemState
from videobatch.errors import NotFoundError, StaleStateError, TwelveLabsError
from videobatch.services.ports import (
    BatchStore,
    ClaimStore,
    EventPublisher,
    ExpiryScheduler,
    ItemStore,
    MetricsSink,
    TwelveLabsBatches,
)
from videobatch.services.records import BatchRecord, BatchState, ClaimRecord, ClaimState, ItemRecord
from videobatch.twelvelabs import limits
from videobatch.twelvelabs.models import Batch, BatchCreated

logger = logging.getLogger(__name__)

# A create sent before its deadline has returned, failed or been dropped by the API this long after it: the
# flusher's call is bounded by the deadline on our side, and this covers the API finishing a request whose caller
# already gave up. Only after it may "no batch holds the custom_ids" be taken as final.
CREATE_SETTLE_SECONDS: Final = 300.0
# How far the API's batch created_at may trail our clock: the listing window starts this long before the claim.
API_CLOCK_SKEW_SECONDS: Final = 120.0
# An expiry check scheduled in the past would never fire; a late adoption schedules it this far ahead instead.
MIN_SCHEDULE_LEAD_SECONDS: Final = 60.0
_NOTE_LIMIT: Final = 1000


class FoundBatch(BaseModel):
    """An API batch holding a claim's requests: what recording needs of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: RecordOutcome
    items_submitted: int = 0
    items_requeued: int = 0  # claimed items the batch does not hold (anomaly)


class SubmissionRecorder:
    """Saga steps 4-9 for a claim and the batch that holds its requests; safe to run again at any point."""

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        batches: BatchStore,
        claims: ClaimStore,
        scheduler: ExpiryScheduler,
        events: EventPublisher,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._batches = batches
        self._claims = claims
        self._scheduler = scheduler
        self._events = events

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
        if batch is not None and batch.state is BatchState.OPEN:
            at = max(
                found.expires_at + timedelta(seconds=self._settings.expiry_grace_seconds),
                self._clock.now() + timedelta(seconds=MIN_SCHEDULE_LEAD_SECONDS),
            )
            self._scheduler.schedule_batch_check(found.batch_id, at)  # False: scheduled before, fine
        if submitted:
            self._publish(noted, found, [items[i] for i in in_batch if i in items])
        outcome = self._finish_claim(noted)
        return RecordResult(outcome=outcome, items_submitted=submitted, items_requeued=requeued)

    def release(self, claim: ClaimRecord, note: str) -> int:
        """Items of the claim back to ``queued`` (their place kept), then the claim ``released``; returns items moved.

        Items first: a crash in between leaves a pending claim that the next run releases again.
        """
        moved = 0
        for item in self._items.get_many(claim.item_ids).values():
            if _claimed_by(item, claim) and self.requeue(item, note):
                moved += 1
        released = claim.model_copy(update={"state": ClaimState.RELEASED, "note": note[:_NOTE_LIMIT]})
        try:
            self._claims.save(released, claim)
        except StaleStateError:
            logger.info("claim changed before its release was written", extra={"claim_id": claim.claim_id})
        return moved

    # --- steps ----------------------------------------------------------------------------------------------

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
            update = {"batch_id": found.batch_id, "note": f"batch {found.batch_id} created; recording"}
            try:
                return self._claims.save(claim.model_copy(update=update), claim)
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
        submitted = requeued = 0
        for item_id in claim.item_ids:
            item = items.get(item_id)
            if item is None or not _claimed_by(item, claim):
                continue  # moved on already (an earlier run of this step, or an operator)
            if item_id not in in_batch:
                note = f"anomaly: batch {found.batch_id} of claim {claim.claim_id} lacks this item's requests"
                logger.error("partial batch for a claim", extra=_ids(claim, found) | {"item_id": item_id})
                requeued += self.requeue(item, note)
                continue
            try:
                items[item_id] = self._items.save(item.submitted_to(found.batch_id, found.task_ids, now=now), item)
                submitted += 1
            except StaleStateError:
                logger.info("claimed item moved before submission was recorded", extra={"item_id": item_id})
        return submitted, requeued

    def requeue(self, item: ItemRecord, note: str, *, eligible_at: datetime | None = None) -> bool:
        """A claimed item back to ``queued`` in its old place (or at ``eligible_at``); its attempt number stays
        spent."""
        now = self._clock.now()
        queued = item.model_copy(
            update={
                "state": ItemState.QUEUED,
                "released_attempts": item.released_attempts + 1,  # attempt number spent, never reused
                "claim_id": None,
                "claimed_at": None,
                "updated_at": now,
                "note": note[:_NOTE_LIMIT],
                "eligible_at": eligible_at or item.eligible_at,
            }
        )
        try:
            self._items.save(queued, item)
        except StaleStateError:
            logger.info("item moved before it could be requeued", extra={"item_id": item.item_id})
            return False
        return True

    def _ensure_batch_record(
        self, claim: ClaimRecord, found: FoundBatch, items: dict[str, ItemRecord], in_batch: Sequence[str]
    ) -> BatchRecord | None:
        """Step 6, after the items: the batch checker only ever sees a record whose items are already submitted."""
        if not in_batch:
            return None
        windows_only = self._settings.count_windows_only
        record = BatchRecord(
            batch_id=found.batch_id,
            api_status=found.status,
            analysis_mode=claim.analysis_mode,
            claim_id=claim.claim_id,
            created_at=found.created_at,
            expires_at=found.expires_at,
            item_ids=tuple(in_batch),
            task_ids=found.task_ids,
            content_seconds=sum(items[i].content_seconds(windows_only=windows_only) for i in in_batch if i in items),
        )
        return self._batches.create(record)  # an identical record of this claim is accepted

    def _publish(self, claim: ClaimRecord, found: FoundBatch, members: Sequence[ItemRecord]) -> None:
        """Step 8, at least once: a crash before step 9 publishes again on the next run (consumers dedupe by id)."""
        trigger: Literal["full", "max_wait"] | None = None
        if claim.trigger in ("full", "max_wait"):
            trigger = "full" if claim.trigger == "full" else "max_wait"
        if trigger is None or not members:
            return
        now = self._clock.now()
        oldest = min(item.queued_at or item.created_at for item in members)
        content = sum(item.content_seconds(windows_only=self._settings.count_windows_only) for item in members)
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
        note = f"batch {claim.batch_id} recorded"
        try:
            self._claims.save(claim.model_copy(update={"state": ClaimState.CREATED, "note": note}), claim)
        except StaleStateError:
            fresh = self._claims.get(claim.claim_id)
            if fresh is not None and fresh.state is ClaimState.CREATED and fresh.batch_id == claim.batch_id:
                return RecordOutcome.ALREADY_RECORDED
            raise
        return RecordOutcome.RECORDED


class ReconcileSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claims_checked: int = 0
    claims_adopted: int = 0
    claims_released: int = 0
    claims_waiting: int = 0  # not decidable yet: too young, or the API list moved under the scan
    items_submitted: int = 0
    items_requeued: int = 0
    anomalies: int = 0
    lost_races: int = 0
    claims_errored: int = 0  # a write race or an API error stopped this claim's turn; the next run retries it

    @property
    def work_done(self) -> int:
        return self.claims_adopted + self.claims_released


class Decision(StrEnum):
    ADOPT = "adopt"
    RELEASE = "release"
    WAIT = "wait"


class _Search(BaseModel):
    """What one look at the API found for a claim."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision: Decision
    found: FoundBatch | None = None
    reason: str
    candidates: int = Field(default=0, ge=0)


class ReconcileService:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        batches: BatchStore,
        claims: ClaimStore,
        twelvelabs: TwelveLabsBatches,
        scheduler: ExpiryScheduler,
        events: EventPublisher,
        metrics: MetricsSink,
        settle_seconds: float = CREATE_SETTLE_SECONDS,
        skew_seconds: float = API_CLOCK_SKEW_SECONDS,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._claims = claims
        self._api = twelvelabs
        self._metrics = metrics
        self._settle = timedelta(seconds=settle_seconds)
        self._skew = timedelta(seconds=skew_seconds)
        self.recorder = SubmissionRecorder(
            settings=settings,
            clock=clock,
            items=items,
            batches=batches,
            claims=claims,
            scheduler=scheduler,
            events=events,
        )

    def run(self) -> ReconcileSummary:
        """Every pending claim whose owner can no longer act on it (its create deadline has passed)."""
        summary = ReconcileSummary()
        now = self._clock.now()
        for claim in list(self._claims.iter_pending()):
            if self.create_deadline(claim) > now:
                continue  # its flusher may still be sending the create: not ours to judge
            try:
                self.reconcile(claim, summary)
            except (StaleStateError, TwelveLabsError):
                # One claim must not stall the others, nor the flush that runs after this: its items stay claimed
                # (never resubmitted), so leaving it for the next run is safe.
                summary.claims_errored += 1
                logger.exception("claim not reconciled this run", extra={"claim_id": claim.claim_id})
        counted = (
            ("ClaimsAdopted", summary.claims_adopted),
            ("ClaimsReleased", summary.claims_released),
            ("ClaimsUnreconciled", summary.claims_errored),
        )
        for name, value in counted:
            if value:
                self._metrics.add_metric(name=name, unit="Count", value=value)
        return summary

    def create_deadline(self, claim: ClaimRecord) -> datetime:
        lease = timedelta(seconds=self._settings.flush_lease_seconds)
        return claim.create_deadline_at or claim.created_at + lease

    def reconcile(self, claim: ClaimRecord, summary: ReconcileSummary) -> None:
        summary.claims_checked += 1
        fresh = self._claims.get(claim.claim_id)  # the index is eventually consistent: decide on the record
        if fresh is None or fresh.state is not ClaimState.PENDING:
            return
        if fresh.batch_id is None:
            narrowed = self._narrow_to_held(fresh)
            if narrowed is None:
                note = "reconciler released: the claim holds none of its items, so no create was sent for them"
                self.recorder.release(fresh, note)
                summary.claims_released += 1
                return
            fresh = narrowed
        search = self._search(fresh)
        logger.info("claim reconciled", extra={"claim_id": fresh.claim_id, "decision": search.decision.value})
        if search.decision is Decision.ADOPT and search.found is not None:
            self._adopt(fresh, search.found, summary)
        elif search.decision is Decision.RELEASE:
            summary.items_requeued += self.recorder.release(fresh, f"reconciler released: {search.reason}")
            summary.claims_released += 1
        else:
            summary.claims_waiting += 1

    def _adopt(self, claim: ClaimRecord, found: FoundBatch, summary: ReconcileSummary) -> None:
        if set(found.task_ids) != set(claim.custom_ids):
            summary.anomalies += 1
            logger.error("batch holds only some of the claim's requests", extra=_ids(claim, found))
        result = self.recorder.record(claim, found)
        summary.items_submitted += result.items_submitted
        summary.items_requeued += result.items_requeued
        if result.outcome is RecordOutcome.RECORDED:
            summary.claims_adopted += 1
        elif result.outcome is RecordOutcome.ALREADY_RECORDED:
            summary.lost_races += 1
        else:
            summary.anomalies += 1

    def _narrow_to_held(self, claim: ClaimRecord) -> ClaimRecord | None:
        """The claim without the items it does not hold (only those can be in its batch); None if it holds none.

        The flusher sends the create for the items it claimed, and they stay claimed by this claim until the saga
        ends (the sweeper leaves pending claims alone). An item it lists but does not hold was never claimed (a crash
        before step 2 finished) or was released after a refused create; a later claim may send that item, so its
        custom_ids must not make this claim adopt the later claim's batch.
        """
        items = self._items.get_many(claim.item_ids)
        held = tuple(item_id for item_id in claim.item_ids if item_id in items and _claimed_by(items[item_id], claim))
        if not held:
            return None
        if held == claim.item_ids:
            return claim
        windows_only = self._settings.count_windows_only
        narrowed = claim.model_copy(
            update={
                "item_ids": held,
                "custom_ids": {cid: item_id for cid, item_id in claim.custom_ids.items() if item_id in held},
                "content_seconds": sum(items[i].content_seconds(windows_only=windows_only) for i in held),
            }
        )
        return self._claims.save(narrowed, claim)

    # --- looking at the API ---------------------------------------------------------------------------------

    def _search(self, claim: ClaimRecord) -> _Search:
        if claim.batch_id is not None:  # step 4 was written: the batch is known, only recording is left
            return self._known_batch(claim, claim.batch_id)
        first = self._scan(claim)
        if first.decision is not Decision.RELEASE:
            return first
        if self._clock.now() < self.create_deadline(claim) + self._settle:
            return _Search(decision=Decision.WAIT, reason="no batch yet; a slow create may still land")
        # Absence is final only if the window's list is stable: a batch deleted during the paging shifts the
        # pages up and could hide one; a second scan seeing the same batches rules that out.
        second = self._scan(claim)
        if second.decision is not Decision.RELEASE or second.candidates != first.candidates:
            return _Search(decision=Decision.WAIT, reason="the batch list changed during the scan")
        return first

    def _known_batch(self, claim: ClaimRecord, batch_id: str) -> _Search:
        try:
            batch = self._api.retrieve_batch(batch_id)
        except NotFoundError:
            return _Search(decision=Decision.RELEASE, reason=f"its batch {batch_id} no longer exists on TwelveLabs")
        return _Search(decision=Decision.ADOPT, found=self._holding(claim, batch), reason="batch named by the claim")

    def _scan(self, claim: ClaimRecord) -> _Search:
        """Newest first, from now back to the claim's creation (minus skew); stops once past it."""
        window_start = claim.created_at - self._skew
        window_end = self.create_deadline(claim) + self._settle + self._skew
        candidates = 0
        matches: list[FoundBatch] = []
        for batch in self._listing():
            if batch.created_at < window_start:
                break  # newest first: everything after this is older than the claim
            if batch.created_at > window_end or batch.analysis_mode != claim.analysis_mode:
                continue  # created after the claim's create was certainly over, or of another mode
            candidates += 1
            found = self._holding(claim, batch)
            if found.task_ids:
                matches.append(found)
        if not matches:
            reason = f"none of {candidates} batch(es) created since the claim holds its custom_ids"
            return _Search(decision=Decision.RELEASE, reason=reason, candidates=candidates)
        if len(matches) > 1:  # one create per claim: two holders would mean a bug somewhere
            logger.error("several batches hold one claim's requests", extra={"claim_id": claim.claim_id})
        best = max(matches, key=lambda found: len(found.task_ids))
        return _Search(decision=Decision.ADOPT, found=best, reason="custom_ids found", candidates=candidates)

    def _listing(self) -> Iterator[Batch]:
        return self._api.iter_batches(page_limit=limits.MAX_PAGE_LIMIT)

    def _holding(self, claim: ClaimRecord, batch: Batch) -> FoundBatch:
        """The claim's requests in this batch (custom_id -> task_id), from its results stream."""
        task_ids: dict[str, str] = {}
        with self._api.stream_batch_results(batch.batch_id) as lines:
            for line in lines:
                if line.custom_id is not None and line.custom_id in claim.custom_ids:
                    task_ids[line.custom_id] = line.task_id
        return FoundBatch(
            batch_id=batch.batch_id,
            status=batch.status,
            created_at=batch.created_at,
            expires_at=batch.expires_at,
            task_ids=task_ids,
        )


def _claimed_by(item: ItemRecord, claim: ClaimRecord) -> bool:
    return item.state is ItemState.CLAIMED and item.claim_id == claim.claim_id


def _items_in_batch(claim: ClaimRecord, found: FoundBatch) -> list[str]:
    """The claim's items (claim order) with at least one request in the batch."""
    holding = {claim.custom_ids[cid] for cid in found.task_ids if cid in claim.custom_ids}
    return [item_id for item_id in claim.item_ids if item_id in holding]


def _ids(claim: ClaimRecord, found: FoundBatch) -> dict[str, str]:
    return {"claim_id": claim.claim_id, "batch_id": found.batch_id}
