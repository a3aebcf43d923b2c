"""Seeded faults inside the runtime: crashes at port boundaries, and two handlers interleaved port call by port call.

``instrument(runtime, ...)`` replaces the runtime's ports (the adapters and the TwelveLabs client every service is
built from) with proxies that, on each listed call:

1. give the turn to another interleaved handler (``Turnstile``), when two run at once;
2. when a handler is running (``handler_scope``) and the seeded draw says so, raise ``InjectedCrash`` *before*
   the call (it never happens) or *after* it (it happened, the handler never learns the answer).

Below the crash layer, every accepted item write is reported to the invariant checker (``ObservedItemStore``),
so a crash after a write still shows the write. ``InjectedCrash`` derives from ``Exception`` but not from the
project's ``VideoBatchError``: no service catches it, so the invocation fails as a crashed Lambda would (SQS
redelivers the message; a scheduled function simply runs again at its next firing).
"""

from __future__ import annotations

import contextvars
import functools
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, cast

from videobatch.clock import Clock
from videobatch.runtime import Runtime
from videobatch.services.records import ItemRecord
from videobatch_tools.simulate.invariants import InvariantChecker, ItemWrite

# Port -> the calls that are step boundaries (every one of them a crash point and an interleaving point).
PORT_CALLS: Final[Mapping[str, tuple[str, ...]]] = {
    "items": ("create", "save", "get", "get_many"),
    "batches": ("create", "save", "get"),
    "claims": ("create", "save", "get"),
    "leases": ("acquire", "release"),
    "objects": ("head", "presigned_get_url", "write_once"),
    "events": ("publish",),
    "scheduler": ("schedule_batch_check", "cancel_batch_check"),
    "twelvelabs": (
        "create_asset_from_url",
        "create_multipart_upload",
        "report_completed_chunks",
        "list_assets",
        "create_batch",
        "retrieve_batch",
        "cancel_batch",
        "stream_batch_results",
    ),
}

_current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("simulated_function", default=None)


class InjectedCrash(Exception):
    """The simulation killed the handler at a step boundary."""


class FaultLog:
    """Faults injected, by kind (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.counts[kind] += n


@contextmanager
def handler_scope(function_id: str) -> Iterator[None]:
    """Mark the current thread as running ``function_id``'s handler: only there do crashes fire."""
    token = _current_function.set(function_id)
    try:
        yield
    finally:
        _current_function.reset(token)


class Turnstile:
    """Runs callables in threads one at a time, switching at port calls in a seeded order (a deterministic race)."""

    def __init__(self, rng: random.Random, *, on_switch: Callable[[], None] | None = None) -> None:
        self._rng = rng
        self._cv = threading.Condition()
        self._live: list[int] = []
        self._turn: int | None = None
        self._local = threading.local()
        self._on_switch = on_switch

    def run(self, calls: list[Callable[[], Any]]) -> list[tuple[Any, BaseException | None]]:
        results: list[tuple[Any, BaseException | None]] = [(None, None)] * len(calls)
        context = contextvars.copy_context()

        def body(index: int, call: Callable[[], Any]) -> None:
            self._local.index = index
            with self._cv:
                self._cv.wait_for(lambda: self._turn == index)
            try:
                results[index] = (context.copy().run(call), None)
            except BaseException as error:
                results[index] = (None, error)
            finally:
                with self._cv:
                    self._live.remove(index)
                    self._turn = self._rng.choice(self._live) if self._live else None
                    self._cv.notify_all()

        threads = [threading.Thread(target=body, args=(i, c), name=f"sim-{i}") for i, c in enumerate(calls)]
        with self._cv:
            self._live = list(range(len(calls)))
            self._turn = self._rng.choice(self._live)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def point(self) -> None:
        """A step boundary: maybe let another thread run first (no-op outside ``run``)."""
        index = getattr(self._local, "index", None)
        if index is None:
            return
        with self._cv:
            chosen = self._rng.choice(self._live)
            if chosen == index:
                return
            self._turn = chosen
            self._cv.notify_all()
            if self._on_switch is not None:
                self._on_switch()
            self._cv.wait_for(lambda: self._turn == index)


class CrashInjector:
    def __init__(self, *, rate: float, rng: random.Random, log: FaultLog, turnstile: Turnstile | None = None) -> None:
        self.rate = rate
        self._rng = rng
        self._log = log
        self._turnstile = turnstile
        self._lock = threading.Lock()

    def call(self, point: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._turnstile is not None:
            self._turnstile.point()
        function = _current_function.get()
        draw = 1.0
        if function is not None and self.rate > 0:
            with self._lock:
                draw = self._rng.random()
        if draw < self.rate / 2:
            self._log.add("crash_before_call")
            raise InjectedCrash(f"{function} crashed before {point}")
        result = method(*args, **kwargs)
        if draw < self.rate:
            self._log.add("crash_after_call")
            raise InjectedCrash(f"{function} crashed after {point}")
        return result


class _Port:
    """A port whose listed calls go through the injector; everything else is the real adapter's."""

    def __init__(self, name: str, inner: Any, calls: tuple[str, ...], injector: CrashInjector) -> None:
        self._name = name
        self._inner = inner
        self._calls = frozenset(calls)
        self._injector = injector

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._inner, attribute)
        if attribute in self._calls:
            return functools.partial(self._injector.call, f"{self._name}.{attribute}", value)
        return value


class ObservedItemStore:
    """The real item repository, reporting every accepted write to the checker (what was expected, what won)."""

    def __init__(self, inner: Any, checker: InvariantChecker, clock: Clock) -> None:
        self._inner = inner
        self._checker = checker
        self._clock = clock

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._inner, attribute)

    def create(self, item: ItemRecord) -> tuple[ItemRecord, bool]:
        stored, created = cast(tuple[ItemRecord, bool], self._inner.create(item))
        if created:
            self._report(stored, None)
        return stored, created

    def save(self, new: ItemRecord, expected: ItemRecord) -> ItemRecord:
        stored = cast(ItemRecord, self._inner.save(new, expected))
        self._report(stored, expected)
        return stored

    def _report(self, stored: ItemRecord, expected: ItemRecord | None) -> None:
        failure = stored.failure
        self._checker.record_write(
            ItemWrite(
                item_id=stored.item_id,
                kind="create" if expected is None else "save",
                expected_version=None if expected is None else expected.version,
                expected_state=None if expected is None else expected.state,
                new_version=stored.version,
                new_state=stored.state,
                at=self._clock.now(),
                failure_code=failure.code if failure else None,
                failure_message=failure.message if failure else None,
            )
        )


def instrument(runtime: Runtime, *, checker: InvariantChecker, injector: CrashInjector) -> None:
    """Put the observer and the injector between the services and the real adapters (in place)."""
    runtime.items = cast(Any, ObservedItemStore(runtime.items, checker, runtime.clock))
    for name, calls in PORT_CALLS.items():
        setattr(runtime, name, _Port(name, getattr(runtime, name), calls, injector))
