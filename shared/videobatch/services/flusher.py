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

import logging
import uuid
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import timedelta
from enum import StrEnum
from itertools import islice
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from videobatch.clock import Clock
from videobatch.config import Settings
from videobatch.domain.items import FailureReason, ItemState
from videobatch.domain.packing import PackCandidate, PlannedBatch, plan_batches, wait_allowance_seconds
from videobatch.domain.profiles import ProfileSet
from videobatch.domain.records import ClaimRecord, ItemRecord, queued_queue
from videobatch.domain.refusals import asset_refusal, rejected_request_indices, request_refusal
from videobatch.domain.windows import request_time_bounds
from videobatch.errors import (
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    RequestValidationError,
    TwelveLabsError,
    UnprocessableEntityError,
    is_pipeline_fault,
)
from videobatch.services.asset_checker import assets_of
from videobatch.services.control import paused
from videobatch.services.lifecycle import ItemWriter
from videobatch.services.ports import BatchStore, ControlStore, ItemStore, LeaseStore, MetricsSink, TwelveLabsFlushApi
from videobatch.services.reconciler import ReconcileService
from videobatch.services.submissions import FoundBatch, RecordOutcome, SubmissionRecorder
from videobatch.twelvelabs import limits
from videobatch.twelvelabs.models import (
    AnalysisOptions,
    Asset,
    Batch,
    BatchCreated,
    BatchCreateRequest,
    BatchItemRequest,
    BatchStatus,
    VideoContext,
)

logger = logging.getLogger(__name__)

LEASE_NAME: Final = "flusher"
MODES: Final = limits.ANALYSIS_MODES
_OPTION_FIELDS_EXCEPT_BOUNDS: Final = {"start_time", "end_time"}
ACTIVE_STATUSES: Final[tuple[BatchStatus, ...]] = ("pending", "processing", "canceling")
# Do not start a create with less lease than this left: the call needs time to get an answer within the lease.
MIN_CREATE_SECONDS: Final = 5.0
# With videos waiting and every slot busy, a flush watches a batch on its last items this long at most, looking
# every interval, and keeps this much of its lease for claiming and creating once a slot frees. Longer than the
# one-minute schedule on purpose: the run a minute later finds the lease held and ends at once, so the slot is
# watched without a gap.
SLOT_WATCH_SECONDS: Final = 90.0
SLOT_WATCH_INTERVAL_SECONDS: Final = 5.0
SLOT_WATCH_RESERVE_SECONDS: Final = 60.0
# Creates one run may send to trace unattributed refusals (2·log2(1,000) ≈ 20: one refused 1,000-request batch).
MAX_BISECT_CREATES_PER_RUN: Final = 20
# A create refused because an asset is not ready: that video waits this long before it is packed again.
REFUSED_ASSET_RETRY_SECONDS: Final = 600.0


class FlushSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

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
    slot_watch_seconds: float = 0.0  # spent watching a batch on its last items for its slot
    refusal_bisections: int = 0  # creates sent to trace a refusal that named no request
    stop_reason: str | None = None

    @property
    def work_done(self) -> int:
        return self.items_submitted + self.items_failed


class _Sent(StrEnum):
    SUBMITTED = "submitted"
    BISECTED = "bisected"  # refused without naming a request: split, each half sent on its own
    NOTHING = "nothing"  # every item was claimed by another flush


class _Stop(Exception):
    """Ends this round of flushing (not an error: the next scheduled run tries again)."""


class FlushService:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        batches: BatchStore,
        writer: ItemWriter,
        recorder: SubmissionRecorder,
        leases: LeaseStore,
        twelvelabs: TwelveLabsFlushApi,
        profiles: ProfileSet,
        metrics: MetricsSink,
        reconciler: ReconcileService,
        owner: str | None = None,
        control: ControlStore | None = None,
    ) -> None:
        """``reconciler`` runs first in every flush (under the lease); ``recorder`` writes claims and batches;
        ``control``: the operators' pause switch, read before planning (None: never paused)."""
        self._control = control
        self._settings = settings
        self._clock = clock
        self._items = items
        self._batches = batches
        self._writer = writer
        self._recorder = recorder
        self._leases = leases
        self._api = twelvelabs
        self._profiles = profiles
        self._metrics = metrics
        self._reconciler = reconciler
        self._owner = owner or uuid.uuid4().hex
        self._lease_until = clock.now()
        self._waiting = False  # an eligible video waits (seen when the queue age is reported)
        self._unknown: set[str] = set()  # our open batches in statuses the client does not know: counted as active

    def run(self) -> FlushSummary:
        # From DynamoDB alone, before the lease or any TwelveLabs call: a bad key or an API outage that fails every
        # flush still shows as a growing wait, which is what the oldest-queued alarm watches.
        self._report_oldest_queued()
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
        if paused(self._control, self._metrics):
            raise _Stop("paused by an operator")  # no new batch; running ones are collected as ever
        self._unknown = self._unknown_statuses()
        active = self._active_batches()
        if self._free_slots(active) <= 0 and self._waiting:
            active = self._watch_for_a_slot(active, summary)
        settings = self._settings
        summary.active_batches = len(active)
        summary.free_slots = self._free_slots(active)
        self._metrics.add_metric(name="FreeSlots", unit="Count", value=max(summary.free_slots, 0))
        if summary.free_slots <= 0:
            raise _Stop("no free batch slot")  # nothing to plan: the queue is not even read
        queued = self._load_queued(summary.free_slots * settings.max_items_per_batch)
        summary.queued_items = len(queued)
        self._metrics.add_metric(name="QueuedItems", unit="Count", value=len(queued))
        plan = plan_batches(
            [candidate for item in queued.values() if (candidate := self._candidate(item, summary))],
            now=self._clock.now(),
            free_slots=summary.free_slots,
            max_items=settings.max_items_per_batch,
            max_content_seconds=settings.max_content_seconds_per_batch,
            max_wait_seconds=wait_allowance_seconds(summary.free_slots, settings.max_wait_seconds),
            content_counting=settings.content_counting,
        )
        for unpackable in plan.unpackable:
            self._fail(queued[unpackable.item_id], unpackable.failure, summary)
        for planned in plan.batches:
            self._submit(planned, queued, summary)

    def _active_batches(self) -> list[Batch]:
        # Asked of the API, not our records: other tools may share the account's five slots.
        return list(self._api.iter_batches(status=ACTIVE_STATUSES, page_limit=limits.MAX_PAGE_LIMIT))

    def _free_slots(self, active: Sequence[Batch]) -> int:
        unlisted = self._unknown - {batch.batch_id for batch in active}
        used = len(active) + len(unlisted)
        return self._settings.max_active_batches - self._settings.reserved_batch_slots - used

    def _unknown_statuses(self) -> set[str]:
        """Our open batches last seen in a status the client does not know (a new one the API added): a filter on
        the known active statuses may not list them, yet they may well hold a slot, so they count as active."""
        known = limits.ACTIVE_BATCH_STATUSES | limits.TERMINAL_BATCH_STATUSES
        unknown = {progress.batch_id for progress in self._batches.iter_open() if progress.api_status not in known}
        if unknown:
            logger.warning("open batches in an unknown status count as active", extra={"batches": len(unknown)})
            self._metrics.add_metric(name="UnknownBatchStatuses", unit="Count", value=len(unknown))
        return unknown

    def _watch_for_a_slot(self, active: list[Batch], summary: FlushSummary) -> list[Batch]:
        """Videos wait and every slot is busy, but a batch is on its last items (none queued): watch for it to end,
        briefly, so its slot is refilled within seconds instead of at the next scheduled run a minute later."""
        start = self._clock.now()
        deadline = min(
            start + timedelta(seconds=SLOT_WATCH_SECONDS),
            self._lease_until - timedelta(seconds=MIN_CREATE_SECONDS + SLOT_WATCH_RESERVE_SECONDS),
        )
        while self._free_slots(active) <= 0 and any(batch.queued_items == 0 for batch in active):
            if self._clock.now() + timedelta(seconds=SLOT_WATCH_INTERVAL_SECONDS) > deadline:
                break
            self._clock.sleep(SLOT_WATCH_INTERVAL_SECONDS)
            active = self._active_batches()
        summary.slot_watch_seconds = (self._clock.now() - start).total_seconds()
        return active

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
            alone=item.refusals_alone > 0,
        )

    # --- submission ---------------------------------------------------------------------------------------

    def _submit(self, planned: PlannedBatch, queued: dict[str, ItemRecord], summary: FlushSummary) -> None:
        wanted = [queued[candidate.item_id] for candidate in planned.items]
        if self._send(wanted, planned, summary) is _Sent.BISECTED:
            # The halves took slots the plan did not count: the next run plans with a fresh count.
            raise _Stop("an unattributed refusal was traced by bisecting")

    def _send(self, wanted: Sequence[ItemRecord], planned: PlannedBatch, summary: FlushSummary) -> _Sent:
        claim = self._recorder.open_claim(self._claim_record(wanted, planned))
        claimed = self._claim_items(wanted, claim.claim_id, summary)
        if not claimed:
            self._recorder.release(claim, "every item was claimed by another flush", known_items=())
            return _Sent.NOTHING
        if len(claimed) != len(wanted):
            claim = self._recorder.save_claim(self._claim_record(claimed, planned, claim), claim)
        request = self._request(claimed)
        budget_seconds = (self._recorder.create_deadline(claim) - self._clock.now()).total_seconds()
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
            return self._after_refusal(claim, claimed, request, error, planned=planned, summary=summary)
        self._record_submission(claim, claimed, created, planned, summary)
        return _Sent.SUBMITTED

    def _after_refusal(
        self,
        claim: ClaimRecord,
        claimed: Sequence[ItemRecord],
        request: BatchCreateRequest,
        error: Exception,
        *,
        planned: PlannedBatch,
        summary: FlushSummary,
    ) -> _Sent:
        """No batch was created. A pipeline fault (our key refused, the API down) blames nobody and ends the run;
        a refusal traced to videos fails those; an unattributed one is bisected until it is traced."""
        if is_pipeline_fault(error):
            self._release(claim, claimed, error, summary)
            if isinstance(error, RateLimitError):  # the five slots, or the rate limit: not an error, a full house
                raise _Stop(f"batch create refused: {error}") from error
            raise error
        if self._refused(claim, claimed, request, error, summary):
            raise _Stop(f"batch create refused: {error}") from error
        if not _unattributed(error):
            self._release(claim, claimed, error, summary)
            raise _Stop(f"batch create refused: {error}") from error
        if len(claimed) == 1:
            self._refused_alone(claim, claimed[0], error, summary)
            return _Sent.BISECTED
        self._release(claim, claimed, error, summary)
        self._bisect([item.item_id for item in claimed], planned, error, summary)
        return _Sent.BISECTED

    def _bisect(self, item_ids: Sequence[str], planned: PlannedBatch, error: Exception, summary: FlushSummary) -> None:
        """The API refused the batch naming no request (docs promise no index in their messages): send each half on
        its own, recursively, so the innocent go out and the refusal narrows to its video, at most about
        2·log2(n) creates, bounded per run. Only while a slot is free: a batch refused because the account's slots
        are taken (some APIs say so with a 400 or 409) must not be mistaken for a bad video."""
        if self._free_slots(self._active_batches()) <= 0:
            raise _Stop(f"batch create refused with every slot taken (the active-batch limit?): {error}")
        if summary.refusal_bisections + 2 > MAX_BISECT_CREATES_PER_RUN:
            raise _Stop(f"an unattributed refusal is still being traced (next run): {error}")
        released = self._items.get_many(item_ids)
        items = [released[i] for i in item_ids if i in released and released[i].state is ItemState.QUEUED]
        half = len(items) // 2
        self._metrics.add_metric(name="RefusalBisections", unit="Count", value=1)
        for part in (items[:half], items[half:]):
            if part:
                summary.refusal_bisections += 1
                self._send(part, _part_of(planned, part, self._settings), summary)

    def _refused_alone(self, claim: ClaimRecord, item: ItemRecord, error: Exception, summary: FlushSummary) -> None:
        """A create holding only this video's request was refused: it is the culprit. It fails with the API's words
        once that happened max_attempts times (a transient answer gets its retries), and meanwhile is packed
        alone, later, so it never blocks the queue."""
        if item.refusals_alone + 1 >= self._settings.max_attempts:
            self._fail(item, request_refusal(error), summary)
            self._recorder.release(claim, f"its only video failed: {error}", known_items=())
            return
        note = f"refused alone ({item.refusals_alone + 1} of {self._settings.max_attempts}): {error}"
        later = self._clock.now() + timedelta(seconds=REFUSED_ASSET_RETRY_SECONDS)
        self._writer.save(item.refused_alone(note, now=self._clock.now(), eligible_at=later), item)
        self._recorder.release(claim, note, known_items=())
        summary.claims_released += 1

    def _claim_record(
        self, items: Sequence[ItemRecord], planned: PlannedBatch, previous: ClaimRecord | None = None
    ) -> ClaimRecord:
        return ClaimRecord(
            claim_id=previous.claim_id if previous else uuid.uuid4().hex,
            owner=self._owner,
            analysis_mode=planned.analysis_mode,
            created_at=previous.created_at if previous else self._clock.now(),
            item_ids=tuple(item.item_id for item in items),
            attempts=tuple(item.next_attempt for item in items),
            windows=tuple(len(item.windows) for item in items),
            content_seconds=planned.content_seconds,
            version=previous.version if previous else 0,
            create_deadline_at=self._lease_until,
            trigger=planned.trigger.value,
            fill_ratio=planned.fill_ratio,
        )

    def _claim_items(self, items: Sequence[ItemRecord], claim_id: str, summary: FlushSummary) -> list[ItemRecord]:
        now = self._clock.now()
        stored = self._writer.save_all([(item.claim(claim_id, now=now), item) for item in items])
        summary.items_lost_to_other_flushers += sum(1 for record in stored if record is None)
        return [record for record in stored if record is not None]

    def _request(self, items: Sequence[ItemRecord]) -> BatchCreateRequest:
        """One request per window. What every item's profile says alike goes once into ``defaults``; each request
        carries only what differs (an item's field replaces a default whole, so a field some profiles set and others
        leave out is never a default) and its window bounds: a 1,000-request body shrinks from megabytes to the
        size of its ids."""
        options = {
            item.item_id: self._profiles.by_name(item.profile_name or "").options.model_dump(
                exclude=_OPTION_FIELDS_EXCEPT_BOUNDS, exclude_none=True
            )
            for item in items
        }
        shared = _shared_fields(list(options.values()))
        requests: list[BatchItemRequest] = []
        for item in items:
            own = {name: value for name, value in options[item.item_id].items() if name not in shared}
            for custom_id, window in item.custom_ids().items():
                bounds = request_time_bounds(window, video_duration_seconds=item.duration_seconds or 0.0)
                requests.append(
                    BatchItemRequest(
                        video=VideoContext(asset_id=item.asset_id or ""),
                        custom_id=custom_id,
                        **own,
                        **bounds.model_dump(exclude_none=True),
                    )
                )
        return BatchCreateRequest(
            model_name=limits.MODEL_NAME,
            analysis_mode=items[0].analysis_mode,
            requests=requests,
            defaults=AnalysisOptions.model_validate(shared) if shared else None,
        )

    def _leave_pending(self, claim: ClaimRecord, error: Exception, summary: FlushSummary) -> None:
        summary.claims_unresolved += 1
        self._recorder.note_claim(claim, f"create outcome unknown: {error}")
        logger.warning("batch create outcome unknown; claim left pending", extra={"claim_id": claim.claim_id})

    def _refused(
        self,
        claim: ClaimRecord,
        claimed: Sequence[ItemRecord],
        request: BatchCreateRequest,
        error: Exception,
        summary: FlushSummary,
    ) -> bool:
        """The videos the refusal is traced to fail (domain.refusals) and the rest go back; False (nothing done)
        when it is traced to nobody."""
        failures, deferred = self._blame(claimed, request, error)
        if not failures and not deferred:
            return False
        for item in claimed:
            if item.item_id in failures:
                self._fail(item, failures[item.item_id], summary)
        back = [item for item in claimed if item.item_id not in failures]
        self._release(claim, back, error, summary, deferred=deferred)
        return True

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
        note = f"released: {type(error).__name__}: {error}"
        later = self._clock.now() + timedelta(seconds=REFUSED_ASSET_RETRY_SECONDS)
        self._recorder.release(claim, note, known_items=claimed, deferred=deferred, deferred_until=later)
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
        result = self._recorder.record(claim, FoundBatch.from_created(created), claimed)
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

    def _fail(self, item: ItemRecord, failure: FailureReason, summary: FlushSummary) -> None:
        if self._writer.fail(item, failure) is not None:
            summary.items_failed += 1

    # --- metrics ------------------------------------------------------------------------------------------

    def _report_oldest_queued(self) -> None:
        """How long the head of each mode's queue has waited since it was first queued (0 when nothing waits)."""
        now = self._clock.now()
        heads = [next(self._items.iter_queue(queued_queue(mode), until=now, page_size=1), None) for mode in MODES]
        self._waiting = any(heads)
        waited = [(now - (item.queued_at or item.updated_at)).total_seconds() for item in heads if item is not None]
        self._metrics.add_metric(name="OldestQueuedItemAgeSeconds", unit="Seconds", value=max([0.0, *waited]))

    def _report(self, summary: FlushSummary) -> None:
        self._metrics.add_metric(
            name="ActiveBatches", unit="Count", value=summary.active_batches + summary.batches_submitted
        )
        self._metrics.add_metric(name="BatchesSubmitted", unit="Count", value=summary.batches_submitted)


def _shared_fields(option_sets: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The (field, value) pairs every option set has, equal."""
    if not option_sets:
        return {}
    first, *rest = option_sets
    return {name: value for name, value in first.items() if all(other.get(name) == value for other in rest)}


def _unattributed(error: Exception) -> bool:
    """A validation refusal of the request as a whole (400/422): some video in it is the cause, the API did not say
    which. A 404/409 whose assets all look fine now is a state that changed (an asset that just became ready, the
    sixth active batch): released, not bisected."""
    return isinstance(error, BadRequestError | UnprocessableEntityError | RequestValidationError)


def _part_of(planned: PlannedBatch, items: Sequence[ItemRecord], settings: Settings) -> PlannedBatch:
    """The plan of a batch narrowed to ``items`` (for the claim record and the Batch Submitted event)."""
    content = sum(item.content_seconds(settings.content_counting) for item in items)
    requests = sum(len(item.windows) for item in items)
    keep = {item.item_id for item in items}
    return planned.model_copy(
        update={
            "items": tuple(candidate for candidate in planned.items if candidate.item_id in keep),
            "request_count": requests,
            "content_seconds": content,
            "fill_ratio": min(1.0, requests / settings.max_items_per_batch),
        }
    )
