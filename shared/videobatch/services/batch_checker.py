"""Batch checker: reads a batch's results (also while it runs) and settles each of its items.

- All windows of an item ``ready`` -> merge, write the result file once, ``done``, Item Succeeded.
- Any window ``failed``/``canceled`` -> RequeuePolicy: back to ``queued`` (all windows again, next attempt) or
  ``failed`` with the reason. A partially ready item is retried whole: its windows share one prompt and one merge.
- Window results are not stored between runs: the API keeps them for 30 days and a run that sees a change re-reads
  the stream, so an item whose windows finish across several runs completes in the run that sees the last one.

Polling costs nothing when nothing changed: a check reads the batch's small progress record (from the open-batches
index) and ``GET /analyze/batches/{id}``; only when the API's status or finished count moved does it read the batch's
facts, stream the results once, and read just the items whose results became final and are not settled yet
(``BatchProgress.settled``). Every item write is conditional on ``state = submitted`` and ``batch_id`` = this batch
(plus the version read), so a stale or concurrent checker never overwrites newer truth; it just counts a lost race.
When the batch is terminal and every item is settled, the progress is closed and Batch Finished published.
"""

from __future__ import annotations

import logging
from typing import Final

from pydantic import BaseModel, ConfigDict

from videobatch.clock import Clock
from videobatch.config import Settings
from videobatch.domain.items import FailureReason, ItemState
from videobatch.domain.policy import Fail, Finish, Requeue, RequeuePolicy
from videobatch.domain.profiles import ProfileSet
from videobatch.domain.records import INFLIGHT_QUEUE, BatchProgress, BatchRecord, BatchState, ItemRecord
from videobatch.domain.results import ResultKeyTooLongError, result_document, result_key
from videobatch.domain.windows import WindowResult, merge_window_results
from videobatch.errors import (
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    StaleStateError,
    VideoBatchError,
    is_pipeline_fault,
)
from videobatch.services.lifecycle import ItemWriter
from videobatch.services.ports import (
    BatchStore,
    FunctionInvoker,
    ItemStore,
    MetricsSink,
    ObjectStore,
    TwelveLabsBatches,
)
from videobatch.services.result_pointers import point_latest, usage_of
from videobatch.services.submissions import SubmissionRecorder
from videobatch.twelvelabs import limits
from videobatch.twelvelabs.models import Batch, BatchResultItem

logger = logging.getLogger(__name__)

_FINAL_STATUSES: Final = frozenset({"ready", "failed", "canceled"})


class BatchCheckSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    batches_checked: int = 0
    batches_closed: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    items_requeued: int = 0
    lost_races: int = 0
    batches_unchanged: int = 0  # nothing moved at the API since the last check: nothing read, nothing written
    # Batches whose check stopped on a fault of their own (an answer about them that made no sense); the other
    # batches were checked, and the next run tries these again.
    batches_faulted: int = 0

    @property
    def work_done(self) -> int:
        return self.items_succeeded + self.items_failed + self.items_requeued


class BatchCheckService:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        writer: ItemWriter,
        batches: BatchStore,
        recorder: SubmissionRecorder,
        objects: ObjectStore,
        twelvelabs: TwelveLabsBatches,
        profiles: ProfileSet,
        metrics: MetricsSink,
        invoker: FunctionInvoker,
        policy: RequeuePolicy | None = None,
    ) -> None:
        """``items``/``batches`` are read here; ``writer`` and ``recorder`` make every write."""
        self._settings = settings
        self._clock = clock
        self._items = items
        self._writer = writer
        self._batches = batches
        self._recorder = recorder
        self._objects = objects
        self._api = twelvelabs
        self._profiles = profiles
        self._metrics = metrics
        self._invoker = invoker
        self._policy = policy or RequeuePolicy(max_attempts=settings.max_attempts)

    def check_open(self) -> BatchCheckSummary:
        """Every batch not yet closed, oldest first."""
        self._report_oldest_submitted()
        summary, races_before = BatchCheckSummary(), self._writer.lost_races
        for progress in list(self._batches.iter_open()):
            self._check_isolated(progress, summary)
        summary.lost_races = self._writer.lost_races - races_before
        self._refill(summary)
        return summary

    def check(self, batch_id: str) -> BatchCheckSummary:
        """One batch (the expiry schedule names it); an unknown or closed batch is a no-op."""
        summary, races_before = BatchCheckSummary(), self._writer.lost_races
        progress = self._batches.get_progress(batch_id)
        if progress is None or progress.state is BatchState.CLOSED:
            logger.info("batch needs no check", extra={"batch_id": batch_id})
            return summary
        self._check_isolated(progress, summary)
        summary.lost_races = self._writer.lost_races - races_before
        self._refill(summary)
        return summary

    def _refill(self, summary: BatchCheckSummary) -> None:
        """A closed batch freed a slot: start the flusher now rather than at its next scheduled run. Best effort:
        the schedule runs it within a minute anyway."""
        if not summary.batches_closed:
            return
        try:
            self._invoker.invoke_async("flusher", {"source": "batch-checker", "batches_closed": summary.batches_closed})
        except VideoBatchError as error:
            logger.warning("flusher not started after a batch closed", extra={"error": str(error)})

    def _report_oldest_submitted(self) -> None:
        """From DynamoDB before any TwelveLabs call: the item longest in flight (claimed or submitted, since its claim).
        Longer than a batch lives (24 h + the expiry check) means results stopped being collected, whatever the API
        says."""
        now = self._clock.now()
        oldest = next(self._items.iter_queue(INFLIGHT_QUEUE, page_size=1), None)
        age = 0.0 if oldest is None else (now - (oldest.claimed_at or oldest.updated_at)).total_seconds()
        self._metrics.add_metric(name="OldestSubmittedItemAgeSeconds", unit="Seconds", value=max(age, 0.0))

    # --- one batch ----------------------------------------------------------------------------------------

    def _check_isolated(self, progress: BatchProgress, summary: BatchCheckSummary) -> None:
        """One batch's own fault skips that batch this run; a pipeline fault stops the run (errors.py's rule)."""
        try:
            self._check(progress, summary)
        except VideoBatchError as error:
            if is_pipeline_fault(error):
                raise
            summary.batches_faulted += 1
            self._metrics.add_metric(name="BatchCheckFaults", unit="Count", value=1)
            logger.exception("batch check faulted; the others go on", extra={"batch_id": progress.batch_id})

    def _check(self, progress: BatchProgress, summary: BatchCheckSummary) -> None:
        summary.batches_checked += 1
        try:
            api_batch: Batch | None = self._api.retrieve_batch(progress.batch_id)
        except NotFoundError:
            api_batch = None  # deleted (past the 30-day retention, or by hand): nothing more will come
        terminal = api_batch is None or api_batch.status in limits.TERMINAL_BATCH_STATUSES
        status = api_batch.status if api_batch else "deleted"
        finished = _finished(api_batch) if api_batch else progress.finished_seen
        if not terminal and status == progress.api_status and finished == progress.finished_seen:
            summary.batches_unchanged += 1
            return  # nothing moved since the last check: no read, no write
        record = self._batches.get(progress.batch_id)
        if record is None:
            raise InvalidInputError(f"batch {progress.batch_id} has progress but no record of its items")
        run = _Run(record, progress)
        if api_batch is not None:
            self._read_results(run)
        if terminal:
            self._settle_missing(run, api_batch)
        new = progress.observed(
            status, finished, settled=run.settled, succeeded=run.succeeded, failed=run.failed, requeued=run.requeued
        )
        closing = terminal and new.all_settled
        if closing:
            new = new.closed(now=self._clock.now())
        stored = self._recorder.update_progress(progress, new, record if closing else None, api_batch)
        summary.items_succeeded += run.succeeded
        summary.items_failed += run.failed
        summary.items_requeued += run.requeued
        summary.batches_closed += stored is not None and closing

    def _read_results(self, run: _Run) -> None:
        """Stream the results once; settle the items whose every window is final (or one failed)."""
        positions = run.record.positions
        ready: dict[int, dict[str, BatchResultItem]] = {}
        ended: dict[int, BatchResultItem] = {}  # first failed/canceled/unreadable line of an item
        with self._api.stream_batch_results(run.record.batch_id) as lines:
            for line in lines:
                position = positions.get(line.custom_id or "")
                if position is None or run.progress.is_settled(position[0]):
                    continue  # not this batch's current request, or settled by an earlier check
                if line.parse_error is not None or line.status in ("failed", "canceled"):
                    ended.setdefault(position[0], line)
                elif line.status == "ready":
                    ready.setdefault(position[0], {})[line.custom_id or ""] = line
                # any other status (running, or one the client does not know) is looked at again later
        complete = {index for index, parts in ready.items() if len(parts) == run.record.windows[index]}
        candidates = sorted(set(ended) | complete)
        items = self._items.get_many([run.record.item_ids[index] for index in candidates])
        for index in candidates:
            item = items.get(run.record.item_ids[index])
            run.settled.add(index)  # whatever happens next, this item needs no further look from this batch
            if item is None or not _submitted_here(item, run.record, index):
                continue  # moved on already (another checker, the sweeper, an operator)
            end = ended.get(index)
            if end is None:
                self._finish(item, run.record, ready[index], run)
            elif end.parse_error is not None:
                self._metrics.add_metric(name="ResultLinesUnparsable", unit="Count", value=1)
                unreadable = f"TwelveLabs sent a result line the client could not read: {end.parse_error}"
                self._settle_failure(item, "failed", "result_unparsable", unreadable, run)
            else:
                error = end.error
                code, detail = (error.code, error.message) if error else (None, None)
                self._settle_failure(item, end.status, code, detail, run)

    def _settle_missing(self, run: _Run, api_batch: Batch | None) -> None:
        """A terminal batch: every item without a final line of its own is settled now."""
        code, message = ("missing_result", "the batch ended without a result")
        if api_batch is None:
            code, message = ("batch_not_found", f"TwelveLabs no longer knows batch {run.record.batch_id} (deleted)")
        rest = [i for i in range(len(run.record.item_ids)) if i not in run.settled and not run.progress.is_settled(i)]
        items = self._items.get_many([run.record.item_ids[index] for index in rest])
        for index in rest:
            run.settled.add(index)
            item = items.get(run.record.item_ids[index])
            if item is not None and _submitted_here(item, run.record, index):
                self._settle_failure(item, "canceled", code, message, run)

    # --- settling items -----------------------------------------------------------------------------------

    def _finish(self, item: ItemRecord, record: BatchRecord, lines: dict[str, BatchResultItem], run: _Run) -> None:
        windows = item.custom_ids()
        parts = [
            WindowResult(window=windows[custom_id], text=line.data.data, finish_reason=line.data.known_finish_reason)
            for custom_id, line in lines.items()
            if line.data is not None
        ]
        try:
            merged = merge_window_results(item.analysis_mode, self._response_format_type(item), parts)
            key = result_key(self._settings.results_prefix, item.key, item.version_id, item.result_profile)
            body = result_document(item, record, windows, lines, merged)
            bucket = self._settings.results_bucket or item.bucket
            self._objects.write_once(bucket, key, body, "application/json")
        except (InvalidInputError, StaleStateError, ValueError) as fault:
            # This item's result cannot be stored: it fails alone with the reason, the batch goes on.
            run.failed += self._writer.fail(item, _result_failure(item, fault)) is not None
            return
        warnings = tuple(line.warning.message for line in lines.values() if line.warning is not None)
        if warnings:
            self._metrics.add_metric(name="ResultWarnings", unit="Count", value=len(warnings))
        point_latest(self._objects, bucket=bucket, results_prefix=self._settings.results_prefix, item=item, key=key)
        usage = usage_of(windows, lines)
        if self._writer.finish(item, f"s3://{bucket}/{key}", key, merged, warnings=warnings, usage=usage) is not None:
            run.succeeded += 1

    def _response_format_type(self, item: ItemRecord) -> str | None:
        try:
            response_format = self._profiles.by_name(item.profile_name or "").options.response_format
        except ConfigurationError:
            return None  # profile removed meanwhile: merge as plain output rather than lose the result
        return None if response_format is None else response_format.type

    def _settle_failure(self, item: ItemRecord, status: str, code: str | None, message: str | None, run: _Run) -> None:
        now = self._clock.now()
        decision = self._policy.decide(
            item_status=status, error_code=code, attempts=max(item.counted_attempts, 1), now=now, error_message=message
        )
        if isinstance(decision, Requeue):
            note = f"requeued from batch {item.batch_id}: {decision.reason}"
            run.requeued += self._writer.requeue(item, note, eligible_at=decision.eligible_at) is not None
        elif isinstance(decision, Fail):
            run.failed += self._writer.fail(item, decision.failure) is not None
        else:
            assert isinstance(decision, Finish)  # only for ready lines, which never come here

    # --- the batch record ---------------------------------------------------------------------------------


def _result_failure(item: ItemRecord, fault: Exception) -> FailureReason:
    if isinstance(fault, ResultKeyTooLongError):
        return FailureReason(code="result_key_too_long", message=str(fault))
    if isinstance(fault, StaleStateError):
        return FailureReason(
            code="result_conflict",
            message=f"{fault}: someone else wrote there, so this result was not stored; the analysis stays "
            f"readable from TwelveLabs batch {item.batch_id} for 30 days",
        )
    return FailureReason(code="result_unbuildable", message=f"the result could not be assembled: {fault}")


class _Run:
    """One look at a changed batch: its facts and last progress, what this look settled."""

    def __init__(self, record: BatchRecord, progress: BatchProgress) -> None:
        self.record = record
        self.progress = progress
        self.settled: set[int] = set()
        self.succeeded = 0
        self.failed = 0
        self.requeued = 0


def _finished(batch: Batch) -> int:
    return batch.ready_items + batch.failed_items + batch.canceled_items


def _submitted_here(item: ItemRecord, record: BatchRecord, index: int) -> bool:
    """Still waiting on this batch, under the attempt the batch's requests carry."""
    return (
        item.state is ItemState.SUBMITTED
        and item.batch_id == record.batch_id
        and item.attempts == record.attempts[index]
    )
