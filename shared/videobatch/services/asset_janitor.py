"""Orphan assets: TwelveLabs assets this stack created but no item records (the sweeper deletes them, daily).

Ingest creates an asset before it records its id on the item; a crash (or a lost race of two deliveries) in between
leaves an asset nobody will analyse, which costs storage only. Ingest names the item in the asset's
``user_metadata`` (``item_id``, ``bucket``, ``key``), so the sweeper can tell: an asset of this stack (its
``bucket`` is the stack's video bucket; assets of other users of the key are never touched) is an orphan when no
item has it as its asset (the item is missing, or records another asset: a requeue that made a new one, a retried
ingest) and it is older than ``ORPHAN_AGE_SECONDS``, so an ingest in progress is never raced. With
``DeleteAssets=after_result`` the assets of terminal items are deleted too (what a failed delete of the writer left).

Only assets younger than the items' retention are judged: an older asset whose item expired (TTL, 90 days after it
finished) was recorded once, and with ``DeleteAssets=never`` it is kept. The pass lists every asset of the account,
so it runs at most once a day (a lease taken for a day and never released) and deletes at most ``max_deletes``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from itertools import islice
from typing import TYPE_CHECKING, Final

from videobatch.errors import NotFoundError, TwelveLabsError
from videobatch.twelvelabs import limits

if TYPE_CHECKING:
    from videobatch.clock import Clock
    from videobatch.config import Settings
    from videobatch.services.ports import ItemStore, LeaseStore, MetricsSink, TwelveLabsAssetCleanup
    from videobatch.twelvelabs.models import Asset

logger = logging.getLogger(__name__)

LEASE_NAME: Final = "orphan-assets"
RUN_EVERY_SECONDS: Final = 24 * 3600.0
ORPHAN_AGE_SECONDS: Final = 24 * 3600.0
RETENTION_SECONDS: Final = 90 * 24 * 3600.0


class OrphanAssetSweep:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        leases: LeaseStore,
        assets: TwelveLabsAssetCleanup,
        metrics: MetricsSink,
        max_deletes: int = 1000,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._leases = leases
        self._assets = assets
        self._metrics = metrics
        self._max_deletes = max_deletes

    def run(self) -> int:
        """Assets deleted by this pass (0 when the day's pass ran already)."""
        now = self._clock.now()
        if not self._leases.acquire(LEASE_NAME, uuid.uuid4().hex, now=now, duration_seconds=RUN_EVERY_SECONDS):
            return 0
        deleted = 0
        for chunk in _chunks(self._candidates(), 100):
            items = self._items.get_many([str((asset.user_metadata or {})["item_id"]) for asset in chunk])
            for asset in chunk:
                item = items.get(str((asset.user_metadata or {})["item_id"]))
                orphan = item is None or item.asset_id != asset.id
                done_with = item is not None and item.terminal and self._settings.delete_assets == "after_result"
                if (orphan or done_with) and self._delete(asset.id):
                    deleted += 1
                    if deleted >= self._max_deletes:
                        return self._report(deleted)
        return self._report(deleted)

    def _candidates(self) -> Iterator[Asset]:
        now = self._clock.now()
        youngest = now - timedelta(seconds=ORPHAN_AGE_SECONDS)
        oldest = now - timedelta(seconds=RETENTION_SECONDS)
        for asset in self._assets.iter_assets(page_limit=limits.MAX_PAGE_LIMIT):
            metadata = asset.user_metadata or {}
            if metadata.get("bucket") != self._settings.video_bucket or not metadata.get("item_id"):
                continue  # not this stack's
            if asset.created_at is None or not oldest <= asset.created_at <= youngest:
                continue
            yield asset

    def _delete(self, asset_id: str) -> bool:
        try:
            self._assets.delete_asset(asset_id)
        except NotFoundError:
            return False
        except TwelveLabsError as error:
            logger.warning("orphan asset not deleted", extra={"asset_id": asset_id, "error": str(error)})
            return False
        logger.info("orphan asset deleted", extra={"asset_id": asset_id})
        return True

    def _report(self, deleted: int) -> int:
        self._metrics.add_metric(name="OrphanAssetsDeleted", unit="Count", value=deleted)
        return deleted


def _chunks(assets: Iterator[Asset], size: int) -> Iterator[list[Asset]]:
    while chunk := list(islice(assets, size)):
        yield chunk
