"""Reconciler: finishes or undoes submissions whose flusher stopped half-way (crash, lost create answer).

A pending claim is the log of an unfinished submission saga (``services.submissions``). ``ReconcileService``
decides each pending claim whose create deadline has passed: adopt the batch holding its custom_ids (the
recorder runs saga steps 4-9 with it), or release the claim, but only on proof that no batch holds them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict, Field

from videobatch.domain.records import ClaimState
from videobatch.errors import NotFoundError, StaleStateError, TwelveLabsError
from videobatch.services.submissions import FoundBatch, RecordOutcome, SubmissionRecorder, claimed_by
from videobatch.twelvelabs import limits

if TYPE_CHECKING:
    from datetime import datetime

    from videobatch.clock import Clock
    from videobatch.config import Settings
    from videobatch.domain.records import ClaimRecord
    from videobatch.services.ports import ClaimStore, ItemStore, MetricsSink, TwelveLabsBatches
    from videobatch.twelvelabs.models import Batch

logger = logging.getLogger(__name__)

# A create sent before its deadline has returned, failed or been dropped by the API this long after it: the
# flusher's call is bounded by the deadline on our side, and this covers the API finishing a request whose caller
# already gave up. Only after it may "no batch holds the custom_ids" be taken as final.
CREATE_SETTLE_SECONDS: Final = 300.0
# How far the API's batch created_at may trail our clock: the listing window starts this long before the claim.
API_CLOCK_SKEW_SECONDS: Final = 120.0


class ReconcileSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

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

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

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
        claims: ClaimStore,
        twelvelabs: TwelveLabsBatches,
        recorder: SubmissionRecorder,
        metrics: MetricsSink,
        settle_seconds: float = CREATE_SETTLE_SECONDS,
        skew_seconds: float = API_CLOCK_SKEW_SECONDS,
    ) -> None:
        """``claims`` is read only (pending claims, consistent re-reads); every write goes through ``recorder``."""
        self._settings = settings
        self._clock = clock
        self._items = items
        self._claims = claims
        self._api = twelvelabs
        self._metrics = metrics
        self._settle = timedelta(seconds=settle_seconds)
        self._skew = timedelta(seconds=skew_seconds)
        self.recorder = recorder

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
        return self.recorder.create_deadline(claim)

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
            ids = {"claim_id": claim.claim_id, "batch_id": found.batch_id}
            logger.error("batch holds only some of the claim's requests", extra=ids)
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
        held = tuple(item_id for item_id in claim.item_ids if item_id in items and claimed_by(items[item_id], claim))
        if not held:
            return None
        if held == claim.item_ids:
            return claim
        counting = self._settings.content_counting
        content = sum(items[i].content_seconds(counting) for i in held)
        narrowed = claim.narrowed(held, content)
        return self.recorder.save_claim(narrowed, claim)

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
