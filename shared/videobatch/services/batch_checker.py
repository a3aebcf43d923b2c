"""Batch checker: reads a batch's results (also while it runs) and settles each of its items.

- All windows of an item ``ready`` -> merge, write the result file once, ``done``, Item Succeeded.
- Any window ``failed``/``canceled`` -> RequeuePolicy: back to ``queued`` (all windows again, next attempt) or
  ``failed`` with the reason. A partially ready item is retried whole: its windows share one prompt and one merge.
- Window results are not stored between runs: the API keeps them for 30 days and every run re-reads the stream,
  so an item whose windows finish across several runs completes in the run that sees the last one.

Every item write is conditional on ``state = submitted`` and ``batch_id`` = this batch (plus the version read), so a
stale or concurrent checker never overwrites newer truth; it just counts a lost race. When the batch is terminal and
none of its items is still ``submitted`` to it, the batch record is closed and Batch Finished published.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from videobatch.clock import Clock, rfc3339
from videobatch.config import Settings
from videobatch.domain.events import BatchFinished, ItemSucceeded
from videobatch.domain.items import ItemState, Window
from videobatch.domain.policy import Fail, Finish, Requeue, RequeuePolicy
from videobatch.domain.profiles import ProfileSet
from videobatch.domain.windows import MergedResult, WindowResult, merge_window_results
from videobatch.errors import ConfigurationError, NotFoundError, StaleStateError
from videobatch.services.ingest import item_failed_event
from videobatch.services.ports import (
    BatchStore,
    EventPublisher,
    ExpiryScheduler,
    ItemStore,
    MetricsSink,
    ObjectStore,
    TwelveLabsBatches,
)
from videobatch.services.records import BatchRecord, BatchState, ItemRecord
from videobatch.twelvelabs import limits
from videobatch.twelvelabs.models import Batch, BatchResultItem

logger = logging.getLogger(__name__)

RESULT_SCHEMA_VERSION: Final = "1.0"
_FINAL_STATUSES: Final = frozenset({"ready", "failed", "canceled"})


def result_key(results_prefix: str, key: str, version_id: str | None) -> str:
    """Where a video's result goes: its key mirrored under the results prefix, the version id added when the bucket
    is versioned, so two versions of one key never share (or fight over) a result file."""
    suffix = f".version-{version_id}.json" if version_id and version_id != "null" else ".json"
    return f"{results_prefix}{key}{suffix}"


class BatchCheckSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batches_checked: int = 0
    batches_closed: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    items_requeued: int = 0
    lost_races: int = 0

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
        batches: BatchStore,
        objects: ObjectStore,
        twelvelabs: TwelveLabsBatches,
        events: EventPublisher,
        profiles: ProfileSet,
        metrics: MetricsSink,
        policy: RequeuePolicy | None = None,
        scheduler: ExpiryScheduler | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._batches = batches
        self._objects = objects
        self._api = twelvelabs
        self._events = events
        self._profiles = profiles
        self._metrics = metrics
        self._policy = policy or RequeuePolicy(max_attempts=settings.max_attempts)
        self._scheduler = scheduler

    def check_open(self) -> BatchCheckSummary:
        """Every batch not yet closed, oldest first."""
        summary = BatchCheckSummary()
        for record in list(self._batches.iter_open()):
            self._check(record, summary)
        self._report(summary)
        return summary

    def check(self, batch_id: str) -> BatchCheckSummary:
        """One batch (the expiry schedule names it); an unknown or closed batch is a no-op."""
        summary = BatchCheckSummary()
        record = self._batches.get(batch_id)
        if record is None or record.state is BatchState.CLOSED:
            logger.info("batch needs no check", extra={"batch_id": batch_id})
            return summary
        self._check(record, summary)
        self._report(summary)
        return summary

    # --- one batch ----------------------------------------------------------------------------------------

    def _check(self, record: BatchRecord, summary: BatchCheckSummary) -> None:
        summary.batches_checked += 1
        try:
            api_batch: Batch | None = self._api.retrieve_batch(record.batch_id)
        except NotFoundError:
            api_batch = None  # deleted (past the 30-day retention, or by hand): nothing more will come
        run = _Run(self._open_items(record)).begin(summary)
        if api_batch is not None:
            self._read_results(record, run, summary)
        terminal = api_batch is None or api_batch.status in limits.TERMINAL_BATCH_STATUSES
        if terminal:
            code, message = ("missing_result", "the batch ended without a result")
            if api_batch is None:
                code, message = ("batch_not_found", f"TwelveLabs no longer knows batch {record.batch_id} (deleted)")
            for item in list(run.open.values()):  # a terminal batch without a final line for the item
                self._settle_failure(item, "canceled", code, message, summary)
            run.open.clear()
        self._update_record(record, api_batch, run, summary, close=terminal)

    def _open_items(self, record: BatchRecord) -> dict[str, ItemRecord]:
        found = self._items.get_many(record.item_ids)
        return {
            item_id: item
            for item_id, item in found.items()
            if item.state is ItemState.SUBMITTED and item.batch_id == record.batch_id
        }

    def _read_results(self, record: BatchRecord, run: _Run, summary: BatchCheckSummary) -> None:
        owners = {custom_id: item for item in run.open.values() for custom_id in item.custom_ids()}
        with self._api.stream_batch_results(record.batch_id) as lines:
            for line in lines:
                item = owners.get(line.custom_id or "")
                if item is None or item.item_id not in run.open or line.status not in _FINAL_STATUSES:
                    continue  # another attempt's line, already settled, or still running
                if line.parse_error is not None:
                    continue  # unreadable: the item stays open and its line is read again at the next check
                if line.status != "ready":
                    error = line.error
                    code, message = (error.code, error.message) if error else (None, None)
                    self._settle_failure(item, line.status, code, message, summary)
                    run.open.pop(item.item_id)
                    continue
                parts = run.parts.setdefault(item.item_id, {})
                parts[line.custom_id or ""] = line
                if len(parts) == len(item.windows):
                    self._finish(item, record, parts, summary)
                    run.open.pop(item.item_id)

    # --- settling items -----------------------------------------------------------------------------------

    def _finish(
        self, item: ItemRecord, record: BatchRecord, lines: dict[str, BatchResultItem], summary: BatchCheckSummary
    ) -> None:
        windows = item.custom_ids()
        parts = [
            WindowResult(window=windows[custom_id], text=line.data.data, finish_reason=line.data.known_finish_reason)
            for custom_id, line in lines.items()
            if line.data is not None
        ]
        merged = merge_window_results(item.analysis_mode, self._response_format_type(item), parts)
        key = result_key(self._settings.results_prefix, item.key, item.version_id)
        body = _result_document(item, record, windows, lines, merged)
        written = self._objects.write_once(item.bucket, key, body, "application/json")
        now = self._clock.now()
        done = item.model_copy(
            update={"state": ItemState.DONE, "result_key": key, "finished_at": now, "updated_at": now}
        )
        if not self._save(done, item, summary):
            return
        summary.items_succeeded += 1
        logger.info("item done", extra={"item_id": item.item_id, "batch_id": record.batch_id, "written": written})
        self._events.publish([_succeeded_event(done, merged, f"s3://{item.bucket}/{key}", now)])

    def _response_format_type(self, item: ItemRecord) -> str | None:
        try:
            response_format = self._profiles.by_name(item.profile_name or "").options.response_format
        except ConfigurationError:
            return None  # profile removed meanwhile: merge as plain output rather than lose the result
        return None if response_format is None else response_format.type

    def _settle_failure(
        self, item: ItemRecord, status: str, code: str | None, message: str | None, summary: BatchCheckSummary
    ) -> None:
        now = self._clock.now()
        decision = self._policy.decide(
            item_status=status, error_code=code, attempts=max(item.counted_attempts, 1), now=now, error_message=message
        )
        if isinstance(decision, Requeue):
            self._requeue(item, decision, now, summary)
        elif isinstance(decision, Fail):
            failed = item.model_copy(
                update={"state": ItemState.FAILED, "failure": decision.failure, "finished_at": now, "updated_at": now}
            )
            if self._save(failed, item, summary):
                summary.items_failed += 1
                self._events.publish([item_failed_event(failed, decision.failure, "analysis", now=now)])
        else:
            assert isinstance(decision, Finish)  # only for ready lines, which never come here

    def _requeue(self, item: ItemRecord, decision: Requeue, now: datetime, summary: BatchCheckSummary) -> None:
        queued = item.model_copy(
            update={
                "state": ItemState.QUEUED,
                "eligible_at": decision.eligible_at,
                "batch_id": None,
                "task_ids": {},
                "claim_id": None,
                "claimed_at": None,
                "submitted_at": None,
                "updated_at": now,
                "note": f"requeued from batch {item.batch_id}: {decision.reason}",
            }
        )
        if self._save(queued, item, summary):
            summary.items_requeued += 1
            logger.info("item requeued", extra={"item_id": item.item_id, "reason": decision.reason})

    def _save(self, new: ItemRecord, expected: ItemRecord, summary: BatchCheckSummary) -> bool:
        try:
            self._items.save(new, expected)
        except StaleStateError:
            summary.lost_races += 1
            logger.info("item changed meanwhile; left alone", extra={"item_id": expected.item_id})
            return False
        return True

    # --- the batch record ---------------------------------------------------------------------------------

    def _update_record(
        self, record: BatchRecord, api_batch: Batch | None, run: _Run, summary: BatchCheckSummary, *, close: bool
    ) -> None:
        settled = run.counts(summary)
        still_submitted = any(
            item.state is ItemState.SUBMITTED and item.batch_id == record.batch_id
            for item in self._items.get_many(record.item_ids).values()
        )
        now = self._clock.now()
        update: dict[str, Any] = {
            "api_status": api_batch.status if api_batch else "deleted",
            "succeeded_items": record.succeeded_items + settled[0],
            "failed_items": record.failed_items + settled[1],
            "requeued_items": record.requeued_items + settled[2],
        }
        closing = close and not still_submitted
        if closing:
            update |= {"state": BatchState.CLOSED, "closed_at": now}
        try:
            new = self._batches.save(record.model_copy(update=update), record)
        except StaleStateError:
            logger.info("batch record changed meanwhile", extra={"batch_id": record.batch_id})
            return
        if closing:
            summary.batches_closed += 1
            if self._scheduler is not None:
                # The expiry check has nothing left to do; an idle stack should not wake for it.
                self._scheduler.cancel_batch_check(record.batch_id)
            self._events.publish([_finished_event(new, api_batch, now)])
            logger.info("batch closed", extra={"batch_id": record.batch_id})

    def _report(self, summary: BatchCheckSummary) -> None:
        self._metrics.add_metric(name="ItemsSucceeded", unit="Count", value=summary.items_succeeded)
        self._metrics.add_metric(name="ItemsFailed", unit="Count", value=summary.items_failed)
        self._metrics.add_metric(name="ItemsRequeued", unit="Count", value=summary.items_requeued)


class _Run:
    """One pass over a batch: the items still open and the ready windows seen so far."""

    def __init__(self, open_items: dict[str, ItemRecord]) -> None:
        self.open = open_items
        self.parts: dict[str, dict[str, BatchResultItem]] = {}
        self._start: tuple[int, int, int] | None = None

    def counts(self, summary: BatchCheckSummary) -> tuple[int, int, int]:
        # The summary spans runs of several batches; the difference since this run began is this batch's share.
        if self._start is None:
            return (summary.items_succeeded, summary.items_failed, summary.items_requeued)
        return (
            summary.items_succeeded - self._start[0],
            summary.items_failed - self._start[1],
            summary.items_requeued - self._start[2],
        )

    def begin(self, summary: BatchCheckSummary) -> _Run:
        self._start = (summary.items_succeeded, summary.items_failed, summary.items_requeued)
        return self


def _result_document(
    item: ItemRecord,
    record: BatchRecord,
    windows: dict[str, Window],
    lines: dict[str, BatchResultItem],
    merged: MergedResult,
) -> bytes:
    """Deterministic JSON (sorted keys, only stored facts, no "written at") so a rewrite yields identical bytes."""
    ordered = sorted(lines.items(), key=lambda pair: windows[pair[0]].index)
    usage = [line.data.usage for _, line in ordered if line.data is not None]
    document = {
        "schema_version": RESULT_SCHEMA_VERSION,
        "item_id": item.item_id,
        "source": {"bucket": item.bucket, "key": item.key, "version_id": item.version_id, "etag": item.etag},
        "profile": item.profile_name,
        "analysis_mode": item.analysis_mode,
        "model": limits.MODEL_NAME,
        "batch_id": record.batch_id,
        "attempt": item.attempts,
        "video_duration_seconds": item.duration_seconds,
        "windows": [
            {
                **windows[custom_id].model_dump(),
                "custom_id": custom_id,
                "task_id": line.task_id,
                "generation_id": line.data.generation_id if line.data else None,
                "finish_reason": line.data.finish_reason if line.data else None,
            }
            for custom_id, line in ordered
        ],
        "usage": {
            "output_tokens": sum(u.output_tokens for u in usage),
            "input_tokens": sum(u.input_tokens or 0 for u in usage),
        },
        "timings": {
            "registered_at": rfc3339(item.created_at),
            "queued_at": rfc3339(item.queued_at) if item.queued_at else None,
            "submitted_at": rfc3339(item.submitted_at) if item.submitted_at else None,
            "batch_created_at": rfc3339(record.created_at),
        },
        "result": {
            "media_type": merged.media_type,
            "truncated": merged.truncated,
            "unparsable_window_indexes": list(merged.unparsable_window_indexes),
            "body": json.loads(merged.body) if merged.media_type == "application/json" else merged.body,
        },
    }
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _succeeded_event(item: ItemRecord, merged: MergedResult, uri: str, now: datetime) -> ItemSucceeded:
    return ItemSucceeded(
        occurred_at=now,
        item_id=item.item_id,
        bucket=item.bucket,
        key=item.key,
        version_id=item.version_id,
        profile=item.profile_name,
        attempts=item.counted_attempts,  # submissions that reached TwelveLabs (released ones did not)
        registered_at=item.created_at,
        analysis_mode=item.analysis_mode,
        result_s3_uri=uri,
        result_media_type=merged.media_type,
        batch_id=item.batch_id or "",
        task_ids=tuple(item.task_ids.values()),
        window_count=merged.window_count,
        video_duration_seconds=item.duration_seconds or 0.0,
        truncated=merged.truncated,
        submitted_at=item.submitted_at or item.updated_at,
    )


def _finished_event(record: BatchRecord, api_batch: Batch | None, now: datetime) -> BatchFinished:
    status: Literal["completed", "canceled", "expired"] = "expired"  # a deleted batch has certainly expired
    if api_batch is not None and api_batch.status in ("completed", "canceled"):
        status = "completed" if api_batch.status == "completed" else "canceled"
    return BatchFinished(
        occurred_at=now,
        batch_id=record.batch_id,
        analysis_mode=record.analysis_mode,
        status=status,
        request_count=len(record.task_ids),
        ready_requests=api_batch.ready_items if api_batch else 0,
        failed_requests=api_batch.failed_items if api_batch else 0,
        canceled_requests=api_batch.canceled_items if api_batch else 0,
        items_succeeded=record.succeeded_items,
        items_failed=record.failed_items,
        items_requeued=record.requeued_items,
        submitted_at=record.created_at,
        duration_seconds=max(0.0, (now - record.created_at).total_seconds()),
    )
