"""The one writer of items: every item write of every service goes through ``ItemWriter``.

A service decides *what* happens to an item (a transition method of ``ItemRecord`` builds the new record, which
checks the move); the writer makes it durable and tells the world, the same way everywhere:

- each save is conditional on the version read (the store raises StaleStateError on a lost race); a lost race is
  counted and logged, never an error: someone else moved the item first and their write stands;
- a failure publishes ``Item Failed`` and counts ``ItemsFailed`` plus ``ItemsFailedUser`` or
  ``ItemsFailedPipeline`` (``FailureReason.kind``: only the pipeline's own failures page someone);
- a success publishes ``Item Succeeded`` and counts ``ItemsSucceeded``; a requeue counts ``ItemsRequeued``;
- every ``done`` / ``failed`` item is reported to the outcome ledger (``domain.outcomes``): a failure at once, the
  successes buffered until ``flush_outcomes`` (the recorder calls it once per batch check), so the counters cost a
  write per failure and per batch; with ``DeleteAssets=after_result`` the terminal item's TwelveLabs asset is
  deleted at the same moments (best effort: the sweeper's orphan pass deletes what a failed delete left);
- ``reopen`` is the operator's requeue of a failed item (``ItemStore.reopen``); its failure leaves the ledger.

The item is saved before its event is published: a crash in between loses the event, never the state (the record is
the source of truth, and a redelivered trigger finds it already moved).
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Final

from videobatch.domain.events import FailureStage, item_failed_event, item_succeeded_event
from videobatch.domain.items import FailureReason, ItemState
from videobatch.domain.outcomes import Outcome
from videobatch.errors import NotFoundError, StaleStateError, TwelveLabsError

if TYPE_CHECKING:
    from videobatch.clock import Clock
    from videobatch.domain.outcomes import ResultUsage
    from videobatch.domain.records import ItemRecord
    from videobatch.domain.windows import MergedResult
    from videobatch.services.ports import (
        EventPublisher,
        ItemStore,
        MetricsSink,
        OutcomeLedger,
        TwelveLabsAssetCleanup,
    )

logger = logging.getLogger(__name__)

# Where in the pipeline an item failed, by the state it failed from (what the Item Failed event calls its stage).
_STAGE_BY_STATE: Final[dict[ItemState, FailureStage]] = {
    ItemState.REGISTERED: "ingest",
    ItemState.ASSET_PROCESSING: "asset",
    ItemState.QUEUED: "packing",
    ItemState.CLAIMED: "submission",
    ItemState.SUBMITTED: "analysis",
}


class ItemWriter:
    def __init__(
        self,
        *,
        items: ItemStore,
        events: EventPublisher,
        metrics: MetricsSink,
        clock: Clock,
        write_concurrency: int = 1,
        ledger: OutcomeLedger | None = None,
        asset_cleanup: TwelveLabsAssetCleanup | None = None,
    ) -> None:
        """``ledger``: where outcomes are counted (None: nowhere); ``asset_cleanup``: set when terminal items'
        assets are to be deleted (DeleteAssets=after_result)."""
        self._items = items
        self._events = events
        self._metrics = metrics
        self._clock = clock
        self._concurrency = write_concurrency
        self._lock = threading.Lock()
        self._ledger = ledger
        self._asset_cleanup = asset_cleanup
        self._pending_outcomes: list[Outcome] = []
        self.lost_races = 0

    def create(self, item: ItemRecord) -> tuple[ItemRecord, bool]:
        """Store a new item; when it exists already (a duplicate event), that one and False."""
        return self._items.create(item)

    def reject(self, item: ItemRecord) -> tuple[ItemRecord, bool]:
        """Store an upload born ``failed``; Item Failed is published only by the call that created it."""
        stored, created = self._items.create(item)
        if created and stored.failure is not None:
            self._failed(stored, stored.failure, "ingest")
        return stored, created

    def save(self, new: ItemRecord, expected: ItemRecord) -> ItemRecord | None:
        """``expected`` replaced by ``new`` (a transition of it); None when someone else moved it first."""
        try:
            return self._items.save(new, expected)
        except StaleStateError:
            with self._lock:
                self.lost_races += 1
            logger.info(
                "item changed meanwhile; left alone",
                extra={"item_id": expected.item_id, "state": expected.state.value, "wanted": new.state.value},
            )
            return None

    def save_all(self, moves: Sequence[tuple[ItemRecord, ItemRecord]]) -> list[ItemRecord | None]:
        """``save`` for many (new, expected) pairs, up to ``write_concurrency`` at a time: a 1,000-item claim or
        submission takes a fraction of a second instead of a thousand round trips in a row. Results in order; the
        first error (a pipeline fault, a crash) is raised after the writes already under way have finished, as a
        process dying mid-way would leave them."""
        if self._concurrency <= 1 or len(moves) <= 1:
            return [self.save(new, expected) for new, expected in moves]
        with ThreadPoolExecutor(max_workers=min(self._concurrency, len(moves))) as pool:
            # Each write runs in a copy of the caller's context (its logging keys, a test's crash injection).
            futures = [pool.submit(contextvars.copy_context().run, self.save, new, old) for new, old in moves]
            return [future.result() for future in futures]

    def fail(self, item: ItemRecord, failure: FailureReason, *, stage: FailureStage | None = None) -> ItemRecord | None:
        stored = self.save(item.fail(failure, now=self._clock.now()), item)
        if stored is not None:
            self._failed(stored, failure, stage or _STAGE_BY_STATE[item.state])
        return stored

    def requeue(self, item: ItemRecord, note: str, *, eligible_at: datetime) -> ItemRecord | None:
        """A submitted item back to the queue for another attempt."""
        stored = self.save(item.requeue(note, now=self._clock.now(), eligible_at=eligible_at), item)
        if stored is not None:
            self._metrics.add_metric(name="ItemsRequeued", unit="Count", value=1)
            logger.info("item requeued", extra={"item_id": item.item_id, "note": stored.note})
        return stored

    def release(self, item: ItemRecord, note: str, *, eligible_at: datetime | None = None) -> ItemRecord | None:
        """A claimed item back to the queue: no batch was made for it."""
        return self.save(item.release(note, now=self._clock.now(), eligible_at=eligible_at), item)

    def finish(
        self,
        item: ItemRecord,
        result_uri: str,
        result_key: str,
        merged: MergedResult,
        *,
        warnings: tuple[str, ...] = (),
        usage: ResultUsage | None = None,
    ) -> ItemRecord | None:
        now = self._clock.now()
        stored = self.save(item.finish(result_key, now=now), item)
        if stored is not None:
            self._metrics.add_metric(name="ItemsSucceeded", unit="Count", value=1)
            logger.info("item done", extra={"item_id": item.item_id, "batch_id": item.batch_id})
            event = item_succeeded_event(stored, merged, result_uri, now=now, warnings=warnings, usage=usage)
            self._events.publish([event])
            self._pending_outcomes.append(Outcome.of(stored, usage))
        return stored

    def reopen(self, item: ItemRecord, new: ItemRecord) -> ItemRecord | None:
        """An operator's requeue (``new`` is ``item.reopen_queued/registered(...)``); None when it moved first."""
        try:
            stored = self._items.reopen(new, item)
        except StaleStateError:
            self.lost_races += 1
            logger.info("item changed meanwhile; not reopened", extra={"item_id": item.item_id})
            return None
        if self._ledger is not None:
            self._ledger.retract(Outcome.of(item))
        logger.info("item reopened by an operator", extra={"item_id": item.item_id, "state": stored.state.value})
        return stored

    def flush_outcomes(self) -> None:
        """Count the buffered successes (one ledger write) and delete their assets if so configured."""
        pending, self._pending_outcomes = self._pending_outcomes, []
        if not pending:
            return
        if self._ledger is not None:
            self._ledger.record(pending)
        for outcome in pending:
            self._delete_asset(outcome)

    def _failed(self, item: ItemRecord, failure: FailureReason, stage: FailureStage) -> None:
        self._metrics.add_metric(name="ItemsFailed", unit="Count", value=1)
        kind_metric = "ItemsFailedUser" if failure.kind == "user" else "ItemsFailedPipeline"
        self._metrics.add_metric(name=kind_metric, unit="Count", value=1)
        logger.info(
            "item failed", extra={"item_id": item.item_id, "code": failure.code, "stage": stage, "kind": failure.kind}
        )
        self._events.publish([item_failed_event(item, failure, stage, now=self._clock.now())])
        outcome = Outcome.of(item)
        if self._ledger is not None:
            self._ledger.record([outcome])
        self._delete_asset(outcome)

    def _delete_asset(self, outcome: Outcome) -> None:
        if self._asset_cleanup is None or outcome.asset_id is None:
            return
        try:
            self._asset_cleanup.delete_asset(outcome.asset_id)
        except NotFoundError:
            pass  # deleted already (a retried run, or by hand)
        except TwelveLabsError as error:
            # Left for the sweeper's orphan pass, which deletes the assets of terminal items too (after_result).
            self._metrics.add_metric(name="AssetDeletesFailed", unit="Count", value=1)
            logger.warning("asset not deleted", extra={"asset_id": outcome.asset_id, "error": str(error)})
