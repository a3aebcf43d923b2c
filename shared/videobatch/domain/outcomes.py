"""What became of items, counted cheaply for the operators: outcomes (done / failed) and their daily totals.

``ItemWriter`` reports every item that reaches ``done`` or ``failed`` as an ``Outcome`` to the ``OutcomeLedger``
port (``adapters.ledger`` on DynamoDB): failures one by one as they happen, successes once per batch check (the
batch checker's ``update_batch``), so the cost is a write per failure and per batch, never a scan. The ledger keeps

- one ``DayTotals`` per UTC day: done / failed (user / pipeline) counts, the usage of the done ones (content
  seconds, windows, tokens) and the counts per 5-minute slot, which give the throughput of the last hour and day;
- one journal entry per outcome (by state and day, newest first), which ``videobatch items --state done|failed``
  and ``videobatch requeue`` read instead of scanning the table (terminal items leave every index).

Counts are at most once: a crash between an item's save and its outcome's write loses that count (the item
itself, the source of truth, is saved). An operator's requeue retracts the failure (``retract``): ``failed`` then
counts the items that are failed now, the 5-minute slots keep the throughput that happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from videobatch.domain.items import FailureKind
from videobatch.domain.records import sort_stamp

if TYPE_CHECKING:
    from videobatch.domain.records import ItemRecord

SLOT_SECONDS: Final = 300
SLOTS_PER_DAY: Final = 86_400 // SLOT_SECONDS
OutcomeState = Literal["done", "failed"]
OUTCOME_STATES: Final[tuple[OutcomeState, ...]] = ("done", "failed")


class ResultUsage(BaseModel):
    """What one video's analysis used: its windows' content seconds, the windows, and the tokens TwelveLabs billed."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    content_seconds: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    windows: int = Field(default=0, ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)


class Outcome(BaseModel):
    """One item that reached ``done`` or ``failed``, as the ledger journals it."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    item_id: str
    bucket: str
    key: str
    version_id: str | None = None
    profile: str | None = None
    state: OutcomeState
    finished_at: AwareDatetime
    failure_code: str | None = None
    failure_kind: FailureKind | None = None
    asset_id: str | None = None
    batch_id: str | None = None
    usage: ResultUsage | None = None

    @classmethod
    def of(cls, item: ItemRecord, usage: ResultUsage | None = None) -> Outcome:
        """The outcome of a terminal item (the record as the writer stored it)."""
        if not item.terminal:
            raise ValueError(f"item {item.item_id} is {item.state.value}, not done or failed")
        failure = item.failure
        return cls(
            item_id=item.item_id,
            bucket=item.bucket,
            key=item.key,
            version_id=item.version_id,
            profile=item.profile_name,
            state="done" if item.state.value == "done" else "failed",
            finished_at=item.finished_at or item.updated_at,
            failure_code=failure.code if failure else None,
            failure_kind=failure.kind if failure else None,
            asset_id=item.asset_id,
            batch_id=item.batch_id,
            usage=usage,
        )

    @property
    def day(self) -> date:
        return self.finished_at.astimezone(UTC).date()

    @property
    def slot(self) -> int:
        return slot_of(self.finished_at)

    @property
    def sort_key(self) -> str:
        """Journal order within a day: finish time, then item id."""
        return f"{sort_stamp(self.finished_at)}#{self.item_id}"


def slot_of(moment: datetime) -> int:
    """The 5-minute slot of the UTC day ``moment`` falls in (0..287)."""
    utc = moment.astimezone(UTC)
    return (utc.hour * 3600 + utc.minute * 60 + utc.second) // SLOT_SECONDS


class DayTotals(BaseModel):
    """Outcomes of one UTC day (or the change to add to one: ``of_outcomes``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    day: date
    done: int = 0
    failed: int = 0
    failed_user: int = 0
    failed_pipeline: int = 0
    content_seconds: float = 0.0
    windows: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    # slot (0..287) -> outcomes finished in it; only slots that saw any
    done_slots: dict[int, int] = Field(default_factory=dict)
    failed_slots: dict[int, int] = Field(default_factory=dict)

    @classmethod
    def of_outcomes(cls, day: date, outcomes: Iterable[Outcome]) -> DayTotals:
        counts: dict[str, float] = {}
        done_slots: dict[int, int] = {}
        failed_slots: dict[int, int] = {}
        for outcome in outcomes:
            slots = done_slots if outcome.state == "done" else failed_slots
            slots[outcome.slot] = slots.get(outcome.slot, 0) + 1
            counts[outcome.state] = counts.get(outcome.state, 0) + 1
            if outcome.state == "failed":
                kind = f"failed_{outcome.failure_kind or 'pipeline'}"
                counts[kind] = counts.get(kind, 0) + 1
            if outcome.usage is not None:
                for name in ("content_seconds", "windows", "input_tokens", "output_tokens"):
                    counts[name] = counts.get(name, 0) + getattr(outcome.usage, name)
        integers = {name: int(value) for name, value in counts.items() if name != "content_seconds"}
        return cls(
            day=day,
            **integers,
            content_seconds=counts.get("content_seconds", 0.0),
            done_slots=done_slots,
            failed_slots=failed_slots,
        )


def by_day(outcomes: Sequence[Outcome]) -> dict[date, DayTotals]:
    """The outcomes grouped into one change per day (what one ledger write adds to that day)."""
    days: dict[date, list[Outcome]] = {}
    for outcome in outcomes:
        days.setdefault(outcome.day, []).append(outcome)
    return {day: DayTotals.of_outcomes(day, group) for day, group in days.items()}


def days_back(now: datetime, count: int) -> list[date]:
    """The last ``count`` UTC days ending today, newest first."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=offset) for offset in range(count)]


class Throughput(BaseModel):
    """Outcomes within a window ending now, from the 5-minute slots."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    window_seconds: float = Field(gt=0)
    done: int = 0
    failed: int = 0

    @property
    def per_hour(self) -> float:
        return (self.done + self.failed) * 3600.0 / self.window_seconds


def throughput(totals: Mapping[date, DayTotals], *, now: datetime, window_seconds: float) -> Throughput:
    """Outcomes of the slots from the one holding ``now - window`` to the one holding ``now``: the window is
    counted in whole slots, so it reaches up to 5 minutes further back than asked."""
    step = timedelta(seconds=SLOT_SECONDS)
    moment = _slot_start(now - timedelta(seconds=window_seconds))
    done = failed = 0
    while moment <= now:
        day = totals.get(moment.date())
        if day is not None:
            done += day.done_slots.get(slot_of(moment), 0)
            failed += day.failed_slots.get(slot_of(moment), 0)
        moment += step
    return Throughput(window_seconds=window_seconds, done=done, failed=failed)


def _slot_start(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(seconds=slot_of(utc) * SLOT_SECONDS)
