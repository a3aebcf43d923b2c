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

Each batch record is read at most once per sweep, however many of its items the sweep looks at.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from videobatch.clock import Clock
from videobatch.config import Settings
from videobatch.domain.items import FailureReason, ItemState
from videobatch.domain.records import (
    INFLIGHT_QUEUE,
    INTAKE_QUEUE,
    BatchProgress,
    BatchRecord,
    BatchState,
    ClaimState,
    ItemRecord,
)
from videobatch.errors import NotFoundError, VideoBatchError, is_pipeline_fault
from videobatch.services.asset_checker import AssetCheckService
from videobatch.services.asset_janitor import OrphanAssetSweep
from videobatch.services.batch_checker import BatchCheckService
from videobatch.services.lifecycle import ItemWriter
from videobatch.services.ports import BatchStore, ClaimStore, ItemStore, LeaseStore, MetricsSink, TwelveLabsBatches
from videobatch.services.reconciler import (
    API_CLOCK_SKEW_SECONDS,
    CREATE_SETTLE_SECONDS,
    ReconcileService,
    ReconcileSummary,
)
from videobatch.services.submissions import SubmissionRecorder

logger = logging.getLogger(__name__)

DEFAULT_MAX_ITEMS_PER_RUN: Final = 5_000
LEASE_NAMES: Final = ("flusher",)
# An open batch this long past its expiry check has been missed by it (the schedule failed or was never made).
OVERDUE_CHECK_SECONDS: Final = 3600.0
RESULTS_RETENTION_SECONDS: Final = 30 * 24 * 3600.0
# Collect a batch's results this long before TwelveLabs deletes them.
NEAR_DELETION_SECONDS: Final = 2 * 24 * 3600.0


@dataclass(frozen=True)
class SweepPorts:
    """What the sweeper reads and the services it runs; ``Runtime.sweep_service()`` builds it."""

    items: ItemStore
    claims: ClaimStore
    batches: BatchStore
    leases: LeaseStore
    twelvelabs: TwelveLabsBatches
    writer: ItemWriter
    recorder: SubmissionRecorder
    reconciler: ReconcileService
    asset_checker: AssetCheckService
    batch_checker: BatchCheckService
    asset_janitor: OrphanAssetSweep | None = None  # orphan assets, once a day (services.asset_janitor)


class SweepSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

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
    repairs_faulted: int = 0  # one item's or batch's repair stopped on its own fault; the sweep went on
    orphan_assets_deleted: int = 0  # TwelveLabs assets no item records (the daily pass; not counted as repairs)

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
        ports: SweepPorts,
        metrics: MetricsSink,
        max_items_per_run: int = DEFAULT_MAX_ITEMS_PER_RUN,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self.ports = ports
        self._items = ports.items
        self._writer = ports.writer
        self._metrics = metrics
        self._max_items = max_items_per_run
        self._batch_records: dict[str, BatchRecord | None] = {}
        self._progress_records: dict[str, BatchProgress | None] = {}
        self._batch_task_ids: dict[str, dict[str, str]] = {}

    def run(self) -> SweepSummary:
        summary, races_before = SweepSummary(), self._writer.lost_races
        self._batch_records, self._progress_records, self._batch_task_ids = {}, {}, {}
        ports = self.ports
        self._sweep_registered(summary)
        self._report_leases(ports, summary)
        summary.reconcile = ports.reconciler.run()  # before the item sweeps: it finishes most of them
        self._sweep_assets(ports, summary)
        self._sweep_claimed(ports, summary)
        self._sweep_submitted(ports, summary)
        self._sweep_batches(ports, summary)
        if ports.asset_janitor is not None:
            with self._isolated(summary):
                summary.orphan_assets_deleted = ports.asset_janitor.run()
        summary.lost_races += self._writer.lost_races - races_before
        self._metrics.add_metric(name="SweepRepairs", unit="Count", value=summary.work_done)
        return summary

    @contextmanager
    def _isolated(self, summary: SweepSummary, **ids: str) -> Iterator[None]:
        """One repair's own fault ends that repair only; a pipeline fault stops the sweep (errors.py's rule)."""
        try:
            yield
        except VideoBatchError as error:
            if is_pipeline_fault(error):
                raise
            summary.repairs_faulted += 1
            logger.exception("repair faulted; the sweep goes on", extra=ids)

    def _in_state(self, queue: str, state: ItemState, until: datetime | None) -> Iterator[ItemRecord]:
        """The items of a shared queue (domain.records) in ``state``, oldest first."""
        return (item for item in self._items.iter_queue(queue, until=until) if item.state is state)

    def _batch_record(self, batch_id: str) -> BatchRecord | None:
        """Each batch record read once per sweep: thousands of items in flight share a handful of batches."""
        if batch_id not in self._batch_records:
            self._batch_records[batch_id] = self.ports.batches.get(batch_id)
        return self._batch_records[batch_id]

    def _progress(self, batch_id: str) -> BatchProgress | None:
        if batch_id not in self._progress_records:
            self._progress_records[batch_id] = self.ports.batches.get_progress(batch_id)
        return self._progress_records[batch_id]

    def _task_ids(self, ports: SweepPorts, batch_id: str) -> dict[str, str]:
        """custom_id -> task_id of a batch, from its results (the batch record does not keep them), once a sweep."""
        if batch_id not in self._batch_task_ids:
            with ports.twelvelabs.stream_batch_results(batch_id) as lines:
                found = {line.custom_id: line.task_id for line in lines if line.custom_id}
            self._batch_task_ids[batch_id] = found
        return self._batch_task_ids[batch_id]

    # --- registered -----------------------------------------------------------------------------------------

    def _sweep_registered(self, summary: SweepSummary) -> None:
        now = self._clock.now()
        cutoff = now - timedelta(seconds=self._settings.asset_timeout_seconds)
        hours = self._settings.asset_timeout_seconds / 3600
        for item in islice(self._in_state(INTAKE_QUEUE, ItemState.REGISTERED, cutoff), self._max_items):
            with self._isolated(summary, item_id=item.item_id):
                self._fail_registered(item, hours, summary)

    def _fail_registered(self, item: ItemRecord, hours: float, summary: SweepSummary) -> None:
        failure = FailureReason(
            code="ingest_incomplete",
            message=f"no TwelveLabs asset could be created for {hours:g} h; "
            "the ingest dead-letter queue holds the failed attempts",
        )
        if self._writer.fail(item, failure) is not None:
            summary.ingest_incomplete += 1

    # --- leases, assets -------------------------------------------------------------------------------------

    def _report_leases(self, ports: SweepPorts, summary: SweepSummary) -> None:
        now = self._clock.now()
        for name in LEASE_NAMES:
            lease = ports.leases.inspect(name)
            if lease is not None and lease.expires_at <= now:
                # Its holder died without releasing it. Deleting it would race a holder renewing it; the next
                # acquire takes an expired lease over anyway, and TTL removes the record a day later.
                summary.expired_leases.append(f"{name} ({lease.owner})")
                logger.info("expired lease left for takeover", extra={"lease": name, "owner": lease.owner})

    def _sweep_assets(self, ports: SweepPorts, summary: SweepSummary) -> None:
        cutoff = self._clock.now() - timedelta(seconds=self._settings.asset_timeout_seconds)
        overdue = self._in_state(INTAKE_QUEUE, ItemState.ASSET_PROCESSING, cutoff)
        summary.assets_overdue = sum(1 for _ in islice(overdue, 1000))
        if summary.assets_overdue:
            # The asset checker owns the timeout rule (it asks the API first: a just-ready asset is queued, not
            # failed); running it here covers a checker whose schedule stopped.
            summary.assets_failed = ports.asset_checker.run().failed

    # --- claimed / submitted items --------------------------------------------------------------------------

    def _stuck_cutoff(self) -> datetime:
        """Older than this, a claimed/submitted item's saga is over: the reconciler could already decide it."""
        seconds = self._settings.flush_lease_seconds + CREATE_SETTLE_SECONDS + API_CLOCK_SKEW_SECONDS
        return self._clock.now() - timedelta(seconds=seconds)

    def _sweep_claimed(self, ports: SweepPorts, summary: SweepSummary) -> None:
        for item in islice(self._in_state(INFLIGHT_QUEUE, ItemState.CLAIMED, self._stuck_cutoff()), self._max_items):
            with self._isolated(summary, item_id=item.item_id):
                self._repair_claimed(ports, item, summary)

    def _repair_claimed(self, ports: SweepPorts, item: ItemRecord, summary: SweepSummary) -> None:
        claim = ports.claims.get(item.claim_id) if item.claim_id else None
        if claim is not None and claim.state is ClaimState.PENDING:
            return  # the reconciler's: it waits for proof before releasing
        record = self._batch_record(claim.batch_id) if claim and claim.batch_id else None
        if record is not None and item.item_id in record.item_ids:
            note = f"recorded as submitted to {record.batch_id} by the sweeper"
            task_ids = self._task_ids(ports, record.batch_id)
            submitted = item.submit(record.batch_id, task_ids, now=self._clock.now(), note=note)
            summary.claimed_items_submitted += self._writer.save(submitted, item) is not None
            return
        state = claim.state.value if claim else "missing"
        note = f"claim {item.claim_id} is {state} and never submitted this item; requeued by the sweeper"
        summary.claimed_items_requeued += self._writer.release(item, note) is not None

    def _sweep_submitted(self, ports: SweepPorts, summary: SweepSummary) -> None:
        unrecorded: dict[str, list[ItemRecord]] = defaultdict(list)
        stuck = self._in_state(INFLIGHT_QUEUE, ItemState.SUBMITTED, self._stuck_cutoff())
        for item in islice(stuck, self._max_items):
            if item.batch_id is None:
                self._requeue_submitted(item, "submitted without a batch id", summary)
                continue
            progress = self._progress(item.batch_id)
            if progress is not None and progress.state is BatchState.OPEN:
                continue
            if progress is not None:
                if ports.recorder.reopen_batch(progress):
                    summary.batch_records_reopened += 1
                    self._progress_records.pop(progress.batch_id)  # re-read if another item names it
                else:
                    summary.lost_races += 1
                continue
            unrecorded[item.batch_id].append(item)
        for batch_id, items in unrecorded.items():
            with self._isolated(summary, batch_id=batch_id):
                self._rebuild(ports, batch_id, items, summary)

    def _rebuild(self, ports: SweepPorts, batch_id: str, items: list[ItemRecord], summary: SweepSummary) -> None:
        claim_ids = {item.claim_id for item in items if item.claim_id}
        for claim_id in claim_ids:
            claim = ports.claims.get(claim_id)
            if claim is not None and claim.state is ClaimState.PENDING:
                return  # mid-saga: the reconciler records the batch
        try:
            api_batch = ports.twelvelabs.retrieve_batch(batch_id)
        except NotFoundError:
            note = f"batch {batch_id} was never recorded and TwelveLabs no longer knows it"
            for item in items:
                self._requeue_submitted(item, note, summary)
            return
        # Every item still submitted to it, however young (a rare repair: one pass over the in-flight queue).
        members = [
            item for item in self._in_state(INFLIGHT_QUEUE, ItemState.SUBMITTED, None) if item.batch_id == batch_id
        ] or items
        if ports.recorder.rebuild_batch(api_batch, members, claim_ids):
            summary.batch_records_rebuilt += 1
        else:
            summary.lost_races += 1

    def _requeue_submitted(self, item: ItemRecord, note: str, summary: SweepSummary) -> bool:
        if self._writer.requeue(item, note, eligible_at=self._clock.now()) is None:
            return False
        summary.submitted_items_requeued += 1
        logger.warning("submitted item requeued", extra={"item_id": item.item_id, "note": note})
        return True

    # --- batches --------------------------------------------------------------------------------------------

    def _sweep_batches(self, ports: SweepPorts, summary: SweepSummary) -> None:
        now = self._clock.now()
        overdue_after = timedelta(seconds=self._settings.expiry_grace_seconds + OVERDUE_CHECK_SECONDS)
        near_deletion_after = timedelta(seconds=RESULTS_RETENTION_SECONDS - NEAR_DELETION_SECONDS)
        for progress in list(ports.batches.iter_open()):
            near_deletion = now >= progress.created_at + near_deletion_after
            if not near_deletion and now < progress.expires_at + overdue_after:
                continue  # its expiry check is still to come
            self._recheck(ports, progress, near_deletion, summary)

    def _recheck(self, ports: SweepPorts, progress: BatchProgress, near_deletion: bool, summary: SweepSummary) -> None:
        batch_id = progress.batch_id
        try:
            ports.twelvelabs.retrieve_batch(batch_id)
        except NotFoundError:
            summary.batches_not_found += 1  # the checker requeues its items with batch_not_found and closes it
        else:
            summary.batches_near_deletion += near_deletion
            summary.batches_overdue += not near_deletion
        try:
            summary.batch_items_settled += ports.batch_checker.check(batch_id).work_done
        except VideoBatchError as error:  # one bad batch must not stop the sweep; the forced requeue follows
            logger.error("batch check failed during sweep", extra={"batch_id": batch_id, "error": str(error)})
        record = self._batch_record(batch_id)
        if near_deletion and record is not None:
            days = RESULTS_RETENTION_SECONDS / 86400
            for item in self._items.get_many(record.item_ids).values():
                if item.state is ItemState.SUBMITTED and item.batch_id == batch_id:
                    self._requeue_submitted(item, f"batch_results_expiring: {days:g}-day retention ends", summary)
