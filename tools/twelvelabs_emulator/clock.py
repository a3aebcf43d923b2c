"""The emulator's notion of time: anything with ``now()``; a virtual clock also has ``advance(seconds)``.

Structural on purpose: the pipeline's ``videobatch.clock.ManualClock`` satisfies ``AdvanceableClock`` without
the emulator importing it, so the simulation can drive both from one clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

DEFAULT_START: datetime = datetime(2026, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@runtime_checkable
class AdvanceableClock(Protocol):
    """A virtual clock: ``POST /_emulator/clock`` may move it."""

    def now(self) -> datetime: ...

    def advance(self, seconds: float) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """Moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or DEFAULT_START

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += timedelta(seconds=seconds)
        return self._now


def rfc3339(moment: datetime) -> str:
    """RFC 3339 with a Z suffix, as the TwelveLabs API writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
