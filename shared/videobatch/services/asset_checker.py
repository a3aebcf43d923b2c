"""Asset checker: moves items whose TwelveLabs asset finished processing to ``queued`` (or ``failed``).

One ``GET /assets?asset_ids=...`` answers for up to 50 items, so a backlog of thousands costs tens of calls.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from itertools import islice
from typing import Final

from pydantic import BaseModel, ConfigDict

from videobatch.clock import Clock
from videobatch.config import Settings
from videobatch.domain.items import FailureReason, ItemState
from videobatch.domain.profiles import ProfileSet
from videobatch.domain.windows import plan_windows
from videobatch.errors import ConfigurationError, RejectedUploadError, StaleStateError
from videobatch.services.ingest import item_failed_event
from videobatch.services.ports import EventPublisher, ItemStore, MetricsSink, TwelveLabsAssets
from videobatch.services.records import ASSET_QUEUE, ItemRecord
from videobatch.twelvelabs import limits
from videobatch.twelvelabs.models import Asset

logger = logging.getLogger(__name__)

# One run handles at most this many items; the rest wait for the next run (oldest first, so nothing starves).
DEFAULT_MAX_ITEMS_PER_RUN: Final = 5_000


class AssetCheckSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checked: int = 0
    queued: int = 0
    failed: int = 0
    still_processing: int = 0
    lost_races: int = 0

    @property
    def work_done(self) -> int:
        return self.queued + self.failed


def assets_of(api: TwelveLabsAssets, items: Sequence[ItemRecord]) -> dict[str, Asset]:
    """The items' assets as TwelveLabs lists them, by id (one call per 50 items); absent: unknown to TwelveLabs."""
    asset_ids = [item.asset_id for item in items if item.asset_id]
    found: dict[str, Asset] = {}
    for start in range(0, len(asset_ids), limits.MAX_PAGE_LIMIT):
        chunk = asset_ids[start : start + limits.MAX_PAGE_LIMIT]
        page = api.list_assets(asset_ids=chunk, page_limit=limits.MAX_PAGE_LIMIT)
        found.update((asset.id, asset) for asset in page.data)
    return found


class AssetCheckService:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        assets: TwelveLabsAssets,
        events: EventPublisher,
        profiles: ProfileSet,
        metrics: MetricsSink,
        max_items_per_run: int = DEFAULT_MAX_ITEMS_PER_RUN,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._assets = assets
        self._events = events
        self._profiles = profiles
        self._metrics = metrics
        self._max_items = max_items_per_run

    def run(self) -> AssetCheckSummary:
        summary = AssetCheckSummary()
        pending = islice(self._items.iter_queue(ASSET_QUEUE), self._max_items)
        for chunk in _chunks(pending, limits.MAX_PAGE_LIMIT):
            found = self._lookup(chunk)
            for item in chunk:
                summary.checked += 1
                self._check(item, found.get(item.asset_id or ""), summary)
        if summary.failed:
            self._metrics.add_metric(name="ItemsFailed", unit="Count", value=summary.failed)
        return summary

    def _lookup(self, chunk: Sequence[ItemRecord]) -> dict[str, Asset]:
        return assets_of(self._assets, chunk)

    def _check(self, item: ItemRecord, asset: Asset | None, summary: AssetCheckSummary) -> None:
        status = asset.status if asset is not None else None
        if asset is not None and status == "ready":
            self._ready(item, asset, summary)
        elif asset is not None and status == "failed":
            message = asset.error.message if asset.error else "TwelveLabs could not process the video"
            self._fail(item, FailureReason(code="asset_failed", message=message), summary)
        elif self._timed_out(item):
            what = "has not become ready" if asset is not None else "is unknown to TwelveLabs"
            hours = self._settings.asset_timeout_seconds / 3600
            failure = FailureReason(code="asset_timeout", message=f"asset {item.asset_id} {what} after {hours:g} h")
            self._fail(item, failure, summary)
        else:
            summary.still_processing += 1

    def _timed_out(self, item: ItemRecord) -> bool:
        started = item.asset_created_at or item.updated_at
        return self._clock.now() - started > timedelta(seconds=self._settings.asset_timeout_seconds)

    def _ready(self, item: ItemRecord, asset: Asset, summary: AssetCheckSummary) -> None:
        duration = asset.duration or (asset.technical_metadata and asset.technical_metadata.video_duration_seconds)
        if not duration:
            failure = FailureReason(code="asset_without_duration", message="TwelveLabs reports no video duration")
            self._fail(item, failure, summary)
            return
        try:
            options = self._profiles.by_name(item.profile_name or "").options
            windows = plan_windows(duration, start_seconds=options.start_time, end_seconds=options.end_time)
        except RejectedUploadError as rejected:  # too long (> 4 h) or too short
            self._fail(item, FailureReason(code=rejected.reason, message=rejected.message), summary)
            return
        except ConfigurationError as error:  # the profile was removed since ingest
            self._fail(item, FailureReason(code="profile_missing", message=str(error)), summary)
            return
        now = self._clock.now()
        queued = item.model_copy(
            update={
                "state": ItemState.QUEUED,
                "duration_seconds": duration,
                "windows": tuple(windows),
                "queued_at": now,
                "eligible_at": now,
                "updated_at": now,
            }
        )
        if self._save(queued, item, summary):
            summary.queued += 1
            logger.info("asset ready", extra={"item_id": item.item_id, "duration_seconds": duration})

    def _fail(self, item: ItemRecord, failure: FailureReason, summary: AssetCheckSummary) -> None:
        now = self._clock.now()
        failed = item.model_copy(
            update={"state": ItemState.FAILED, "failure": failure, "finished_at": now, "updated_at": now}
        )
        if self._save(failed, item, summary):
            summary.failed += 1
            logger.info("item failed", extra={"item_id": item.item_id, "code": failure.code})
            self._events.publish([item_failed_event(failed, failure, "asset", now=now)])

    def _save(self, new: ItemRecord, expected: ItemRecord, summary: AssetCheckSummary) -> bool:
        try:
            self._items.save(new, expected)
        except StaleStateError:
            summary.lost_races += 1  # another checker run got there first
            return False
        return True


def _chunks(items: Iterator[ItemRecord], size: int) -> Iterator[list[ItemRecord]]:
    while chunk := list(islice(items, size)):
        yield chunk
