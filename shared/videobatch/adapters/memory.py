"""In-memory twins of every AWS adapter, for service tests and the fast simulation.

They keep the rules the real adapters keep, because ``tests/contract`` runs one suite against both and fails on any
difference: conditional saves on the version read (plus the state, claim and batch pinned by the item store), the
lifecycle check on every item save, work queues ordered by their fixed-width sort keys with ``until`` bounds and
pagination, the sparse indexes (terminal items and closed records leave them), TTL fields, leases that expire,
write-once objects with versions, S3's 1,024-byte key limit, and one-time schedules that conflict on a second
create. Reads return copies (records are frozen models), so no caller can change stored state behind a save.

What they do not model: eventual consistency of the indexes (every read is current, which only ever makes races
rarer, never different in kind) and capacity or throttling.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

from videobatch.adapters.s3 import check_s3_key
from videobatch.domain.control import PipelineControl
from videobatch.domain.items import check_operator_transition, check_save
from videobatch.domain.outcomes import DayTotals, Outcome, OutcomeState, by_day
from videobatch.domain.records import (
    BatchProgress,
    BatchRecord,
    BatchState,
    ClaimRecord,
    ClaimState,
    ItemRecord,
    sort_stamp,
)
from videobatch.errors import RejectedUploadError, StaleStateError
from videobatch.services.ports import LeaseInfo, ListedVersion, ObjectInfo, ObjectRef

if TYPE_CHECKING:
    from videobatch.domain.events import OutgoingEvent

RETENTION_SECONDS: Final = 90 * 24 * 3600


def ttl_epoch(moment: datetime) -> int:
    return int((moment + timedelta(seconds=RETENTION_SECONDS)).timestamp())


class MemoryItemStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, ItemRecord] = {}
        # The sparse index: queue -> (sort key, item id) kept sorted on every write, so a queue read costs its own
        # members, not every item ever stored (a week of terminal items), and no sort: the flusher and the idle
        # check read a page of a queue of 10,000+ waiting items on every step of a long simulation.
        self._queues: dict[str, list[tuple[str, str]]] = {}
        self._entries: dict[str, tuple[str, str]] = {}  # item id -> (queue, sort key)

    def _store(self, item: ItemRecord) -> None:
        """Keep ``item`` and its index entry (callers hold the lock)."""
        old = self._entries.pop(item.item_id, None)
        if old is not None:
            members = self._queues[old[0]]
            at = bisect.bisect_left(members, (old[1], item.item_id))
            del members[at]
        new = item.queue_key()
        if new is not None:
            bisect.insort(self._queues.setdefault(new[0], []), (new[1], item.item_id))
            self._entries[item.item_id] = new
        self._items[item.item_id] = item

    def create(self, item: ItemRecord) -> tuple[ItemRecord, bool]:
        with self._lock:
            existing = self._items.get(item.item_id)
            if existing is not None:
                return existing, False
            stored = item.model_copy(update={"version": 1})
            self._store(stored)
            return stored, True

    def overwrite(self, item: ItemRecord) -> None:
        """The record as given, no condition and no lifecycle check: what a hand edit of the table does (test
        surgery stages a crash's aftermath with it)."""
        with self._lock:
            self._store(item)

    def get(self, item_id: str) -> ItemRecord | None:
        with self._lock:
            return self._items.get(item_id)

    def get_many(self, item_ids: Sequence[str]) -> dict[str, ItemRecord]:
        with self._lock:
            return {item_id: self._items[item_id] for item_id in dict.fromkeys(item_ids) if item_id in self._items}

    def save(self, new: ItemRecord, expected: ItemRecord) -> ItemRecord:
        check_save(expected.state, new.state)
        with self._lock:
            current = self._items.get(expected.item_id)
            if (
                current is None
                or current.version != expected.version
                or current.state is not expected.state
                or (expected.claim_id is not None and current.claim_id != expected.claim_id)
                or (expected.batch_id is not None and current.batch_id != expected.batch_id)
            ):
                raise StaleStateError(
                    f"item {expected.item_id} changed since version {expected.version} ({expected.state.value})"
                )
            stored = new.model_copy(update={"version": expected.version + 1})
            self._store(stored)
            return stored

    def reopen(self, new: ItemRecord, expected: ItemRecord) -> ItemRecord:
        check_operator_transition(expected.state, new.state)
        with self._lock:
            current = self._items.get(expected.item_id)
            if current is None or current.version != expected.version or current.state is not expected.state:
                raise StaleStateError(
                    f"item {expected.item_id} changed since version {expected.version} ({expected.state.value})"
                )
            stored = new.model_copy(update={"version": expected.version + 1})
            self._store(stored)
            return stored

    def iter_queue(self, queue: str, *, until: datetime | None = None, page_size: int = 100) -> Iterator[ItemRecord]:
        bound = (f"{sort_stamp(until)}#~", "") if until is not None else None
        size = max(page_size, 1)
        after: tuple[str, str] | None = None
        # Page by page from the live index, each page starting after the last key returned: a Query with
        # ExclusiveStartKey, so an entry that moves while the pages are read is seen where it is by then.
        while True:
            with self._lock:
                members = self._queues.get(queue, [])
                start = 0 if after is None else bisect.bisect_right(members, after)
                end = len(members) if bound is None else bisect.bisect_right(members, bound)
                keys = members[start : min(start + size, end)]
                page = [self._items[item_id] for _, item_id in keys]
            yield from page
            if len(keys) < size:
                return
            after = keys[-1]

    def ttl_of(self, item_id: str) -> int | None:
        """The TTL the table would carry (terminal items only), for the contract suite."""
        item = self.get(item_id)
        if item is None or not item.terminal:
            return None
        return ttl_epoch(item.finished_at or item.updated_at)

    def all(self) -> list[ItemRecord]:
        with self._lock:
            return list(self._items.values())


class MemoryBatchStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[str, BatchRecord] = {}
        self._progress: dict[str, BatchProgress] = {}

    def create(self, batch: BatchRecord, progress: BatchProgress) -> BatchRecord:
        with self._lock:
            existing = self._batches.get(batch.batch_id)
            if existing is not None and existing.claim_id != batch.claim_id:
                raise StaleStateError(f"batch {batch.batch_id} is recorded already for another claim")
            stored = existing or batch.model_copy(update={"version": 1})
            self._batches[batch.batch_id] = stored
            self._progress.setdefault(batch.batch_id, progress.model_copy(update={"version": 1}))
            return stored

    def get(self, batch_id: str) -> BatchRecord | None:
        with self._lock:
            return self._batches.get(batch_id)

    def get_progress(self, batch_id: str) -> BatchProgress | None:
        with self._lock:
            return self._progress.get(batch_id)

    def save_progress(self, new: BatchProgress, expected: BatchProgress) -> BatchProgress:
        with self._lock:
            current = self._progress.get(expected.batch_id)
            if current is None or current.version != expected.version or current.state is not expected.state:
                raise StaleStateError(f"batch {expected.batch_id} progress changed since version {expected.version}")
            stored = new.model_copy(update={"version": expected.version + 1})
            self._progress[expected.batch_id] = stored
            return stored

    def iter_open(self, *, page_size: int = 100) -> Iterator[BatchProgress]:
        with self._lock:
            open_ = [p for p in self._progress.values() if p.state is BatchState.OPEN]
        yield from sorted(open_, key=lambda p: f"{sort_stamp(p.created_at)}#{p.batch_id}")


class MemoryClaimStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[str, ClaimRecord] = {}

    def create(self, claim: ClaimRecord) -> ClaimRecord:
        with self._lock:
            if claim.claim_id in self._claims:
                raise StaleStateError(f"claim {claim.claim_id} exists already")
            stored = claim.model_copy(update={"version": 1})
            self._claims[claim.claim_id] = stored
            return stored

    def get(self, claim_id: str) -> ClaimRecord | None:
        with self._lock:
            return self._claims.get(claim_id)

    def save(self, new: ClaimRecord, expected: ClaimRecord) -> ClaimRecord:
        with self._lock:
            current = self._claims.get(expected.claim_id)
            if current is None or current.version != expected.version or current.state is not expected.state:
                raise StaleStateError(f"claim {expected.claim_id} changed since version {expected.version}")
            stored = new.model_copy(update={"version": expected.version + 1})
            self._claims[expected.claim_id] = stored
            return stored

    def iter_pending(self, *, page_size: int = 100) -> Iterator[ClaimRecord]:
        with self._lock:
            pending = [c for c in self._claims.values() if c.state is ClaimState.PENDING]
        yield from sorted(pending, key=lambda c: f"{sort_stamp(c.created_at)}#{c.claim_id}")


class MemoryLeaseStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, LeaseInfo] = {}

    def acquire(self, name: str, owner: str, *, now: datetime, duration_seconds: float) -> bool:
        expires_at = now + timedelta(seconds=duration_seconds)
        with self._lock:
            held = self._leases.get(name)
            # Millisecond precision, as the table stores it.
            if held is not None and held.owner != owner and _epoch_ms(held.expires_at) > _epoch_ms(now):
                return False
            self._leases[name] = LeaseInfo(name=name, owner=owner, expires_at=_ms(expires_at))
            return True

    def release(self, name: str, owner: str) -> bool:
        with self._lock:
            held = self._leases.get(name)
            if held is None or held.owner != owner:
                return False
            del self._leases[name]
            return True

    def inspect(self, name: str) -> LeaseInfo | None:
        with self._lock:
            return self._leases.get(name)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ms(moment: datetime) -> datetime:
    return datetime.fromtimestamp(_epoch_ms(moment) / 1000, tz=UTC)


@dataclass
class StoredObject:
    body: bytes
    content_type: str | None
    version_id: str | None
    etag: str = field(init=False)

    def __post_init__(self) -> None:
        self.etag = hashlib.md5(self.body, usedforsecurity=False).hexdigest()


class MemoryObjectStore:
    """Buckets of (optionally) versioned objects; ``put`` stands for an uploader (it is not part of the port)."""

    PRESIGNED_HOST: Final = "memory-s3.invalid"

    def __init__(self, *, versioned: bool = True) -> None:
        self._lock = threading.Lock()
        self._versioned = versioned
        self._objects: dict[tuple[str, str], list[StoredObject]] = {}
        self._counter = 0

    def put(self, bucket: str, key: str, body: bytes, content_type: str | None = None) -> StoredObject:
        check_s3_key(key)
        with self._lock:
            self._counter += 1
            version = f"v{self._counter:08d}" if self._versioned else None
            stored = StoredObject(body=body, content_type=content_type, version_id=version)
            history = self._objects.setdefault((bucket, key), [])
            if self._versioned:
                history.append(stored)
            else:
                history[:] = [stored]
            return stored

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self._objects.pop((bucket, key), None)

    def enable_versioning(self) -> None:
        """As PutBucketVersioning Enabled: objects put from now on get version ids and keep their history."""
        with self._lock:
            self._versioned = True

    def _find(self, ref: ObjectRef) -> StoredObject | None:
        with self._lock:
            history = self._objects.get((ref.bucket, ref.key), [])
            if not history:
                return None
            if ref.version_id in (None, "", "null"):
                return history[-1]
            return next((o for o in history if o.version_id == ref.version_id), None)

    def object(self, ref: ObjectRef) -> StoredObject | None:
        """The stored object (tests and the in-process emulator's URL fetch)."""
        return self._find(ref)

    def head(self, ref: ObjectRef) -> ObjectInfo:
        found = self._find(ref)
        if found is None:
            raise RejectedUploadError(
                "object_missing", f"s3://{ref.bucket}/{ref.key} was deleted before it could be analysed"
            )
        return ObjectInfo(size_bytes=len(found.body), content_type=found.content_type, etag=found.etag)

    def read_range(self, ref: ObjectRef, start_byte: int, length_bytes: int) -> bytes:
        if length_bytes <= 0:
            return b""
        found = self._require(ref)
        return found.body[start_byte : start_byte + length_bytes]

    def iter_chunks(self, ref: ObjectRef, chunk_size_bytes: int) -> Iterator[bytes]:
        body = self._require(ref).body
        for start in range(0, len(body), chunk_size_bytes):
            yield body[start : start + chunk_size_bytes]

    def presigned_get_url(self, ref: ObjectRef, expires_seconds: int) -> str:
        query = {"X-Amz-Expires": str(expires_seconds)}
        if ref.version_id:
            query["versionId"] = ref.version_id
        return f"https://{self.PRESIGNED_HOST}/{quote(ref.bucket)}/{quote(ref.key)}?{urlencode(query)}"

    def write_once(self, bucket: str, key: str, body: bytes, content_type: str) -> bool:
        check_s3_key(key)
        with self._lock:
            history = self._objects.get((bucket, key))
            if history:
                if history[-1].body != body:
                    raise StaleStateError(f"s3://{bucket}/{key} holds a different result already")
                return False
            self._counter += 1
            version = f"v{self._counter:08d}" if self._versioned else None
            self._objects[(bucket, key)] = [StoredObject(body=body, content_type=content_type, version_id=version)]
            return True

    def read(self, bucket: str, key: str) -> bytes | None:
        found = self._find(ObjectRef(bucket=bucket, key=key))
        return None if found is None else found.body

    def overwrite(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        check_s3_key(key)
        self.put(bucket, key, body, content_type)

    def iter_versions(self, bucket: str, prefix: str) -> Iterator[ListedVersion]:
        with self._lock:
            keys = sorted(key for (b, key) in self._objects if b == bucket and key.startswith(prefix))
            histories = {key: list(self._objects[(bucket, key)]) for key in keys}
        for key in keys:
            history = histories[key]
            for index, stored in enumerate(reversed(history)):
                yield ListedVersion(
                    key=key,
                    version_id=stored.version_id,
                    is_latest=index == 0,
                    size_bytes=len(stored.body),
                    etag=stored.etag,
                )

    def _require(self, ref: ObjectRef) -> StoredObject:
        found = self._find(ref)
        if found is None:
            raise RejectedUploadError("object_missing", f"s3://{ref.bucket}/{ref.key} no longer exists")
        return found


class MemoryEventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.published: list[OutgoingEvent] = []

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        with self._lock:
            self.published.extend(events)

    def drain(self) -> list[OutgoingEvent]:
        with self._lock:
            drained, self.published = self.published, []
            return drained


@dataclass(frozen=True)
class OneTimeCheck:
    batch_id: str
    at: datetime


class MemoryScheduler:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.schedules: dict[str, OneTimeCheck] = {}

    def schedule_batch_check(self, batch_id: str, at: datetime) -> bool:
        with self._lock:
            if batch_id in self.schedules:
                return False
            # Scheduler's at() has whole-second resolution.
            self.schedules[batch_id] = OneTimeCheck(batch_id, at.astimezone(UTC).replace(microsecond=0))
            return True

    def cancel_batch_check(self, batch_id: str) -> bool:
        with self._lock:
            return self.schedules.pop(batch_id, None) is not None

    def due(self, now: datetime) -> list[OneTimeCheck]:
        """Checks whose time has come, removed as Scheduler deletes a completed one-time schedule."""
        with self._lock:
            ready = [check for check in self.schedules.values() if check.at <= now]
            for check in ready:
                del self.schedules[check.batch_id]
            return sorted(ready, key=lambda check: check.at)


class MemoryMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, list[float]] = {}

    def add_metric(self, name: str, unit: str, value: float) -> None:
        with self._lock:
            self.values.setdefault(name, []).append(value)

    def total(self, name: str) -> float:
        with self._lock:
            return sum(self.values.get(name, []))


class MemoryReplayGuard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, datetime] = {}

    def first_seen(self, signature: str, *, now: datetime, remember_seconds: float) -> bool:
        with self._lock:
            self._seen = {s: until for s, until in self._seen.items() if until > now}  # what TTL would remove
            if signature in self._seen:
                return False
            self._seen[signature] = now + timedelta(seconds=remember_seconds)
            return True


class MemoryInvoker:
    """Records the asynchronous invocations asked for; a wiring (the simulation) delivers them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def invoke_async(self, function: str, payload: Mapping[str, Any]) -> None:
        with self._lock:
            self.requests.append((function, dict(payload)))

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            drained, self.requests = self.requests, []
            return drained


class MemoryOutcomeLedger:
    """The ledger's twin (adapters.ledger): day totals added per write, the journal newest first per day."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._days: dict[date, DayTotals] = {}
        self._journal: dict[tuple[str, date], dict[str, Outcome]] = {}

    def record(self, outcomes: Sequence[Outcome]) -> None:
        with self._lock:
            for outcome in outcomes:
                self._journal.setdefault((outcome.state, outcome.day), {})[outcome.sort_key] = outcome
            for day, change in by_day(outcomes).items():
                self._days[day] = _added(self._days.get(day, DayTotals(day=day)), change, sign=1)

    def retract(self, outcome: Outcome) -> None:
        change = DayTotals.of_outcomes(outcome.day, [outcome]).model_copy(update={"done_slots": {}, "failed_slots": {}})
        with self._lock:
            self._days[outcome.day] = _added(self._days.get(outcome.day, DayTotals(day=outcome.day)), change, sign=-1)
            self._journal.get((outcome.state, outcome.day), {}).pop(outcome.sort_key, None)

    def days(self, days: Sequence[date]) -> list[DayTotals]:
        with self._lock:
            return [self._days.get(day, DayTotals(day=day)) for day in days]

    def iter_outcomes(
        self, state: OutcomeState, day: date, *, before: str | None = None, page_size: int = 100
    ) -> Iterator[Outcome]:
        with self._lock:
            entries = sorted(self._journal.get((state, day), {}).items(), reverse=True)
        yield from (outcome for key, outcome in entries if before is None or key < before)


def _added(total: DayTotals, change: DayTotals, *, sign: int) -> DayTotals:
    counters = ("done", "failed", "failed_user", "failed_pipeline", "windows", "input_tokens", "output_tokens")
    update: dict[str, object] = {name: getattr(total, name) + sign * getattr(change, name) for name in counters}
    update["content_seconds"] = total.content_seconds + sign * change.content_seconds
    for name in ("done_slots", "failed_slots"):
        slots = dict(getattr(total, name))
        for slot, count in getattr(change, name).items():
            slots[slot] = slots.get(slot, 0) + sign * count
        update[name] = {slot: count for slot, count in slots.items() if count}
    return total.model_copy(update=update)


class MemoryControlStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control = PipelineControl()

    def load(self) -> PipelineControl:
        with self._lock:
            return self._control

    def save(self, new: PipelineControl, expected: PipelineControl) -> PipelineControl:
        with self._lock:
            if self._control.version != expected.version:
                raise StaleStateError(f"the control record changed since version {expected.version}")
            self._control = new.model_copy(update={"version": expected.version + 1})
            return self._control


class MemoryUploadQueue:
    """The ingest queue's twin: what the ops CLI sent, in order (the JSON bodies SQS would carry)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: list[str] = []

    def send(self, events: Sequence[Mapping[str, Any]]) -> int:
        with self._lock:
            self.sent.extend(json.dumps(event) for event in events)
        return len(events)
