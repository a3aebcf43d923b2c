"""The simulation's invariant checker: pure bookkeeping over what the run observed, able to fail.

It is fed three streams and keeps every violation as a key in a set (so re-checking the same history never
counts twice):

- ``record_upload``: every object put into the video bucket (the item it must become, and when);
- ``record_write``: every accepted item write (create or conditional save), as the store reported it;
- ``observe_batches``: the TwelveLabs side (the emulator's batches with their items' custom_ids and statuses,
  when each batch became active and when it stopped being active).

Invariants and their bounds:

lost
    an upload with no item ``unitemised_after`` after it was put (ingest retries for 5 x 360 s before the
    dead-letter queue); an item not terminal and not ``queued`` whose state has not changed for ``stuck_after``
    (default 3 days: the longest legitimate stay is a batch's 24 h expiry + the expiry check); a ``queued`` item
    that has waited ``queued_idle_after`` (default 6 h) of *stall time*: time during which a slot was free at the
    API (fewer than ``max_active`` batches active) and no batch had been created for ``stall_grace`` (default
    1 h: a flusher tick, a retry's backoff of at most 1 h, a create call refused and retried). Waiting behind a
    backlog is overload, not a stall: under the ``expiry`` profile slots stay held for a day, and under
    ``crashes`` a flush of 1,000 claims rarely ends uncrashed (its claim is released and retried), so a queue of
    10,000 can wait days while smaller batches go out all the time; a wall-clock bound reports that as lost.
    A flusher that stops leaves slots free and creates nothing, and is caught within hours. (Which queued item
    goes first is the queue's order, held by tests/contract, not by this bound.)
    A ``failed`` item without a failure code and message is lost too (counted here, reported by kind).
double_submitted
    an (item, window) pair, any attempt, live in two batches at the same moment; or an item whose windows all
    reached ``ready`` in two different submissions (analysed twice). A request is live from its batch's creation
    until it ends (``ready``, ``failed`` or ``canceled``), or until its batch stops being active: a request that
    failed retryably inside a batch that still runs others is over, and its retry in a new batch is the policy
    working, not a duplicate.
limit_violations
    more active batches at a batch's creation than ``max_active`` (Settings.max_active_batches -
    reserved_batch_slots); a batch with more requests than ``max_items``; a batch with more content seconds
    (window lengths) than ``max_content_seconds``.
stale_overwrites
    an accepted write whose expected version is not the version last written, whose new version is not that
    + 1, or whose transition ``domain.items.ALLOWED_TRANSITIONS`` does not allow from the state last written
    (same-state rewrites of a non-terminal item are allowed: notes, claims left pending); a create over an
    existing item; a stored item whose version differs from the last observed write (a write nobody saw).
hostile_harm
    a hostile upload (``simulate.hostile``) that settled other than expected (a wrong state, or a failure code that
    is not the true reason), or any write of an item that must never exist (an event naming another bucket).
    That no *other* video is delayed by them is checked by running a seed with and without them
    (``tests/simulation``), since it needs the run without them to compare with.
"""

from __future__ import annotations

import heapq
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from videobatch.domain.items import ALLOWED_TRANSITIONS, TERMINAL_STATES, ItemState, parse_custom_id
from videobatch.errors import InvalidInputError

ACTIVE_STATUSES = frozenset({"pending", "processing", "canceling"})
DEFAULT_STUCK_AFTER = timedelta(days=3)
DEFAULT_UNITEMISED_AFTER = timedelta(hours=2)
DEFAULT_QUEUED_IDLE_AFTER = timedelta(hours=6)
DEFAULT_STALL_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Limits:
    max_active: int
    max_items: int
    max_content_seconds: float


@dataclass(frozen=True)
class ItemWrite:
    """One accepted write of an item record (``expected_*`` is None for a create)."""

    item_id: str
    kind: Literal["create", "save"]
    expected_version: int | None
    expected_state: ItemState | None
    new_version: int
    new_state: ItemState
    at: datetime
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class ObservedRequest:
    custom_id: str | None
    status: str
    content_seconds: float
    ended_at: datetime | None = None  # when it became ready / failed / canceled


@dataclass(frozen=True)
class ObservedBatch:
    """A batch as the API shows it: active from ``created_at`` until ``ended_at`` (None: still active)."""

    batch_id: str
    created_at: datetime
    ended_at: datetime | None
    requests: tuple[ObservedRequest, ...]


@dataclass
class _Shadow:
    version: int
    state: ItemState
    changed_at: datetime
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass
class Violation:
    kind: str
    subject: str
    detail: str


@dataclass
class InvariantChecker:
    limits: Limits
    stuck_after: timedelta = DEFAULT_STUCK_AFTER
    unitemised_after: timedelta = DEFAULT_UNITEMISED_AFTER
    queued_idle_after: timedelta = DEFAULT_QUEUED_IDLE_AFTER
    stall_grace: timedelta = DEFAULT_STALL_GRACE
    _uploads: dict[str, datetime] = field(default_factory=dict)
    _items: dict[str, _Shadow] = field(default_factory=dict)
    _batches: dict[str, ObservedBatch] = field(default_factory=dict)
    # (item_id, window) -> {batch id: the request's live interval} (any attempt)
    _by_window: dict[tuple[str, int], dict[str, _Interval]] = field(default_factory=lambda: defaultdict(dict))
    _item_batches: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _violations: dict[tuple[str, str], Violation] = field(default_factory=dict)
    # What the liveness bounds look at, kept per write so a check costs what expires, not the open work (a
    # backlog of 30,000 queued items is checked at every step of a soak): uploads not yet an item, and a heap
    # per bound of (when the item entered its state, on that bound's clock) with stale entries skipped.
    _unitemised: dict[str, datetime] = field(default_factory=dict)
    _open: set[str] = field(default_factory=set)
    _stuck_heap: list[tuple[datetime, str]] = field(default_factory=list)
    _idle_heap: list[tuple[timedelta, datetime, str]] = field(default_factory=list)
    # The stall clock: time so far during which a slot was free and no batch had been created for stall_grace.
    _active_batches: set[str] = field(default_factory=set)
    _last_created: datetime | None = None
    _stall_time: timedelta = timedelta(0)
    _clock_at: datetime | None = None
    _slot_was_free: bool = True
    writes: int = 0
    _expected: dict[str, tuple[ItemState, str | None, frozenset[str]]] = field(default_factory=dict)
    _forbidden: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- inputs ---------------------------------------------------------------------------------------------

    def record_upload(self, item_id: str, at: datetime) -> None:
        with self._lock:
            self._uploads.setdefault(item_id, at)
            if item_id not in self._items:
                self._unitemised.setdefault(item_id, self._uploads[item_id])

    def expect(
        self, item_id: str, state: ItemState, code: str | None = None, *, tolerated: frozenset[str] = frozenset()
    ) -> None:
        """``item_id`` must settle in ``state`` (failed with ``code``, when given), or fail with one of ``tolerated``:
        the codes the run's own faults inject into any item (then that is the true reason)."""
        with self._lock:
            self._expected[item_id] = (state, code, tolerated)

    def forbid(self, item_id: str) -> None:
        """``item_id`` must never be written."""
        with self._lock:
            self._forbidden.add(item_id)

    def check_expected(self) -> None:
        """Every settled expected item as expected (unsettled ones are counted as pending, or lost)."""
        with self._lock:
            for item_id, (state, code, tolerated) in self._expected.items():
                shadow = self._items.get(item_id)
                if shadow is None or shadow.state not in TERMINAL_STATES or shadow.failure_code in tolerated:
                    continue
                if shadow.state is not state or (code is not None and shadow.failure_code != code):
                    found = f"{shadow.state.value} {shadow.failure_code or ''}: {shadow.failure_message or ''}"
                    self._flag("hostile_harm", item_id, f"expected {state.value} {code or ''}, found {found}")

    def record_write(self, write: ItemWrite) -> None:
        with self._lock:
            self.writes += 1
            self._check_write(write)

    def observe_batches(self, batches: Iterable[ObservedBatch]) -> None:
        with self._lock:
            for batch in batches:
                known = self._batches.get(batch.batch_id)
                if known == batch:
                    continue
                self._batches[batch.batch_id] = batch
                if self._last_created is None or batch.created_at > self._last_created:
                    self._last_created = batch.created_at
                if batch.ended_at is None:
                    self._active_batches.add(batch.batch_id)
                else:
                    self._active_batches.discard(batch.batch_id)
                if known is None:
                    self._check_new_batch(batch)
                self._check_batch_windows(batch)

    def check_progress(self, now: datetime) -> None:
        """The liveness bounds (call after every step, and at the end)."""
        with self._lock:
            self._advance_stall_clock(now)
            for item_id, uploaded_at in self._unitemised.items():
                if now - uploaded_at > self.unitemised_after:
                    self._flag("lost", item_id, f"no item {now - uploaded_at} after the upload")
            while self._stuck_heap and now - self._stuck_heap[0][0] > self.stuck_after:
                changed_at, item_id = heapq.heappop(self._stuck_heap)
                if self._still(item_id, changed_at, queued=False):
                    state = self._items[item_id].state.value
                    self._flag("lost", item_id, f"{state} unchanged since {changed_at.isoformat()}")
            while self._idle_heap and self._stall_time - self._idle_heap[0][0] > self.queued_idle_after:
                stall_at_queue, changed_at, item_id = heapq.heappop(self._idle_heap)
                if self._still(item_id, changed_at, queued=True):
                    waited = self._stall_time - stall_at_queue
                    detail = f"queued since {changed_at.isoformat()}, {waited} of it stalled (a slot free, no batch)"
                    self._flag("lost", item_id, detail)

    def quiet(self) -> bool:
        """Every upload is an item and every item is terminal: nothing moves until the next upload."""
        with self._lock:
            return not self._unitemised and not self._open

    def verify_stored(self, stored: Iterable[tuple[str, int, ItemState]]) -> None:
        """Compare the table's items with the writes observed: a difference is a write nobody saw."""
        with self._lock:
            for item_id, version, state in stored:
                shadow = self._items.get(item_id)
                if shadow is None or shadow.version != version or shadow.state is not state:
                    seen = "nothing" if shadow is None else f"v{shadow.version} {shadow.state.value}"
                    self._flag("stale_overwrite", item_id, f"stored v{version} {state.value}, observed {seen}")

    # --- results --------------------------------------------------------------------------------------------

    def counts(self) -> Counter[str]:
        with self._lock:
            counted: Counter[str] = Counter(v.kind for v in self._violations.values())
            states = Counter(shadow.state for shadow in self._items.values())
        counted["done"] = states[ItemState.DONE]
        counted["failed"] = states[ItemState.FAILED]
        counted["pending"] = sum(n for state, n in states.items() if state not in TERMINAL_STATES)
        return counted

    @property
    def violations(self) -> list[Violation]:
        with self._lock:
            return list(self._violations.values())

    @property
    def item_states(self) -> dict[str, ItemState]:
        with self._lock:
            return {item_id: shadow.state for item_id, shadow in self._items.items()}

    @property
    def settled_at(self) -> dict[str, tuple[ItemState, datetime]]:
        """Each terminal item's final state and when it got there."""
        with self._lock:
            return {
                item_id: (shadow.state, shadow.changed_at)
                for item_id, shadow in self._items.items()
                if shadow.state in TERMINAL_STATES
            }

    @property
    def uploads(self) -> dict[str, datetime]:
        with self._lock:
            return dict(self._uploads)

    @property
    def batches(self) -> dict[str, ObservedBatch]:
        with self._lock:
            return dict(self._batches)

    # --- checks ---------------------------------------------------------------------------------------------

    def _flag(self, kind: str, subject: str, detail: str) -> None:
        self._violations.setdefault((kind, subject), Violation(kind, subject, detail))

    def _advance_stall_clock(self, now: datetime) -> None:
        """Time since the last check is stalled if a slot was free at the last check (the flusher could act) and
        no batch had been created for ``stall_grace``."""
        if self._clock_at is not None and self._slot_was_free and now > self._clock_at:
            start = self._clock_at
            if self._last_created is not None:
                start = max(start, self._last_created + self.stall_grace)
            if now > start:
                self._stall_time += now - start
        self._clock_at = now if self._clock_at is None else max(self._clock_at, now)
        self._slot_was_free = len(self._active_batches) < self.limits.max_active

    def _still(self, item_id: str, changed_at: datetime, *, queued: bool) -> bool:
        """The heap entry is current: the item is still open, in the state it entered at ``changed_at``."""
        shadow = self._items[item_id]
        open_ = shadow.state not in TERMINAL_STATES
        return open_ and shadow.changed_at == changed_at and (shadow.state is ItemState.QUEUED) is queued

    def _watch(self, item_id: str, shadow: _Shadow) -> None:
        if shadow.state is ItemState.QUEUED:
            heapq.heappush(self._idle_heap, (self._stall_time, shadow.changed_at, item_id))
        elif shadow.state not in TERMINAL_STATES:
            heapq.heappush(self._stuck_heap, (shadow.changed_at, item_id))

    def _check_write(self, write: ItemWrite) -> None:
        shadow = self._items.get(write.item_id)
        subject = f"{write.item_id}@v{write.new_version}"
        if write.item_id in self._forbidden:
            self._flag("hostile_harm", write.item_id, f"an item that must not exist was written ({write.kind})")
        if write.kind == "create":
            if shadow is not None:
                self._flag("stale_overwrite", subject, f"created over stored v{shadow.version} {shadow.state.value}")
            elif write.new_version != 1:
                self._flag("stale_overwrite", subject, f"created with version {write.new_version}")
        elif shadow is None:
            self._flag("stale_overwrite", subject, "saved an item never created")
        else:
            if write.expected_version != shadow.version or write.new_version != shadow.version + 1:
                self._flag(
                    "stale_overwrite",
                    subject,
                    f"based on v{write.expected_version} while v{shadow.version} was stored; "
                    f"wrote v{write.new_version}",
                )
            same_state_ok = write.new_state is shadow.state and shadow.state not in TERMINAL_STATES
            if not same_state_ok and write.new_state not in ALLOWED_TRANSITIONS[shadow.state]:
                self._flag(
                    "stale_overwrite",
                    subject,
                    f"{shadow.state.value} -> {write.new_state.value} is not an allowed transition",
                )
        changed = shadow is None or shadow.state is not write.new_state
        self._unitemised.pop(write.item_id, None)
        if write.new_state in TERMINAL_STATES:
            self._open.discard(write.item_id)
        else:
            self._open.add(write.item_id)
        self._items[write.item_id] = _Shadow(
            version=write.new_version,
            state=write.new_state,
            changed_at=write.at if changed or shadow is None else shadow.changed_at,
            failure_code=write.failure_code,
            failure_message=write.failure_message,
        )
        if changed:
            self._watch(write.item_id, self._items[write.item_id])
        if write.new_state is ItemState.FAILED and not (write.failure_code and write.failure_message):
            self._flag("lost", write.item_id, "failed without a failure code and message")

    def _check_new_batch(self, batch: ObservedBatch) -> None:
        if len(batch.requests) > self.limits.max_items:
            self._flag("limit_violation", f"items:{batch.batch_id}", f"{len(batch.requests)} requests")
        content = sum(r.content_seconds for r in batch.requests)
        if content > self.limits.max_content_seconds:
            self._flag("limit_violation", f"content:{batch.batch_id}", f"{content / 3600:.1f} content hours")
        moment = batch.created_at
        active = [b for b in self._batches.values() if b.created_at <= moment and _active_at(b, moment)]
        if len(active) > self.limits.max_active:
            self._flag("limit_violation", f"active:{batch.batch_id}", f"{len(active)} active batches at {moment}")

    def _check_batch_windows(self, batch: ObservedBatch) -> None:
        for request in batch.requests:
            key = _window_key(request.custom_id)
            if key is None:
                continue
            holders = self._by_window[key]
            live = holders[batch.batch_id] = _live(batch, request)
            self._item_batches[key[0]].add(batch.batch_id)
            for other_id, other in holders.items():
                if other_id != batch.batch_id and _overlap(live, other):
                    first, second = sorted((batch.batch_id, other_id))
                    self._flag("double_submitted", f"{key[0]}-w{key[1]}", f"active in {first} and {second} at once")
        ready_submissions: dict[str, set[tuple[str, int]]] = defaultdict(set)
        for item_id, attempt, batch_id in self._fully_ready({batch.batch_id}):
            ready_submissions[item_id].add((batch_id, attempt))
        for item_id in ready_submissions:
            everywhere = {(b, a) for i, a, b in self._fully_ready(self._batches_of_item(item_id)) if i == item_id}
            if len(everywhere) > 1:
                self._flag("double_submitted", f"ready-twice:{item_id}", f"analysed in {sorted(everywhere)}")

    def _batches_of_item(self, item_id: str) -> set[str]:
        return set(self._item_batches.get(item_id, ()))

    def _fully_ready(self, batch_ids: Iterable[str]) -> Iterable[tuple[str, int, str]]:
        """(item_id, attempt, batch_id) for each submission in these batches whose every window is ready."""
        for batch_id in batch_ids:
            statuses: dict[tuple[str, int], list[str]] = defaultdict(list)
            for request in self._batches[batch_id].requests:
                parsed = _parse(request.custom_id)
                if parsed is not None:
                    statuses[(parsed[0], parsed[1])].append(request.status)
            for (item_id, attempt), found in statuses.items():
                if found and all(status == "ready" for status in found):
                    yield item_id, attempt, batch_id


def _parse(custom_id: str | None) -> tuple[str, int, int] | None:
    if custom_id is None:
        return None
    try:
        parsed = parse_custom_id(custom_id)
    except InvalidInputError:
        return None
    return parsed.item_id, parsed.attempt, parsed.window_index


def _window_key(custom_id: str | None) -> tuple[str, int] | None:
    parsed = _parse(custom_id)
    return None if parsed is None else (parsed[0], parsed[2])


def _active_at(batch: ObservedBatch, moment: datetime) -> bool:
    return batch.created_at <= moment and (batch.ended_at is None or moment < batch.ended_at)


_Interval = tuple[datetime, datetime | None]  # [start, end); None: still live


def _live(batch: ObservedBatch, request: ObservedRequest) -> _Interval:
    ends = [moment for moment in (request.ended_at, batch.ended_at) if moment is not None]
    return batch.created_at, min(ends, default=None)


def _overlap(a: _Interval, b: _Interval) -> bool:
    a_before_b_ends = b[1] is None or a[0] < b[1]
    b_before_a_ends = a[1] is None or b[0] < a[1]
    return a_before_b_ends and b_before_a_ends
