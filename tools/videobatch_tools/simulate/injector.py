"""Seeded faults inside the runtime: crashes at port boundaries, and two handlers interleaved port call by port call.

``instrument(runtime, ...)`` replaces the runtime's ports (the adapters and the TwelveLabs client every service is
built from) with proxies that, on each listed call:

1. give the turn to another interleaved handler (``Turnstile``), when two run at once;
2. when a handler is running (``handler_scope``) and the seeded draw says so, raise ``InjectedCrash`` *before*
   the call (it never happens) or *after* it (it happened, the handler never learns the answer).
   ``systematic`` adds a crash at every step boundary: the first time an invocation reaches a boundary (handler,
   before/after, port call) not crashed at yet, it crashes there. SQS redeliveries are spared, so the same message
   is not crashed into the dead-letter queue by coverage alone.

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
from videobatch.domain.records import ItemRecord
from videobatch.runtime import Runtime
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
_first_delivery: contextvars.ContextVar[bool] = contextvars.ContextVar("first_delivery", default=False)


class InjectedCrash(Exception):
    """The simulation killed the handler at a step boundary."""


class FaultLog:
    """Faults injected, by kind (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        # Step boundaries ("Function before|after port.call") reached inside handlers, and those crashed at.
        self.boundaries: set[str] = set()
        self.crashed_at: set[str] = set()

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.counts[kind] += n

    def reached(self, function: str, point: str) -> None:
        with self._lock:
            self.boundaries.update({f"{function} before {point}", f"{function} after {point}"})

    def was_crashed(self, boundary: str) -> bool:
        with self._lock:
            return boundary in self.crashed_at

    def crashed(self, function: str, where: str, point: str) -> None:
        with self._lock:
            self.counts[f"crash_{where}_call"] += 1
            self.crashed_at.add(f"{function} {where} {point}")

    def uncrashed_boundaries(self) -> list[str]:
        with self._lock:
            return sorted(self.boundaries - self.crashed_at)


@contextmanager
def handler_scope(function_id: str, *, first_delivery: bool = False) -> Iterator[None]:
    """Mark the current thread as running ``function_id``'s handler: only there do crashes fire."""
    tokens = (_current_function.set(function_id), _first_delivery.set(first_delivery))
    try:
        yield
    finally:
        _first_delivery.reset(tokens[1])
        _current_function.reset(tokens[0])


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
    def __init__(
        self,
        *,
        rate: float,
        rng: random.Random,
        log: FaultLog,
        turnstile: Turnstile | None = None,
        systematic: bool = False,
    ) -> None:
        self.rate = rate
        self.systematic = systematic
        self._rng = rng
        self._log = log
        self._turnstile = turnstile
        self._lock = threading.Lock()

    def call(self, point: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._turnstile is not None:
            self._turnstile.point()
        function = _current_function.get()
        where = None if function is None else self._crash_point(function, point)
        if function is not None and where == "before":
            self._log.crashed(function, where, point)
            raise InjectedCrash(f"{function} crashed before {point}")
        result = method(*args, **kwargs)
        if function is not None and where == "after":
            self._log.crashed(function, where, point)
            raise InjectedCrash(f"{function} crashed after {point}")
        return result

    def _crash_point(self, function: str, point: str) -> str | None:
        """Where this call crashes: ``"before"``, ``"after"`` or None."""
        if self.rate <= 0 and not self.systematic:
            return None
        self._log.reached(function, point)
        if self.systematic and _first_delivery.get():
            for where in ("before", "after"):
                if not self._log.was_crashed(f"{function} {where} {point}"):
                    return where
        with self._lock:
            draw = self._rng.random()
        return "before" if draw < self.rate / 2 else "after" if draw < self.rate else None


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
