"""Sweeper: finds work that stopped moving and ends it with a reason a person can act on.

Runs on a schedule (and from the command line). Rule so far: an item still ``registered`` (its asset was never
created: ingest kept failing until its message went to the dead-letter queue) after ``asset_timeout_seconds`` is
failed with ``ingest_incomplete``. Every write is conditional on the state read, so a sweep racing a late ingest
retry loses instead of overwriting it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from itertools import islice
from typing import Final

from pydantic import BaseModel, ConfigDict

from videobatch.clock import Clock
from videobatch.config import Settings
from videobatch.domain.items import FailureReason, ItemState
from videobatch.errors import StaleStateError
from videobatch.services.ingest import item_failed_event
from videobatch.services.ports import EventPublisher, ItemStore, MetricsSink
from videobatch.services.records import REGISTERED_QUEUE

logger = logging.getLogger(__name__)

DEFAULT_MAX_ITEMS_PER_RUN: Final = 5_000


class SweepSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ingest_incomplete: int = 0
    lost_races: int = 0

    @property
    def work_done(self) -> int:
        return self.ingest_incomplete


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
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._events = events
        self._metrics = metrics
        self._max_items = max_items_per_run

    def run(self) -> SweepSummary:
        summary = SweepSummary()
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
            try:
                self._items.save(failed, item)
            except StaleStateError:
                summary.lost_races += 1
                continue
            summary.ingest_incomplete += 1
            logger.info("stuck item failed", extra={"item_id": item.item_id, "code": failure.code})
            self._events.publish([item_failed_event(failed, failure, "ingest", now=now)])
        if summary.ingest_incomplete:
            self._metrics.add_metric(name="ItemsFailed", unit="Count", value=summary.ingest_incomplete)
        return summary
