"""The batch processing model: a deterministic, event-driven simulation advanced to "now" on every request.

Model (fixed; all times are emulator clock times):
- A batch is ``pending`` at its creation instant and ``processing`` as soon as the clock is past it; its
  workers start at the creation instant.
- It works on up to ``item_concurrency`` items at a time, in submission order. An item takes
  ``window length / content_seconds_per_second`` seconds, using the settings in force when it starts.
- An item whose window exceeds 2 h fails with ``video_duration_too_long`` when its turn comes, without
  taking a worker or time; so does an item refused on its own (``item.fails_with``: item_level_refusals).
  Other items finish ``ready`` (output from ``generate_output``) unless an ``item_failure`` fault picks them.
- When every item is terminal the batch is ``completed`` (or ``canceled`` if cancellation was requested),
  at the instant the last item finished.
- At ``expires_at`` (created + 24 h) unfinished work stops: queued items are ``canceled``
  (``batch_expired``), processing items ``failed`` (``batch_processing_timeout``), the batch ``expired``.
  An item due to finish exactly at ``expires_at`` counts as too late.
- 30 days after creation the batch and its tasks are deleted (done by the state, not here).
Because each batch is advanced from its last simulated instant, processing completions in time order, the
state is a pure function of the clock and the requests.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from twelvelabs_emulator.models import BatchRecord, EmulatorSettings, ItemRecord

ItemFinisher = Callable[[ItemRecord, datetime], None]
TERMINAL_ITEM_STATUSES = frozenset({"ready", "failed", "canceled"})


def advance_batch(batch: BatchRecord, now: datetime, settings: EmulatorSettings, finish: ItemFinisher) -> None:
    """Simulate ``batch`` from ``batch.advanced_to`` to ``now``; ``finish`` settles an item that completes."""
    if batch.status in ("completed", "canceled", "expired"):
        return
    if batch.status == "pending":
        if now <= batch.created_at:
            return
        batch.status = "processing"
    horizon = min(now, batch.expires_at)
    while True:
        _dispatch(batch, settings)
        due = _next_finish(batch)
        if due is None or due > horizon or due >= batch.expires_at:
            break
        batch.advanced_to = due
        for item in batch.items:
            if item.status == "processing" and item.finishes_at == due:
                finish(item, due)
    _settle(batch)
    if batch.status in ("processing", "canceling") and now >= batch.expires_at:
        _expire(batch)
    batch.advanced_to = max(batch.advanced_to, horizon)


def request_cancel(batch: BatchRecord, now: datetime) -> None:
    """Queued items are canceled now; processing items run to their end; the batch is ``canceling``."""
    for item in batch.items:
        if item.status == "queued":
            _stop(item, "canceled", "batch_canceled", "The batch was canceled before this item started.", now)
    batch.status = "canceling"


def _dispatch(batch: BatchRecord, settings: EmulatorSettings) -> None:
    if batch.status != "processing":
        return
    start = batch.advanced_to
    running = sum(1 for item in batch.items if item.status == "processing")
    for item in batch.items:
        if item.status != "queued":
            continue
        if item.fails_with is not None:
            _stop(item, "failed", item.fails_with["code"], item.fails_with["message"], start)
            continue
        if running >= settings.item_concurrency:
            break
        item.status = "processing"
        item.finishes_at = start + timedelta(seconds=item.content_seconds / settings.content_seconds_per_second)
        running += 1


def _next_finish(batch: BatchRecord) -> datetime | None:
    due = [item.finishes_at for item in batch.items if item.status == "processing" and item.finishes_at]
    return min(due) if due else None


def _settle(batch: BatchRecord) -> None:
    if not all(item.status in TERMINAL_ITEM_STATUSES for item in batch.items):
        return
    if batch.status == "processing":
        batch.status = "completed"
        batch.completed_at = batch.advanced_to
    elif batch.status == "canceling":
        batch.status = "canceled"
        batch.canceled_at = batch.advanced_to


def _expire(batch: BatchRecord) -> None:
    at = batch.expires_at
    for item in batch.items:
        if item.status == "queued":
            _stop(item, "canceled", "batch_expired", "The batch expired before this item started.", at)
        elif item.status == "processing":
            _stop(item, "failed", "batch_processing_timeout", "The batch expired while this item was processing.", at)
    batch.status = "expired"
    batch.expired_at = at
    batch.advanced_to = at


def _stop(item: ItemRecord, status: str, code: str, message: str, at: datetime) -> None:
    item.status = "failed" if status == "failed" else "canceled"
    item.error = {"code": code, "message": message}
    item.completed_at = at
    item.finishes_at = None
