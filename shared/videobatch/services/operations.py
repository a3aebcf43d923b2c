"""What an operator does to a running pipeline: requeue failed items, cancel a batch, reprocess done videos with
another profile, backfill objects already in the bucket. The ops CLI (``videobatch_ops``) calls these; they write
only through the pipeline's writers (``ItemWriter``, the batch checker and its ``SubmissionRecorder``) and send
objects to ingest as upload events (``domain.upload_events``), so every rule of the pipeline still holds.

Requeue (``failed -> queued`` or ``failed -> registered``, the operator-only moves of ``domain.items``):

- candidates come from the outcome ledger's journal of failures (newest first, by day) or are named by id; each is
  read again (consistently) and must still be ``failed`` (and match the filter) when written, and every write is
  conditional on the version read, so a requeue racing the pipeline or another operator loses, never overwrites;
- an item whose batch record is not closed is never requeued: its batch may still hold a live request of it
  (a multi-window item failed on one window while others run), and a second submission would double it;
- with its asset still ready at TwelveLabs (and its windows planned) it goes back to ``queued``: the flusher picks
  it up under a new attempt number (a custom_id is never reused); otherwise to ``registered``, and its upload
  event is sent to ingest again, which creates a new asset (the item id is deterministic, so ingest resumes this
  very item); an upload refused at ingest (not a video, no profile) cannot be requeued: upload it again;
- ``reset_attempts`` forgives the counted attempts (``ItemRecord.forgiven_attempts``) instead of lowering the
  attempt counter.

Safe while the flusher runs: the flusher never touches a failed item, and from ``queued`` on the item follows the
pipeline's own conditional writes (``tests/ops`` runs a requeue and flushes at once and checks TwelveLabs' batches).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from videobatch.domain.items import FailureReason, ItemState, item_id_for
from videobatch.domain.outcomes import Outcome, days_back
from videobatch.domain.policy import Decision, Fail, Requeue, RequeuePolicy
from videobatch.domain.records import BatchState, ItemRecord
from videobatch.domain.upload_events import object_created_event
from videobatch.errors import ConflictError, InvalidInputError, NotFoundError
from videobatch.services.asset_checker import assets_of
from videobatch.twelvelabs import limits

if TYPE_CHECKING:
    from videobatch.clock import Clock
    from videobatch.config import Settings
    from videobatch.domain.profiles import Profile
    from videobatch.runtime import Runtime
    from videobatch.services.batch_checker import BatchCheckService
    from videobatch.services.lifecycle import ItemWriter
    from videobatch.services.ports import (
        BatchStore,
        ItemStore,
        ListedVersion,
        ObjectLister,
        OutcomeLedger,
        TwelveLabsApi,
        UploadQueue,
    )

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

# The journal is searched this far back when no --since is given: as long as items are kept (TTL).
RETENTION_DAYS: Final = 90
ACTIVE_BATCH_STATUSES: Final = frozenset({"pending", "processing", "canceling"})
Disposition = Literal["requeue", "fail"]


class OperationError(InvalidInputError):
    """An operator's request that cannot be carried out as asked (unknown batch, unknown profile, ...)."""


class FailedFilter(BaseModel):
    """Which failed items: all three optional, all that are given must match."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str | None = None
    since: datetime | None = None
    prefix: str | None = Field(default=None, min_length=1)

    def matches(self, item: ItemRecord) -> bool:
        if item.state is not ItemState.FAILED:
            return False
        if self.code is not None and (item.failure is None or item.failure.code != self.code):
            return False
        if self.prefix is not None and not item.key.startswith(self.prefix):
            return False
        finished = item.finished_at or item.updated_at
        return self.since is None or finished >= self.since


RequeueTarget = Literal["queued", "registered"]


class RequeueCandidate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    item: ItemRecord
    target: RequeueTarget | None  # None: skipped, for ``reason``
    reason: str


class RequeueReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requeued: int = 0  # failed -> queued
    reregistered: int = 0  # failed -> registered, their upload events sent to ingest
    skipped: int = 0
    lost_races: int = 0  # changed by someone else between the read and the write: left as they are


class CancelSettlement(BaseModel):
    """What settling a canceled batch did (the batch checker function returns it to ``cancel-batch``)."""

    model_config = ConfigDict(extra="forbid")

    batch_id: str
    items_succeeded: int = 0  # finished before the cancel took effect: their results are kept
    items_requeued: int = 0
    items_failed: int = 0
    items_left: int = 0  # still processing at TwelveLabs: the batch checker settles them when they end

    @property
    def work_done(self) -> int:
        return self.items_succeeded + self.items_requeued + self.items_failed


class OperatorCancel(BaseModel):
    """How ``cancel-batch`` asks the batch checker function to settle a canceled batch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    disposition: Disposition = "requeue"
    fail_unfinished: bool = False


class OperatorCancelPolicy(RequeuePolicy):
    """Canceled items of a batch an operator canceled: back to the queue at once (not counted against
    max_attempts, the video did nothing wrong), or failed ``canceled_by_operator``; every other status as usual."""

    fail_canceled: bool = False

    def _canceled(self, code: str | None, message: str, attempts: int, now: datetime) -> Decision:
        if self.fail_canceled:
            failure = FailureReason(code="canceled_by_operator", message="an operator canceled its batch")
            return Fail(failure=failure)
        return Requeue(eligible_at=now, reason="canceled_by_operator", counts_attempt=False)


class Operations:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        batches: BatchStore,
        ledger: OutcomeLedger | None,
        writer: ItemWriter,
        twelvelabs: TwelveLabsApi | None = None,
        uploads: UploadQueue | None = None,
        lister: ObjectLister | None = None,
        account: str = "",
        region: str = "",
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._batches = batches
        self._ledger = ledger
        self._writer = writer
        self._api = twelvelabs
        self._uploads = uploads
        self._lister = lister
        self._account = account
        self._region = region

    @property
    def items(self) -> ItemStore:
        return self._items

    # --- finding failed items -------------------------------------------------------------------------------

    def failed_items(self, where: FailedFilter, *, item_ids: Sequence[str] = ()) -> Iterator[ItemRecord]:
        """Failed items matching ``where``, newest failure first: the named ones, else the ledger's journal.
        Each is read again (consistently) and yielded only if it is failed and matches now."""
        if item_ids:
            found = self._items.get_many(item_ids)
            yield from (found[i] for i in dict.fromkeys(item_ids) if i in found and where.matches(found[i]))
            return
        seen: set[str] = set()
        for chunk in _chunks(self._journal(where), 100):
            fresh = self._items.get_many([outcome.item_id for outcome in chunk])
            for outcome in chunk:
                item = fresh.get(outcome.item_id)
                if item is not None and item.item_id not in seen and where.matches(item):
                    seen.add(item.item_id)
                    yield item

    def _journal(self, where: FailedFilter) -> Iterator[Outcome]:
        if self._ledger is None:
            raise OperationError("no outcome ledger: failed items can only be named by id")
        now = self._clock.now()
        days = days_back(now, RETENTION_DAYS)
        if where.since is not None:
            days = [day for day in days if day >= where.since.date()]
        for day in days:
            for outcome in self._ledger.iter_outcomes("failed", day):
                if where.since is not None and outcome.finished_at < where.since:
                    break  # newest first: the rest of the day is older still
                if where.code is not None and outcome.failure_code != where.code:
                    continue
                if where.prefix is not None and not outcome.key.startswith(where.prefix):
                    continue
                yield outcome

    # --- requeue --------------------------------------------------------------------------------------------

    def plan_requeue(self, failed: Iterable[ItemRecord]) -> list[RequeueCandidate]:
        """What a requeue would do with each item (nothing is written)."""
        candidates: list[RequeueCandidate] = []
        for chunk in _chunks(iter(failed), limits.MAX_PAGE_LIMIT):
            ready = self._ready_assets(chunk)
            candidates.extend(self._plan_one(item, ready) for item in chunk)
        return candidates

    def _ready_assets(self, items: Sequence[ItemRecord]) -> set[str]:
        with_assets = [item for item in items if item.asset_id]
        if not with_assets or self._api is None:
            return set()
        return {asset.id for asset in assets_of(self._api, with_assets).values() if asset.status == "ready"}

    def _plan_one(self, item: ItemRecord, ready_assets: set[str]) -> RequeueCandidate:
        if item.batch_id is not None:
            record = self._batches.get_progress(item.batch_id)
            if record is None or record.state is not BatchState.CLOSED:
                why = "is still open" if record is not None else "has no record"
                reason = f"batch {item.batch_id} {why}: it may still hold this item; wait or cancel-batch it"
                return RequeueCandidate(item=item, target=None, reason=reason)
        if item.windows and item.duration_seconds is not None and item.asset_id in ready_assets:
            return RequeueCandidate(item=item, target="queued", reason=f"asset {item.asset_id} is ready")
        if item.profile_name is None or item.upload_method is None:
            code = item.failure.code if item.failure else "unknown"
            return RequeueCandidate(item=item, target=None, reason=f"refused at ingest ({code}): upload it again")
        why = "no asset" if item.asset_id is None else f"asset {item.asset_id} is not ready at TwelveLabs"
        return RequeueCandidate(item=item, target="registered", reason=f"{why}: ingest creates a new one")

    def requeue(
        self, candidates: Sequence[RequeueCandidate], *, reset_attempts: bool, progress: Callable[[int], None] | None
    ) -> RequeueReport:
        report = RequeueReport()
        now = self._clock.now()
        resend: list[ItemRecord] = []
        note = f"requeued by an operator at {now.isoformat()}" + (" (attempts reset)" if reset_attempts else "")
        for done, candidate in enumerate(candidates, start=1):
            item = candidate.item
            if candidate.target is None:
                report.skipped += 1
            elif candidate.target == "queued":
                new = item.reopen_queued(note, now=now, reset_attempts=reset_attempts)
                stored = self._writer.reopen(item, new)
                report.requeued += stored is not None
                report.lost_races += stored is None
            else:
                if self._uploads is None:
                    raise OperationError("the ingest queue is unknown: pass --stack or --ingest-queue-url")
                new = item.reopen_registered(note, now=now, reset_attempts=reset_attempts)
                stored = self._writer.reopen(item, new)
                if stored is None:
                    report.lost_races += 1
                else:
                    resend.append(stored)
            if progress is not None:
                progress(done)
        if resend:
            # After the items are registered: ingest, finding them so, creates their assets (sent first, it
            # could find them still failed and do nothing).
            assert self._uploads is not None
            report.reregistered += self._uploads.send([self._event(item) for item in resend])
        return report

    def _event(self, item: ItemRecord, *, pinned: str | None = None) -> dict[str, object]:
        return object_created_event(
            bucket=item.bucket,
            key=item.key,
            version_id=item.version_id,
            size_bytes=item.size_bytes,
            etag=item.etag,
            account=self._account,
            region=self._region,
            now=self._clock.now(),
            pinned_profile=pinned if pinned is not None else item.result_profile,
            uploaded_at=item.uploaded_at,
        )

    # --- cancel a batch -------------------------------------------------------------------------------------

    def cancel_at_twelvelabs(
        self, batch_id: str, *, wait_seconds: float, sleep: Callable[[float], None]
    ) -> tuple[str, bool]:
        """Step 1 of ``cancel-batch`` (the operator's side): cancel the batch at TwelveLabs unless it is canceling
        or ended already, then wait up to ``wait_seconds`` for it to end. Returns (its status, whether a cancel was
        sent). Nothing is written here: the batch checker function settles the items (``settle_canceled``)."""
        if self._batches.get(batch_id) is None:
            raise OperationError(f"no batch {batch_id} recorded by this pipeline")
        api = self._require_api()
        sent = False
        try:
            status = api.retrieve_batch(batch_id).status
        except NotFoundError as error:
            raise OperationError(f"TwelveLabs no longer knows batch {batch_id}; the sweeper settles it") from error
        if status in ACTIVE_BATCH_STATUSES and status != "canceling":
            try:
                status = api.cancel_batch(batch_id).status
                sent = True
            except ConflictError:
                status = api.retrieve_batch(batch_id).status  # it ended meanwhile
        deadline = self._clock.now() + timedelta(seconds=wait_seconds)
        while status in ACTIVE_BATCH_STATUSES and self._clock.now() < deadline:
            sleep(min(5.0, max((deadline - self._clock.now()).total_seconds(), 0.0)))
            status = api.retrieve_batch(batch_id).status
        return status, sent

    def settle_canceled(
        self,
        batch_id: str,
        *,
        disposition: Disposition,
        fail_unfinished: bool,
        checker: Callable[[RequeuePolicy], BatchCheckService],
    ) -> CancelSettlement:
        """Step 2, run by the batch checker function (it may write results, publish events and drop schedules):
        the batch checker settles the batch's items under ``OperatorCancelPolicy`` (ready ones done, canceled ones
        requeued or failed); with ``fail_unfinished`` (``--fail`` after the wait) the items still submitted to it
        are failed too, their results not wanted. With ``requeue`` those stay submitted, and the scheduled checker
        requeues them when they end, never earlier: a request still running must not be submitted a second time."""
        policy = OperatorCancelPolicy(max_attempts=self._settings.max_attempts, fail_canceled=disposition == "fail")
        summary = checker(policy).check(batch_id)
        settled = CancelSettlement(
            batch_id=batch_id,
            items_succeeded=summary.items_succeeded,
            items_requeued=summary.items_requeued,
            items_failed=summary.items_failed,
        )
        record = self._batches.get(batch_id)
        if record is None:
            return settled
        still = [i for i in self._items.get_many(record.item_ids).values() if _submitted_to(i, batch_id)]
        if disposition == "fail" and fail_unfinished:
            failure = FailureReason(code="canceled_by_operator", message=f"an operator canceled batch {batch_id}")
            settled.items_failed += sum(self._writer.fail(item, failure) is not None for item in still)
            still = [i for i in self._items.get_many([i.item_id for i in still]).values() if _submitted_to(i, batch_id)]
        settled.items_left = len(still)
        return settled

    def _require_api(self) -> TwelveLabsApi:
        if self._api is None:
            raise OperationError("the TwelveLabs API key is unknown: pass --stack or --secret")
        return self._api

    # --- reprocess and backfill -----------------------------------------------------------------------------

    def latest_versions(self, bucket: str, prefix: str, *, all_versions: bool = False) -> Iterator[ListedVersion]:
        """Objects under ``prefix`` as uploads: the latest version of each key (every version with
        ``all_versions``), skipping delete markers (and what they hide), folder markers and the results prefix."""
        if self._lister is None:
            raise OperationError("cannot list the bucket here")
        hidden: set[str] = set()
        for listed in self._lister.iter_versions(bucket, prefix):
            if listed.key.startswith(self._settings.results_prefix) or listed.key.endswith("/"):
                continue
            if listed.delete_marker:
                if listed.is_latest:
                    hidden.add(listed.key)
                continue
            if listed.key in hidden or (not listed.is_latest and not all_versions):
                continue
            yield listed

    def upload_event(self, bucket: str, listed: ListedVersion, *, pinned: str | None = None) -> dict[str, object]:
        return object_created_event(
            bucket=bucket,
            key=listed.key,
            version_id=listed.version_id,
            size_bytes=listed.size_bytes,
            etag=listed.etag,
            account=self._account,
            region=self._region,
            now=self._clock.now(),
            pinned_profile=pinned,
            uploaded_at=listed.last_modified,
        )

    def reprocess_plan(
        self, bucket: str, versions: Iterable[ListedVersion], profile: Profile
    ) -> Iterator[tuple[ListedVersion, str]]:
        """(version, what happens) for each version: ``send`` when its item is done and no item of it with this
        profile exists yet, else why not (not analysed yet, failed, reprocessed already)."""
        for chunk in _chunks(iter(versions), 100):
            plain = {item_id_for(bucket, v.key, v.version_id): v for v in chunk}
            pinned = {item_id_for(bucket, v.key, v.version_id, profile.name): v for v in chunk}
            found = self._items.get_many([*plain, *pinned])
            by_version = {id(v): pid for pid, v in pinned.items()}
            for item_id, listed in plain.items():
                original = found.get(item_id)
                again = found.get(by_version[id(listed)])
                if again is not None:
                    yield listed, f"reprocessed with {profile.name} already ({again.state.value})"
                elif original is None:
                    yield listed, "no item: never ingested (backfill it first)"
                elif original.state is not ItemState.DONE:
                    yield listed, f"not done ({original.state.value})"
                else:
                    yield listed, "send"

    def send(self, events: Sequence[dict[str, object]]) -> int:
        if self._uploads is None:
            raise OperationError("the ingest queue is unknown: pass --stack or --ingest-queue-url")
        return self._uploads.send(events)


def operations_of(runtime: Runtime) -> Operations:
    """The operations over a function's runtime (the batch checker settles an operator's cancel with it)."""
    return Operations(
        settings=runtime.settings,
        clock=runtime.clock,
        items=runtime.items,
        batches=runtime.batches,
        ledger=runtime.ledger,
        writer=runtime.item_writer(),
        twelvelabs=runtime.twelvelabs,
    )


def _submitted_to(item: ItemRecord, batch_id: str) -> bool:
    return item.state is ItemState.SUBMITTED and item.batch_id == batch_id


def _chunks(items: Iterator[_T], size: int) -> Iterator[list[_T]]:
    while chunk := list(islice(items, size)):
        yield chunk


__all__ = [
    "CancelSettlement",
    "FailedFilter",
    "OperationError",
    "Operations",
    "OperatorCancel",
    "OperatorCancelPolicy",
    "RequeueCandidate",
    "RequeueReport",
    "operations_of",
]
