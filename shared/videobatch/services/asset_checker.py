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
from videobatch.domain.records import INTAKE_QUEUE, ItemRecord
from videobatch.domain.windows import plan_windows
from videobatch.errors import ConfigurationError, InvalidInputError, RejectedUploadError
from videobatch.services.lifecycle import ItemWriter
from videobatch.services.ports import ItemStore, MetricsSink, TwelveLabsAssets
from videobatch.twelvelabs import limits
from videobatch.twelvelabs.models import Asset

logger = logging.getLogger(__name__)

# One run handles at most this many items; the rest wait for the next run (oldest first, so nothing starves).
DEFAULT_MAX_ITEMS_PER_RUN: Final = 5_000


class AssetCheckSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

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
        writer: ItemWriter,
        assets: TwelveLabsAssets,
        profiles: ProfileSet,
        metrics: MetricsSink,
        max_items_per_run: int = DEFAULT_MAX_ITEMS_PER_RUN,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._writer = writer
        self._assets = assets
        self._profiles = profiles
        self._metrics = metrics
        self._max_items = max_items_per_run

    def run(self) -> AssetCheckSummary:
        summary, races_before = AssetCheckSummary(), self._writer.lost_races
        intake = self._items.iter_queue(INTAKE_QUEUE)
        pending = islice((item for item in intake if item.state is ItemState.ASSET_PROCESSING), self._max_items)
        for chunk in _chunks(pending, limits.MAX_PAGE_LIMIT):
            found = self._lookup(chunk)
            for item in chunk:
                summary.checked += 1
                self._check_isolated(item, found.get(item.asset_id or ""), summary)
        summary.lost_races = self._writer.lost_races - races_before
        return summary

    def _lookup(self, chunk: Sequence[ItemRecord]) -> dict[str, Asset]:
        return assets_of(self._assets, chunk)

    def _check_isolated(self, item: ItemRecord, asset: Asset | None, summary: AssetCheckSummary) -> None:
        """An asset answer that breaks a rule fails its item alone (errors.py's isolation rule)."""
        try:
            self._check(item, asset, summary)
        except (InvalidInputError, ValueError) as fault:
            logger.warning("asset unusable", extra={"item_id": item.item_id, "error": str(fault)})
            message = f"TwelveLabs describes asset {item.asset_id} in a way the pipeline cannot use: {fault}"
            self._fail(item, FailureReason(code="asset_unusable", message=message[:4000]), summary)

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
        if self._writer.save(item.asset_ready(duration, windows, now=self._clock.now()), item) is not None:
            summary.queued += 1
            logger.info("asset ready", extra={"item_id": item.item_id, "duration_seconds": duration})

    def _fail(self, item: ItemRecord, failure: FailureReason, summary: AssetCheckSummary) -> None:
        if self._writer.fail(item, failure) is not None:
            summary.failed += 1


def _chunks(items: Iterator[ItemRecord], size: int) -> Iterator[list[ItemRecord]]:
    while chunk := list(islice(items, size)):
        yield chunk
