"""Which queued items go into which batch, and which batches to send now.

Rules, in order of precedence:

1. Only candidates whose ``eligible_at`` has passed are packed (a backed-off requeue waits), oldest first
   (``eligible_at``, then ``item_id`` so equal times order deterministically).
2. A video's windows are all requests of the same batch (their results are merged), so a candidate costs
   ``len(windows)`` requests and, towards the content-hour limit, what ``content_seconds`` counts for it.
3. Only ``analysis_mode`` separates batches; different prompts ride in per-item overrides.
4. Packing is strict first-in-first-out per mode: a batch takes the oldest candidates until the next oldest one does
   not fit, and that one opens the next batch. No younger item overtakes an older one, so nothing starves; the cost
   is at most one video's worth of unused room per batch (≤ 2 requests, ≤ 4 h), negligible against 1,000 / 2,000 h.
5. A batch is *full* when the next oldest candidate of its mode does not fit in it, or, for the last batch of a mode,
   when nothing could fit: all request slots used or less than MIN_WINDOW_SECONDS of content room left.
   A batch is sent when it is full or its oldest item has waited its allowance (``wait_allowance_seconds``: none
   while slots are plentiful, ``max_wait_seconds`` once they are scarce); otherwise it stays open.
6. At most ``free_slots`` batches are sent, those with the oldest first item first.
7. A candidate that can never fit (more windows than ``max_items``, more content than ``max_content_seconds``) is
   reported as unpackable with a FailureReason instead of blocking the queue.
8. A candidate marked ``alone`` (a create holding only its request was refused before) is planned as a batch of its
   own, in age order with the others, and never blocks or joins them: whatever made the API refuse it stays with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from videobatch.domain.items import FailureReason, Window
from videobatch.errors import ConfigurationError
from videobatch.twelvelabs import limits
from videobatch.twelvelabs.limits import AnalysisMode

# How the API counts a batch's content hours is not documented; each plausible rule, the most cautious first:
# ``per_request`` every request (window) with its whole video's duration, ``per_video`` each video once with its
# whole duration, ``windows`` only the analysed windows. The default is the cautious one: a batch it accepts stays
# within 2,000 hours under all three.
ContentCounting = Literal["per_request", "per_video", "windows"]
CONTENT_COUNTINGS: Final[tuple[str, ...]] = ("per_request", "per_video", "windows")


def content_seconds(video_duration_seconds: float, windows: Sequence[Window], counting: ContentCounting) -> float:
    """What one video counts towards a batch's content limit under ``counting``."""
    if counting == "windows":
        return sum(window.end_seconds - window.start_seconds for window in windows)
    if counting == "per_video":
        return video_duration_seconds
    return video_duration_seconds * len(windows)


# A partial batch goes out at once while at least this many slots are free: an idle slot earns nothing, and
# waiting to fill it only delays the videos already there.
EARLY_SEND_FREE_SLOTS: Final = 2


def wait_allowance_seconds(free_slots: int, max_wait_seconds: float) -> float:
    """How long the oldest item of a partial batch waits for company before the batch goes anyway.

    ==========================  ==================  ==================================================
    free slots (after reserve)  wait                why
    ==========================  ==================  ==================================================
    2 or more                   0                   room to spare: send what is there now
    1 (the last one)            max_wait_seconds    scarce: fill it, a tiny batch would hold the slot
    0                           (nothing is sent)
    ==========================  ==================  ==================================================
    """
    return 0.0 if free_slots >= EARLY_SEND_FREE_SLOTS else max_wait_seconds


class PackCandidate(BaseModel):
    """A queued item as the packer sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    item_id: str = Field(min_length=1)
    analysis_mode: AnalysisMode
    eligible_at: AwareDatetime  # when it was queued, or when its requeue backoff ends
    video_duration_seconds: float = Field(gt=0, allow_inf_nan=False)
    windows: tuple[Window, ...] = Field(min_length=1)
    alone: bool = False


class BatchTrigger(StrEnum):
    FULL = "full"
    MAX_WAIT = "max_wait"


class PlannedBatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    analysis_mode: AnalysisMode
    items: tuple[PackCandidate, ...] = Field(min_length=1)  # oldest first
    request_count: int = Field(ge=1)
    content_seconds: float = Field(gt=0)
    oldest_eligible_at: AwareDatetime
    trigger: BatchTrigger
    fill_ratio: float = Field(ge=0, le=1)  # the fuller of requests and content, relative to the limits used


class UnpackableItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    item_id: str
    failure: FailureReason


class PackingPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    batches: tuple[PlannedBatch, ...]
    unpackable: tuple[UnpackableItem, ...]
    # The earliest moment an open batch reaches max wait or a backed-off item becomes eligible: when to look again.
    next_check_at: AwareDatetime | None


# (eligible_at as a UTC timestamp, item_id, requests, content_seconds, candidate): plain tuples sort and compare
# several times faster than models or aware datetimes, which matters at 100,000 candidates.
_Cost = tuple[float, str, int, float, PackCandidate]


class _Limits(NamedTuple):
    max_items: int
    max_content_seconds: float
    max_wait: timedelta


def plan_batches(
    candidates: Sequence[PackCandidate],
    *,
    now: datetime,
    free_slots: int,
    max_items: int,
    max_content_seconds: float,
    max_wait_seconds: float,
    content_counting: ContentCounting,
) -> PackingPlan:
    """Plan the batches to send now; see the module docstring for the rules."""
    bounds = _checked_limits(max_items, max_content_seconds, max_wait_seconds)
    queues, unpackable, wake_times = _screen(candidates, bounds, now=now, counting=content_counting)
    slots = max(free_slots, 0)  # more active batches than configured (e.g. a manual one) leaves no room, not an error
    batches = [
        _batch([c[4]], c[2], c[3], BatchTrigger.MAX_WAIT, bounds) for q in queues.values() for c in q if c[4].alone
    ]
    queues = {mode: [c for c in queue if not c[4].alone] for mode, queue in queues.items()}
    for queue in queues.values():
        mode_batches, wake_at = _pack_mode(queue, bounds, now=now, max_batches=slots)
        batches.extend(mode_batches)
        wake_times.extend([wake_at] if wake_at else [])
    batches.sort(key=lambda batch: (batch.oldest_eligible_at, batch.analysis_mode))
    return PackingPlan(
        batches=tuple(batches[:slots]), unpackable=tuple(unpackable), next_check_at=min(wake_times, default=None)
    )


def _screen(
    candidates: Sequence[PackCandidate], bounds: _Limits, *, now: datetime, counting: ContentCounting
) -> tuple[dict[str, list[_Cost]], list[UnpackableItem], list[datetime]]:
    """Split candidates into per-mode queues (sorted oldest first), unpackable items and not-yet-eligible times."""
    now_ts = now.timestamp()
    queues: dict[str, list[_Cost]] = {mode: [] for mode in limits.ANALYSIS_MODES}
    unpackable: list[UnpackableItem] = []
    wake_times: list[datetime] = []
    seen: set[str] = set()
    for candidate in candidates:
        # Inlined (no helper calls per candidate): this loop dominates the cost at 100,000 candidates.
        if candidate.item_id in seen:
            continue  # a repeated read (e.g. overlapping pages) must not put one video twice into a batch
        seen.add(candidate.item_id)
        windows = candidate.windows
        content = content_seconds(candidate.video_duration_seconds, windows, counting)
        cost = (candidate.eligible_at.timestamp(), candidate.item_id, len(windows), content, candidate)
        if cost[2] > bounds.max_items or content > bounds.max_content_seconds:
            unpackable.append(UnpackableItem(item_id=candidate.item_id, failure=_unpackable_reason(cost, bounds)))
        elif cost[0] > now_ts:
            wake_times.append(candidate.eligible_at)
        else:
            queues[candidate.analysis_mode].append(cost)
    for queue in queues.values():
        queue.sort(key=_order)
    return queues, unpackable, wake_times


def _order(cost: _Cost) -> tuple[float, str]:
    return cost[0], cost[1]


def _checked_limits(max_items: int, max_content_seconds: float, max_wait_seconds: float) -> _Limits:
    if not 1 <= max_items <= limits.MAX_REQUESTS_PER_BATCH:
        raise ConfigurationError(f"max_items {max_items} must be within 1..{limits.MAX_REQUESTS_PER_BATCH}")
    if not limits.MIN_WINDOW_SECONDS <= max_content_seconds <= limits.MAX_CONTENT_SECONDS_PER_BATCH:
        raise ConfigurationError(
            f"max_content_seconds {max_content_seconds} must be within "
            f"{limits.MIN_WINDOW_SECONDS:g}..{limits.MAX_CONTENT_SECONDS_PER_BATCH}"
        )
    if max_wait_seconds < 0:
        raise ConfigurationError(f"max_wait_seconds {max_wait_seconds} must be >= 0")
    return _Limits(max_items, max_content_seconds, timedelta(seconds=max_wait_seconds))


def _unpackable_reason(cost: _Cost, bounds: _Limits) -> FailureReason:
    _, _, requests, content_seconds, _ = cost
    if requests > bounds.max_items:
        return FailureReason(
            code="too_many_windows",
            message=f"the video needs {requests} requests (one per window) but a batch holds at most "
            f"{bounds.max_items}: raise MAX_ITEMS_PER_BATCH or analyse a shorter window",
        )
    return FailureReason(
        code="too_much_content",
        message=f"the video counts {content_seconds:g} s of content but a batch holds at most "
        f"{bounds.max_content_seconds:g} s: raise MAX_CONTENT_SECONDS_PER_BATCH or set CONTENT_COUNTING",
    )


def _pack_mode(
    queue: list[_Cost], bounds: _Limits, *, now: datetime, max_batches: int
) -> tuple[list[PlannedBatch], datetime | None]:
    """Strict FIFO packing of one mode; returns the sendable batches and when the open one reaches max wait."""
    sendable: list[PlannedBatch] = []
    current: list[PackCandidate] = []
    requests, content = 0, 0.0
    for _, _, cost_requests, cost_content, candidate in queue:
        if len(sendable) >= max_batches:
            return sendable, None  # later batches are younger than every sendable one: never chosen this round
        if current and (
            requests + cost_requests > bounds.max_items or content + cost_content > bounds.max_content_seconds
        ):
            sendable.append(_batch(current, requests, content, BatchTrigger.FULL, bounds))
            current, requests, content = [], 0, 0.0
        current.append(candidate)
        requests += cost_requests
        content += cost_content
    if not current or len(sendable) >= max_batches:
        return sendable, None
    oldest = current[0].eligible_at
    if requests >= bounds.max_items or bounds.max_content_seconds - content < limits.MIN_WINDOW_SECONDS:
        sendable.append(_batch(current, requests, content, BatchTrigger.FULL, bounds))
    elif now - oldest >= bounds.max_wait:
        sendable.append(_batch(current, requests, content, BatchTrigger.MAX_WAIT, bounds))
    else:
        return sendable, oldest + bounds.max_wait
    return sendable, None


def _batch(
    items: list[PackCandidate], requests: int, content: float, trigger: BatchTrigger, bounds: _Limits
) -> PlannedBatch:
    first = items[0]
    return PlannedBatch(
        analysis_mode=first.analysis_mode,
        items=tuple(items),
        request_count=requests,
        content_seconds=content,
        oldest_eligible_at=first.eligible_at,
        trigger=trigger,
        fill_ratio=min(1.0, max(requests / bounds.max_items, content / bounds.max_content_seconds)),
    )
