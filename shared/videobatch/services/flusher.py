"""Flusher: packs queued items into batches and submits them, as many as the account's free batch slots allow.

Safety against double submission has two layers: a lease lets one flusher run at a time, and, should two run anyway
(an expired lease, a manual invocation), every item moves ``queued -> claimed`` with a conditional write, so an item
can be claimed, and therefore submitted, by one flush only.

Crash and ambiguity handling: a claim record is written before any item is claimed and holds everything a
reconciler needs (items, custom_ids, the create deadline). The create is sent only before that deadline (the end
of this flusher's lease) and its wait is bounded by it. After a definitive API error no batch exists: the claim is
released and the items go back to ``queued`` in their old place. After an unknown outcome (timeout, dropped
connection, 5xx) the items stay ``claimed`` and the claim ``pending``: the reconciler (``services.reconciler``)
finds the batch by its custom_ids and adopts it, or releases the claim on proof that none exists. Flushing stops
for the round in both cases, since the slot count is uncertain. Each run first reconciles pending claims whose
deadline has passed, so their items and slots are accounted for before planning.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from itertools import islice
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from videobatch.clock import Clock
from videobatch.config import Settings
from videobatch.domain.items import FailureReason, ItemState
from videobatch.domain.packing import PackCandidate, PlannedBatch, plan_batches
from videobatch.domain.profiles import ProfileSet
from videobatch.domain.refusals import asset_refusal, rejected_request_indices, request_refusal
from videobatch.domain.windows import request_time_bounds
from videobatch.errors import (
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    StaleStateError,
    TwelveLabsError,
)
from videobatch.services.asset_checker import assets_of
from videobatch.services.ingest import item_failed_event
from videobatch.services.ports import (
    ClaimStore,
    EventPublisher,
    ItemStore,
    LeaseStore,
    MetricsSink,
    TwelveLabsFlushApi,
)
from videobatch.services.reconciler import FoundBatch, ReconcileService, RecordOutcome
from videobatch.services.records import ClaimRecord, ClaimState, ItemRecord, queued_queue
from videobatch.twelvelabs import limits
from videobatch.twelvelabs.models import (
    Asset,
    BatchCreated,
    BatchCreateRequest,
    BatchItemRequest,
    BatchStatus,
    VideoContext,
)

logger = logging.getLogger(__name__)

LEASE_NAME: Final = "flusher"
_OPTION_FIELDS_EXCEPT_BOUNDS: Final = {"start_time", "end_time"}
ACTIVE_STATUSES: Final[tuple[BatchStatus, ...]] = ("pending", "processing", "canceling")
# Do not start a create with less lease than this left: the call needs time to get an answer within the lease.
MIN_CREATE_SECONDS: Final = 5.0
# A create refused because an asset is not ready: that video waits this long before it is packed again.
REFUSED_ASSET_RETRY_SECONDS: Final = 600.0


class FlushSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease_held_elsewhere: bool = False
    active_batches: int = 0
    free_slots: int = 0
    queued_items: int = 0
    batches_submitted: int = 0
    items_submitted: int = 0
    items_failed: int = 0
    claims_released: int = 0
    claims_unresolved: int = 0  # outcome unknown: left pending for the reconciler
    claims_reconciled: int = 0  # older pending claims adopted or released at the start of the run
    batches_orphaned: int = 0  # created after the reconciler had released the claim: canceled
    items_lost_to_other_flushers: int = 0
    stop_reason: str | None = None

    @property
    def work_done(self) -> int:
        return self.items_submitted + self.items_failed


class _Stop(Exception):
    """Ends this round of flushing (not an error: the next scheduled run tries again)."""


class FlushService:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        claims: ClaimStore,
        leases: LeaseStore,
        twelvelabs: TwelveLabsFlushApi,
        events: EventPublisher,
        profiles: ProfileSet,
        metrics: MetricsSink,
        reconciler: ReconcileService,
        owner: str | None = None,
    ) -> None:
        """``reconciler`` runs first in every flush (under the lease) and records this flusher's submissions."""
        self._settings = settings
        self._clock = clock
        self._items = items
        self._claims = claims
        self._leases = leases
        self._api = twelvelabs
        self._events = events
        self._profiles = profiles
        self._metrics = metrics
        self._reconciler = reconciler
        self._owner = owner or uuid.uuid4().hex
        self._lease_until = clock.now()

    def run(self) -> FlushSummary:
        now = self._clock.now()
        if not self._leases.acquire(
            LEASE_NAME, self._owner, now=now, duration_seconds=self._settings.flush_lease_seconds
        ):
            logger.info("flush skipped: another flusher holds the lease")
            return FlushSummary(lease_held_elsewhere=True)
        self._lease_until = now + timedelta(seconds=self._settings.flush_lease_seconds)
        summary = FlushSummary()
        try:
            summary.claims_reconciled = self._reconciler.run().work_done
            self._flush(summary)
        except _Stop as stop:
            summary.stop_reason = str(stop)
        finally:
            self._leases.release(LEASE_NAME, self._owner)
        self._report(summary)
        return summary

    # --- planning -----------------------------------------------------------------------------------------

    def _flush(self, summary: FlushSummary) -> None:
        summary.active_batches = self._count_active_batches()
        settings = self._settings
        summary.free_slots = settings.max_active_batches - settings.reserved_batch_slots - summary.active_batches
        queued = self._load_queued(max(summary.free_slots, 1) * settings.max_items_per_batch)
        summary.queued_items = len(queued)
        self._report_queue(queued)
        if summary.free_slots <= 0:
            raise _Stop("no free batch slot")
        plan = plan_batches(
            [candidate for item in queued.values() if (candidate := self._candidate(item, summary))],
            now=self._clock.now(),
            free_slots=summary.free_slots,
            max_items=settings.max_items_per_batch,
            max_content_seconds=settings.max_content_seconds_per_batch,
            max_wait_seconds=settings.max_wait_seconds,
            count_windows_only=settings.count_windows_only,
        )
        for unpackable in plan.unpackable:
            self._fail(queued[unpackable.item_id], unpackable.failure, summary)
        for planned in plan.batches:
            self._submit(planned, queued, summary)

    def _count_active_batches(self) -> int:
        # Asked of the API, not our records: other tools may share the account's five slots.
        return sum(1 for _ in self._api.iter_batches(status=ACTIVE_STATUSES, page_limit=limits.MAX_PAGE_LIMIT))

    def _load_queued(self, per_mode_limit: int) -> dict[str, ItemRecord]:
        """The oldest eligible queued items of each mode; FIFO packing never needs more than a batch-full per slot."""
        now = self._clock.now()
        loaded: dict[str, ItemRecord] = {}
        for mode in limits.ANALYSIS_MODES:
            for item in islice(self._items.iter_queue(queued_queue(mode), until=now), per_mode_limit):
                loaded[item.item_id] = item
        return loaded

    def _candidate(self, item: ItemRecord, summary: FlushSummary) -> PackCandidate | None:
        try:
            self._profiles.by_name(item.profile_name or "")
        except ConfigurationError as error:
            self._fail(item, FailureReason(code="profile_missing", message=str(error)), summary)
            return None
        if item.duration_seconds is None or not item.windows or item.eligible_at is None:
            failure = FailureReason(code="incomplete_item", message="queued without duration or windows")
            self._fail(item, failure, summary)
            return None
        return PackCandidate(
            item_id=item.item_id,
            analysis_mode=item.analysis_mode,
            eligible_at=item.eligible_at,
            video_duration_seconds=item.duration_seconds,
            windows=item.windows,
        )

    # --- submission ---------------------------------------------------------------------------------------

    def _submit(self, planned: PlannedBatch, queued: dict[str, ItemRecord], summary: FlushSummary) -> None:
        wanted = [queued[candidate.item_id] for candidate in planned.items]
        claim = self._claims.create(self._claim_record(wanted, planned))
        claimed = self._claim_items(wanted, claim.claim_id, summary)
        if len(claimed) != len(wanted):
            claim = self._claims.save(self._claim_record(claimed, planned, claim), claim)
        if not claimed:
            self._claims.save(claim.model_copy(update={"state": ClaimState.RELEASED, "note": "all lost"}), claim)
            return
        request = self._request(claimed)
        budget_seconds = (self._create_deadline(claim) - self._clock.now()).total_seconds()
        if budget_seconds < MIN_CREATE_SECONDS:
            # Past the deadline the reconciler may already judge this claim: sending now could double-submit.
            self._release(claim, claimed, TimeoutError("lease nearly over before the create was sent"), summary)
            raise _Stop("lease nearly over")
        try:
            created = self._api.create_batch(request, max_wait_seconds=budget_seconds)
        except OutcomeUnknownError as error:
            self._leave_pending(claim, error, summary)
            raise _Stop("batch create outcome unknown") from error
        except (TwelveLabsError, InvalidInputError) as error:
            # Every other failure of create_batch guarantees that no batch was created (see the client).
            self._refused(claim, claimed, request, error, summary)
            raise _Stop(f"batch create refused: {error}") from error
        self._record_submission(claim, claimed, created, planned, summary)

    def _claim_record(
        self, items: Sequence[ItemRecord], planned: PlannedBatch, previous: ClaimRecord | None = None
    ) -> ClaimRecord:
        custom_ids = {
            custom_id: item.item_id
            for item in items
            for custom_id in (item if item.state is ItemState.CLAIMED else _next_attempt(item)).custom_ids()
        }
        return ClaimRecord(
            claim_id=previous.claim_id if previous else uuid.uuid4().hex,
            owner=self._owner,
            analysis_mode=planned.analysis_mode,
            created_at=previous.created_at if previous else self._clock.now(),
            item_ids=tuple(item.item_id for item in items),
            custom_ids=custom_ids,
            content_seconds=planned.content_seconds,
            version=previous.version if previous else 0,
            create_deadline_at=self._lease_until,
            trigger=planned.trigger.value,
            fill_ratio=planned.fill_ratio,
        )

    def _create_deadline(self, claim: ClaimRecord) -> datetime:
        return claim.create_deadline_at or self._lease_until

    def _claim_items(self, items: Sequence[ItemRecord], claim_id: str, summary: FlushSummary) -> list[ItemRecord]:
        now = self._clock.now()
        claimed: list[ItemRecord] = []
        for item in items:
            update = {"state": ItemState.CLAIMED, "claim_id": claim_id, "claimed_at": now, "updated_at": now}
            try:
                claimed.append(self._items.save(_next_attempt(item).model_copy(update=update), item))
            except StaleStateError:
                summary.items_lost_to_other_flushers += 1
                logger.info("item claimed elsewhere", extra={"item_id": item.item_id, "claim_id": claim_id})
        return claimed

    def _request(self, items: Sequence[ItemRecord]) -> BatchCreateRequest:
        requests: list[BatchItemRequest] = []
        for item in items:
            options = self._profiles.by_name(item.profile_name or "").options
            base = options.model_dump(exclude=_OPTION_FIELDS_EXCEPT_BOUNDS, exclude_none=True)
            for custom_id, window in item.custom_ids().items():
                bounds = request_time_bounds(window, video_duration_seconds=item.duration_seconds or 0.0)
                requests.append(
                    BatchItemRequest(
                        video=VideoContext(asset_id=item.asset_id or ""),
                        custom_id=custom_id,
                        **base,
                        **bounds.model_dump(exclude_none=True),
                    )
                )
        return BatchCreateRequest(model_name=limits.MODEL_NAME, analysis_mode=items[0].analysis_mode, requests=requests)

    def _leave_pending(self, claim: ClaimRecord, error: Exception, summary: FlushSummary) -> None:
        summary.claims_unresolved += 1
        note = f"create outcome unknown: {error}"
        with contextlib.suppress(StaleStateError):  # the reconciler acts on it already
            self._claims.save(claim.model_copy(update={"note": note[:1000]}), claim)
        logger.warning("batch create outcome unknown; claim left pending", extra={"claim_id": claim.claim_id})

    def _refused(
        self,
        claim: ClaimRecord,
        claimed: Sequence[ItemRecord],
        request: BatchCreateRequest,
        error: Exception,
        summary: FlushSummary,
    ) -> None:
        """No batch was created. The videos the refusal is traced to fail (domain.refusals); the rest go back."""
        failures, deferred = self._blame(claimed, request, error)
        for item in claimed:
            if item.item_id in failures:
                self._fail(item, failures[item.item_id], summary, stage="submission")
        back = [item for item in claimed if item.item_id not in failures]
        self._release(claim, back, error, summary, deferred=deferred)

    def _blame(
        self, claimed: Sequence[ItemRecord], request: BatchCreateRequest, error: Exception
    ) -> tuple[dict[str, FailureReason], set[str]]:
        """(failures by item id, item ids to requeue later: their asset is not ready yet)."""
        owner = {custom_id: item.item_id for item in claimed for custom_id in item.custom_ids()}
        named = [request.requests[i] for i in rejected_request_indices(error) if i < len(request.requests)]
        failures = {owner[r.custom_id]: request_refusal(error) for r in named if r.custom_id in owner}
        if failures or not isinstance(error, NotFoundError | ConflictError):
            return failures, set()
        assets = self._lookup_assets(claimed)
        if assets is None:
            return {}, set()
        deferred: set[str] = set()
        for item in claimed:
            asset = assets.get(item.asset_id or "")
            status = asset.status if asset is not None else None
            failure = asset_refusal(
                item.asset_id,
                status,
                found=asset is not None,
                times_refused=item.released_attempts,
                max_refusals=self._settings.max_attempts,
            )
            if failure is not None:
                failures[item.item_id] = failure
            elif status != "ready":
                deferred.add(item.item_id)
        return failures, deferred

    def _lookup_assets(self, items: Sequence[ItemRecord]) -> dict[str, Asset] | None:
        """The items' assets as TwelveLabs lists them; None when the lookup itself failed (blame nobody then)."""
        try:
            return assets_of(self._api, items)
        except TwelveLabsError as error:
            logger.warning("assets of a refused batch not looked up", extra={"error": str(error)})
            return None

    def _release(
        self,
        claim: ClaimRecord,
        claimed: Sequence[ItemRecord],
        error: Exception,
        summary: FlushSummary,
        deferred: AbstractSet[str] = frozenset(),
    ) -> None:
        """No batch was created: the items go back to the queue, then the claim is released (items first, as the
        reconciler does, so a crash in between leaves a pending claim it finishes). The attempt number stays spent:
        a custom_id is never sent under two claims, which the reconciler's search relies on. ``deferred`` items
        wait ``REFUSED_ASSET_RETRY_SECONDS`` so they do not block the queue's head meanwhile."""
        note = f"released: {type(error).__name__}: {error}"[:1000]
        later = self._clock.now() + timedelta(seconds=REFUSED_ASSET_RETRY_SECONDS)
        for item in claimed:
            self._reconciler.recorder.requeue(item, note, eligible_at=later if item.item_id in deferred else None)
        self._claims.save(claim.model_copy(update={"state": ClaimState.RELEASED, "note": note}), claim)
        summary.claims_released += 1
        logger.warning("batch create refused; claim released", extra={"claim_id": claim.claim_id, "error": str(error)})

    def _record_submission(
        self,
        claim: ClaimRecord,
        claimed: Sequence[ItemRecord],
        created: BatchCreated,
        planned: PlannedBatch,
        summary: FlushSummary,
    ) -> None:
        # The same steps the reconciler runs when it adopts a batch, so a crash anywhere in them is finished there.
        result = self._reconciler.recorder.record(claim, FoundBatch.from_created(created), claimed)
        if result.outcome is RecordOutcome.ORPHANED:
            self._cancel_orphan(created.batch_id, summary)
            raise _Stop("claim released while its create was in flight")
        summary.batches_submitted += 1
        summary.items_submitted += result.items_submitted
        self._metrics.add_metric(name="BatchFillRatio", unit="Percent", value=round(planned.fill_ratio * 100, 2))
        logger.info(
            "batch submitted",
            extra={"batch_id": created.batch_id, "claim_id": claim.claim_id, "items": result.items_submitted},
        )

    def _cancel_orphan(self, batch_id: str, summary: FlushSummary) -> None:
        """A batch whose claim was released (its items requeued under a new attempt): nobody will read it."""
        summary.batches_orphaned += 1
        logger.error("orphan batch: claim released before the create answered", extra={"batch_id": batch_id})
        try:
            self._api.cancel_batch(batch_id)
        except TwelveLabsError as error:  # already terminal, or the API is down: it only costs money, log it
            logger.error("orphan batch not canceled", extra={"batch_id": batch_id, "error": str(error)})

    def _fail(
        self,
        item: ItemRecord,
        failure: FailureReason,
        summary: FlushSummary,
        stage: Literal["packing", "submission"] = "packing",
    ) -> None:
        now = self._clock.now()
        failed = item.model_copy(
            update={"state": ItemState.FAILED, "failure": failure, "finished_at": now, "updated_at": now}
        )
        try:
            self._items.save(failed, item)
        except StaleStateError:
            return
        summary.items_failed += 1
        self._events.publish([item_failed_event(failed, failure, stage, now=now)])

    # --- metrics ------------------------------------------------------------------------------------------

    def _report_queue(self, queued: dict[str, ItemRecord]) -> None:
        self._metrics.add_metric(name="QueuedItems", unit="Count", value=len(queued))
        if queued:
            now = self._clock.now()
            oldest = min(item.queued_at or item.updated_at for item in queued.values())
            self._metrics.add_metric(
                name="OldestQueuedItemAgeSeconds", unit="Seconds", value=max(0.0, (now - oldest).total_seconds())
            )

    def _report(self, summary: FlushSummary) -> None:
        self._metrics.add_metric(
            name="ActiveBatches", unit="Count", value=summary.active_batches + summary.batches_submitted
        )
        self._metrics.add_metric(name="BatchesSubmitted", unit="Count", value=summary.batches_submitted)
        if summary.items_failed:
            self._metrics.add_metric(name="ItemsFailed", unit="Count", value=summary.items_failed)


def _next_attempt(item: ItemRecord) -> ItemRecord:
    """The item as it will be claimed: one more attempt, which the custom_ids of this submission carry."""
    return item.model_copy(update={"attempts": item.attempts + 1})
