"""Sweeper: finds work that stopped moving and ends it with a reason a person can act on.

Runs on a schedule and from the command line (``SweepService.run()`` returns a ``SweepSummary``). Every write is
conditional on the state read, so a sweep racing the pipeline loses instead of overwriting newer truth. Repairs:

- items still ``registered`` after ``asset_timeout_seconds`` (ingest kept failing, its message went to the
  dead-letter queue) -> ``failed`` / ``ingest_incomplete``;
- an expired flusher lease is reported, never deleted: ``acquire`` takes an expired lease over and TTL removes it;
- pending claims -> the reconciler (adopt the batch holding their custom_ids, or release on proof of absence);
- items in ``asset_processing`` past the asset timeout -> the asset checker runs (it fails them ``asset_timeout``);
- items ``claimed`` under a claim that is no longer pending -> ``submitted`` if the claim's batch holds them, else
  ``queued`` with a note;
- items ``submitted`` whose batch record is missing -> the record is rebuilt from the API (or, when TwelveLabs no
  longer knows the batch, the items are requeued with a note); a closed record with items still submitted to it
  is reopened so the batch checker collects their results;
- open batches past their expiry check -> the batch checker runs again (a batch TwelveLabs no longer knows
  requeues its items with ``batch_not_found``); near the 30-day results deletion, items still submitted after that
  check are requeued with ``batch_results_expiring``.

Only the first rule runs without ``SweepRepairs`` (the original behaviour).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from videobatch.clock import Clock
from videobatch.config import Settings
from videobatch.domain.items import FailureReason, ItemState
from videobatch.errors import NotFoundError, StaleStateError, VideoBatchError
from videobatch.services.asset_checker import AssetCheckService
from videobatch.services.batch_checker import BatchCheckService
from videobatch.services.ingest import item_failed_event
from videobatch.services.ports import (
    BatchStore,
    ClaimStore,
    EventPublisher,
    ExpiryScheduler,
    ItemStore,
    LeaseStore,
    MetricsSink,
    TwelveLabsBatches,
)
from videobatch.services.reconciler import (
    API_CLOCK_SKEW_SECONDS,
    CREATE_SETTLE_SECONDS,
    MIN_SCHEDULE_LEAD_SECONDS,
    ReconcileService,
    ReconcileSummary,
)
from videobatch.services.records import (
    ASSET_QUEUE,
    CLAIMED_QUEUE,
    REGISTERED_QUEUE,
    SUBMITTED_QUEUE,
    BatchRecord,
    BatchState,
    ClaimState,
    ItemRecord,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_ITEMS_PER_RUN: Final = 5_000
LEASE_NAMES: Final = ("flusher",)
# An open batch this long past its expiry check has been missed by it (the schedule failed or was never made).
OVERDUE_CHECK_SECONDS: Final = 3600.0
RESULTS_RETENTION_SECONDS: Final = 30 * 24 * 3600.0
# Collect a batch's results this long before TwelveLabs deletes them.
NEAR_DELETION_SECONDS: Final = 2 * 24 * 3600.0


@dataclass(frozen=True)
class SweepRepairs:
    """What the repairs beyond ``registered`` need; ``Runtime.sweep_service()`` builds it."""

    reconciler: ReconcileService
    asset_checker: AssetCheckService
    batch_checker: BatchCheckService
    claims: ClaimStore
    batches: BatchStore
    leases: LeaseStore
    twelvelabs: TwelveLabsBatches
    scheduler: ExpiryScheduler


class SweepSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ingest_incomplete: int = 0
    lost_races: int = 0
    expired_leases: list[str] = Field(default_factory=list)  # "name (owner)": reported, left for takeover
    reconcile: ReconcileSummary = Field(default_factory=ReconcileSummary)
    assets_overdue: int = 0  # items past the asset timeout when the sweep began
    assets_failed: int = 0  # failed by the asset checker run the sweep started
    claimed_items_submitted: int = 0
    claimed_items_requeued: int = 0
    batch_records_rebuilt: int = 0
    batch_records_reopened: int = 0
    submitted_items_requeued: int = 0  # their batch is gone or its results about to be deleted
    batches_overdue: int = 0
    batches_not_found: int = 0
    batches_near_deletion: int = 0
    batch_items_settled: int = 0  # by the batch checker runs the sweep started

    @property
    def work_done(self) -> int:
        return (
            self.ingest_incomplete
            + self.reconcile.work_done
            + self.assets_failed
            + self.claimed_items_submitted
            + self.claimed_items_requeued
            + self.batch_records_rebuilt
            + self.batch_records_reopened
            + self.submitted_items_requeued
            + self.batch_items_settled
        )


class SweepService:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        events: EventPublisher,
        metrics: MetricsSink,
        max_items_per_run: int = DEFAULT_MAX_ITEMS_PER_RUN,
        repairs: SweepRepairs | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._events = events
        self._metrics = metrics
        self._max_items = max_items_per_run
        self._repairs = repairs

    def run(self) -> SweepSummary:
        summary = SweepSummary()
        self._sweep_registered(summary)
        if self._repairs is not None:
            repairs = self._repairs
            self._report_leases(repairs, summary)
            summary.reconcile = repairs.reconciler.run()  # before the item sweeps: it finishes most of them
            self._sweep_assets(repairs, summary)
            self._sweep_claimed(repairs, summary)
            self._sweep_submitted(repairs, summary)
            self._sweep_batches(repairs, summary)
        if summary.ingest_incomplete:
            self._metrics.add_metric(name="ItemsFailed", unit="Count", value=summary.ingest_incomplete)
        self._metrics.add_metric(name="SweepRepairs", unit="Count", value=summary.work_done)
        return summary

    # --- registered -----------------------------------------------------------------------------------------

    def _sweep_registered(self, summary: SweepSummary) -> None:
        now = self._clock.now()
        cutoff = now - timedelta(seconds=self._settings.asset_timeout_seconds)
        hours = self._settings.asset_timeout_seconds / 3600
        for item in islice(self._items.iter_queue(REGISTERED_QUEUE, until=cutoff), self._max_items):
            failure = FailureReason(
                code="ingest_incomplete",
                message=f"no TwelveLabs asset could be created for {hours:g} h; "
                "the ingest dead-letter queue holds the failed attempts",
            )
            failed = item.model_copy(
                update={"state": ItemState.FAILED, "failure": failure, "finished_at": now, "updated_at": now}
            )
            if not self._save(failed, item, summary):
                continue
            summary.ingest_incomplete += 1
            logger.info("stuck item failed", extra={"item_id": item.item_id, "code": failure.code})
            self._events.publish([item_failed_event(failed, failure, "ingest", now=now)])

    # --- leases, assets -------------------------------------------------------------------------------------

    def _report_leases(self, repairs: SweepRepairs, summary: SweepSummary) -> None:
        now = self._clock.now()
        for name in LEASE_NAMES:
            lease = repairs.leases.inspect(name)
            if lease is not None and lease.expires_at <= now:
                # Its holder died without releasing it. Deleting it would race a holder renewing it; the next
                # acquire takes an expired lease over anyway, and TTL removes the record a day later.
                summary.expired_leases.append(f"{name} ({lease.owner})")
                logger.info("expired lease left for takeover", extra={"lease": name, "owner": lease.owner})

    def _sweep_assets(self, repairs: SweepRepairs, summary: SweepSummary) -> None:
        cutoff = self._clock.now() - timedelta(seconds=self._settings.asset_timeout_seconds)
        summary.assets_overdue = sum(1 for _ in islice(self._items.iter_queue(ASSET_QUEUE, until=cutoff), 1000))
        if summary.assets_overdue:
            # The asset checker owns the timeout rule (it asks the API first: a just-ready asset is queued, not
            # failed); running it here covers a checker whose schedule stopped.
            summary.assets_failed = repairs.asset_checker.run().failed

    # --- claimed / submitted items --------------------------------------------------------------------------

    def _stuck_cutoff(self) -> datetime:
        """Older than this, a claimed/submitted item's saga is over: the reconciler could already decide it."""
        seconds = self._settings.flush_lease_seconds + CREATE_SETTLE_SECONDS + API_CLOCK_SKEW_SECONDS
        return self._clock.now() - timedelta(seconds=seconds)

    def _sweep_claimed(self, repairs: SweepRepairs, summary: SweepSummary) -> None:
        for item in islice(self._items.iter_queue(CLAIMED_QUEUE, until=self._stuck_cutoff()), self._max_items):
            claim = repairs.claims.get(item.claim_id) if item.claim_id else None
            if claim is not None and claim.state is ClaimState.PENDING:
                continue  # the reconciler's: it waits for proof before releasing
            record = repairs.batches.get(claim.batch_id) if claim and claim.batch_id else None
            if record is not None and item.item_id in record.item_ids:
                if self._submit_claimed(item, record, summary):
                    summary.claimed_items_submitted += 1
                continue
            state = claim.state.value if claim else "missing"
            note = f"claim {item.claim_id} is {state} and never submitted this item; requeued by the sweeper"
            if repairs.reconciler.recorder.requeue(item, note):
                summary.claimed_items_requeued += 1

    def _submit_claimed(self, item: ItemRecord, record: BatchRecord, summary: SweepSummary) -> bool:
        note = f"recorded as submitted to {record.batch_id} by the sweeper"
        submitted = item.submitted_to(record.batch_id, record.task_ids, now=self._clock.now(), note=note)
        return self._save(submitted, item, summary)

    def _sweep_submitted(self, repairs: SweepRepairs, summary: SweepSummary) -> None:
        unrecorded: dict[str, list[ItemRecord]] = defaultdict(list)
        for item in islice(self._items.iter_queue(SUBMITTED_QUEUE, until=self._stuck_cutoff()), self._max_items):
            if item.batch_id is None:
                self._requeue_submitted(item, "submitted without a batch id", summary)
                continue
            record = repairs.batches.get(item.batch_id)
            if record is not None and record.state is BatchState.OPEN:
                continue
            if record is not None:
                self._reopen(repairs, record, summary)
                continue
            unrecorded[item.batch_id].append(item)
        for batch_id, items in unrecorded.items():
            self._rebuild(repairs, batch_id, items, summary)

    def _reopen(self, repairs: SweepRepairs, record: BatchRecord, summary: SweepSummary) -> None:
        # Closed while an item was still submitted to it (a race): open it again so the checker collects it.
        reopened = record.model_copy(update={"state": BatchState.OPEN, "closed_at": None})
        try:
            repairs.batches.save(reopened, record)
        except StaleStateError:
            summary.lost_races += 1
            return
        summary.batch_records_reopened += 1
        logger.warning("batch record reopened for items still submitted", extra={"batch_id": record.batch_id})

    def _rebuild(self, repairs: SweepRepairs, batch_id: str, items: list[ItemRecord], summary: SweepSummary) -> None:
        claim_ids = {item.claim_id for item in items if item.claim_id}
        for claim_id in claim_ids:
            claim = repairs.claims.get(claim_id)
            if claim is not None and claim.state is ClaimState.PENDING:
                return  # mid-saga: the reconciler records the batch
        try:
            api_batch = repairs.twelvelabs.retrieve_batch(batch_id)
        except NotFoundError:
            note = f"batch {batch_id} was never recorded and TwelveLabs no longer knows it"
            for item in items:
                self._requeue_submitted(item, note, summary)
            return
        members = [
            item
            for item in self._items.iter_batch_items(batch_id)
            if item.state is ItemState.SUBMITTED and item.batch_id == batch_id
        ] or items
        windows_only = self._settings.count_windows_only
        record = BatchRecord(
            batch_id=batch_id,
            api_status=api_batch.status,
            analysis_mode=api_batch.analysis_mode,
            claim_id=sorted(claim_ids)[0] if claim_ids else "unknown",
            created_at=api_batch.created_at,
            expires_at=api_batch.expires_at,
            item_ids=tuple(item.item_id for item in members),
            task_ids={cid: task for item in members for cid, task in item.task_ids.items()},
            content_seconds=sum(item.content_seconds(windows_only=windows_only) for item in members),
        )
        try:
            repairs.batches.create(record)
        except StaleStateError:
            summary.lost_races += 1
            return
        at = max(
            api_batch.expires_at + timedelta(seconds=self._settings.expiry_grace_seconds),
            self._clock.now() + timedelta(seconds=MIN_SCHEDULE_LEAD_SECONDS),
        )
        repairs.scheduler.schedule_batch_check(batch_id, at)
        summary.batch_records_rebuilt += 1
        logger.warning("batch record rebuilt", extra={"batch_id": batch_id, "items": len(members)})

    def _requeue_submitted(self, item: ItemRecord, note: str, summary: SweepSummary) -> bool:
        now = self._clock.now()
        queued = item.model_copy(
            update={
                "state": ItemState.QUEUED,
                "eligible_at": now,
                "batch_id": None,
                "task_ids": {},
                "claim_id": None,
                "claimed_at": None,
                "submitted_at": None,
                "updated_at": now,
                "note": note,
            }
        )
        if not self._save(queued, item, summary):
            return False
        summary.submitted_items_requeued += 1
        logger.warning("submitted item requeued", extra={"item_id": item.item_id, "note": note})
        return True

    # --- batches --------------------------------------------------------------------------------------------

    def _sweep_batches(self, repairs: SweepRepairs, summary: SweepSummary) -> None:
        now = self._clock.now()
        overdue_after = timedelta(seconds=self._settings.expiry_grace_seconds + OVERDUE_CHECK_SECONDS)
        near_deletion_after = timedelta(seconds=RESULTS_RETENTION_SECONDS - NEAR_DELETION_SECONDS)
        for record in list(repairs.batches.iter_open()):
            near_deletion = now >= record.created_at + near_deletion_after
            if not near_deletion and now < record.expires_at + overdue_after:
                continue  # its expiry check is still to come
            self._recheck(repairs, record, near_deletion, summary)

    def _recheck(self, repairs: SweepRepairs, record: BatchRecord, near_deletion: bool, summary: SweepSummary) -> None:
        try:
            repairs.twelvelabs.retrieve_batch(record.batch_id)
        except NotFoundError:
            summary.batches_not_found += 1  # the checker requeues its items with batch_not_found and closes it
        else:
            summary.batches_near_deletion += near_deletion
            summary.batches_overdue += not near_deletion
        try:
            summary.batch_items_settled += repairs.batch_checker.check(record.batch_id).work_done
        except VideoBatchError as error:  # one bad batch must not stop the sweep; the forced requeue follows
            logger.error("batch check failed during sweep", extra={"batch_id": record.batch_id, "error": str(error)})
        if near_deletion:
            days = RESULTS_RETENTION_SECONDS / 86400
            for item in self._items.get_many(record.item_ids).values():
                if item.state is ItemState.SUBMITTED and item.batch_id == record.batch_id:
                    self._requeue_submitted(item, f"batch_results_expiring: {days:g}-day retention ends", summary)

    def _save(self, new: ItemRecord, expected: ItemRecord, summary: SweepSummary) -> bool:
        try:
            self._items.save(new, expected)
        except StaleStateError:
            summary.lost_races += 1
            return False
        return True
