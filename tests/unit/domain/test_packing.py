import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from videobatch.domain.items import Window
from videobatch.domain.packing import (
    BatchTrigger,
    ContentCounting,
    PackCandidate,
    PackingPlan,
    content_seconds,
    plan_batches,
    wait_allowance_seconds,
)
from videobatch.errors import ConfigurationError
from videobatch.twelvelabs import limits

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
H = 3600.0


def cand(
    name: str,
    *,
    waited_seconds: float = 0.0,
    duration: float = 600.0,
    windows: int = 1,
    mode: str = "general",
) -> PackCandidate:
    step = duration / windows
    return PackCandidate.model_validate(
        {
            "item_id": name,
            "analysis_mode": mode,
            "eligible_at": NOW - timedelta(seconds=waited_seconds),
            "video_duration_seconds": duration,
            "windows": [Window(index=i, start_seconds=i * step, end_seconds=(i + 1) * step) for i in range(windows)],
        }
    )


def short_window(name: str, *, waited_seconds: float) -> PackCandidate:
    """A 4 h video of which only the first 10 minutes are analysed."""
    return cand(name, waited_seconds=waited_seconds, duration=4 * H).model_copy(
        update={"windows": (Window(index=0, start_seconds=0, end_seconds=600),)}
    )


def plan(
    candidates: list[PackCandidate],
    *,
    free_slots: int = 5,
    max_items: int = 3,
    max_content_seconds: float = 10 * H,
    max_wait_seconds: float = 900.0,
    content_counting: ContentCounting = "per_video",
) -> PackingPlan:
    return plan_batches(
        candidates,
        now=NOW,
        free_slots=free_slots,
        max_items=max_items,
        max_content_seconds=max_content_seconds,
        max_wait_seconds=max_wait_seconds,
        content_counting=content_counting,
    )


def shape(result: PackingPlan) -> list[tuple[str, list[str], BatchTrigger]]:
    return [(b.analysis_mode, [c.item_id for c in b.items], b.trigger) for b in result.batches]


FULL, WAIT = BatchTrigger.FULL, BatchTrigger.MAX_WAIT


@pytest.mark.parametrize(
    ("candidates", "kwargs", "expected"),
    [
        pytest.param([], {}, [], id="nothing-queued"),
        pytest.param([cand("a", waited_seconds=10)], {}, [], id="young-partial-batch-waits"),
        pytest.param([cand("a", waited_seconds=900)], {}, [("general", ["a"], WAIT)], id="max-wait-reached-exactly"),
        pytest.param(
            [cand(n, waited_seconds=5) for n in "abc"],
            {},
            [("general", ["a", "b", "c"], FULL)],
            id="request-slots-full",
        ),
        pytest.param(
            [cand(n, waited_seconds=10 - i) for i, n in enumerate("abcd")],
            {},
            [("general", ["a", "b", "c"], FULL)],
            id="fourth-item-opens-next-batch-which-waits",
        ),
        pytest.param(
            [cand("a", waited_seconds=30), cand("b", waited_seconds=20, windows=2), cand("c", waited_seconds=10)],
            {},
            [("general", ["a", "b"], FULL)],
            id="windows-count-as-requests-and-stay-together",
        ),
        pytest.param(
            [cand("a", waited_seconds=3, duration=4 * H), cand("b", waited_seconds=2, duration=4 * H, windows=2)],
            {"max_content_seconds": 6 * H},
            [("general", ["a"], FULL)],
            id="content-limit-whole-video",
        ),
        pytest.param(
            [
                cand("a", waited_seconds=3, duration=4 * H, windows=2),
                cand("b", waited_seconds=2, duration=1 * H),
                cand("c", waited_seconds=1, duration=1 * H),
            ],
            {"max_content_seconds": 5 * H, "max_items": 10},
            [("general", ["a", "b"], FULL)],
            id="content-limit-exactly-reached-is-full",
        ),
        pytest.param(
            [
                cand("a", waited_seconds=30),
                cand("b", waited_seconds=20, mode="time_based_metadata"),
                cand("c", waited_seconds=10),
                cand("d", waited_seconds=5, mode="time_based_metadata"),
            ],
            {"max_wait_seconds": 0},
            [("general", ["a", "c"], WAIT), ("time_based_metadata", ["b", "d"], WAIT)],
            id="only-analysis-mode-separates-batches",
        ),
        pytest.param(
            [cand(f"g{i}", waited_seconds=100 - i) for i in range(7)],
            {"free_slots": 2},
            [("general", ["g0", "g1", "g2"], FULL), ("general", ["g3", "g4", "g5"], FULL)],
            id="free-slots-cap",
        ),
        pytest.param([cand("a", waited_seconds=1000)], {"free_slots": 0}, [], id="no-free-slots"),
        pytest.param([cand("a", waited_seconds=1000)], {"free_slots": -2}, [], id="negative-free-slots-are-none"),
        pytest.param(
            [
                cand("young-full-1", waited_seconds=10, mode="time_based_metadata"),
                cand("young-full-2", waited_seconds=10, mode="time_based_metadata"),
                cand("young-full-3", waited_seconds=10, mode="time_based_metadata"),
                cand("old", waited_seconds=2000),
            ],
            {"free_slots": 1},
            [("general", ["old"], WAIT)],
            id="oldest-batch-gets-the-last-slot",
        ),
        pytest.param(
            [cand("b", waited_seconds=5), cand("a", waited_seconds=5), cand("c", waited_seconds=6)],
            {"max_wait_seconds": 0},
            [("general", ["c", "a", "b"], FULL)],
            id="equal-times-order-by-item-id",
        ),
        pytest.param(
            [cand("a", waited_seconds=1000), cand("a", waited_seconds=1000)],
            {},
            [("general", ["a"], WAIT)],
            id="duplicate-candidates-packed-once",
        ),
        pytest.param(
            [cand("future", waited_seconds=-60), cand("now", waited_seconds=1000)],
            {"max_wait_seconds": 0},
            [("general", ["now"], WAIT)],
            id="backed-off-item-not-yet-eligible",
        ),
        pytest.param(
            [short_window("a", waited_seconds=2), short_window("b", waited_seconds=1)],
            {"max_content_seconds": 6 * H, "max_items": 10},
            [("general", ["a"], FULL)],
            id="whole-video-content-fills-the-batch",
        ),
        pytest.param(
            [short_window("a", waited_seconds=2), short_window("b", waited_seconds=1)],
            {"max_content_seconds": 6 * H, "content_counting": "windows", "max_items": 10},
            [],
            id="count-windows-only-lets-both-fit",
        ),
    ],
)
def test_plan_batches_table(
    candidates: list[PackCandidate], kwargs: dict[str, float], expected: list[tuple[str, list[str], BatchTrigger]]
) -> None:
    assert shape(plan(candidates, **kwargs)) == expected  # type: ignore[arg-type]


def test_windows_counting_counts_the_analysed_window() -> None:
    candidate = short_window("a", waited_seconds=0)
    whole = plan([candidate], max_wait_seconds=0)
    windows_only = plan([candidate], max_wait_seconds=0, content_counting="windows")
    assert whole.batches[0].content_seconds == 4 * H
    assert windows_only.batches[0].content_seconds == 600


@pytest.mark.parametrize(
    ("counting", "expected"),
    [("per_request", 2 * 3 * H), ("per_video", 3 * H), ("windows", 2 * H)],
)
def test_each_content_counting_rule(counting: ContentCounting, expected: float) -> None:
    """A 3 h video analysed in two 1 h windows (the API's rule is undocumented; per_request is the cautious one)."""
    windows = [Window(index=0, start_seconds=0, end_seconds=H), Window(index=1, start_seconds=H, end_seconds=2 * H)]
    assert content_seconds(3 * H, windows, counting) == expected


def test_batch_reports_counts_and_fill_ratio() -> None:
    result = plan([cand("a", windows=2, duration=3 * H), cand("b")], max_items=4, max_wait_seconds=0)
    (batch,) = result.batches
    assert (batch.request_count, batch.content_seconds) == (3, 3 * H + 600)
    assert batch.fill_ratio == pytest.approx(0.75)
    assert batch.oldest_eligible_at == NOW


@pytest.mark.parametrize(
    ("candidate", "kwargs", "code"),
    [
        (cand("x", windows=2, duration=3 * H), {"max_items": 1}, "too_many_windows"),
        (cand("x", duration=4 * H), {"max_content_seconds": 3 * H}, "too_much_content"),
    ],
)
def test_unpackable_items_are_reported_not_packed(
    candidate: PackCandidate, kwargs: dict[str, float], code: str
) -> None:
    result = plan([candidate, cand("ok", waited_seconds=5000)], **kwargs)  # type: ignore[arg-type]
    assert [(u.item_id, u.failure.code) for u in result.unpackable] == [("x", code)]
    assert "at most" in result.unpackable[0].failure.message
    assert [[c.item_id for c in b.items] for b in result.batches] == [["ok"]]


@pytest.mark.parametrize(
    ("candidates", "kwargs", "expected"),
    [
        ([], {}, None),
        ([cand("a", waited_seconds=100)], {}, NOW + timedelta(seconds=800)),
        ([cand("a", waited_seconds=-30), cand("b", waited_seconds=100)], {}, NOW + timedelta(seconds=30)),
        ([cand("a", waited_seconds=1000)], {}, None),
        ([cand("a", waited_seconds=100)], {"free_slots": 0}, None),
    ],
)
def test_next_check_at(candidates: list[PackCandidate], kwargs: dict[str, float], expected: datetime | None) -> None:
    assert plan(candidates, **kwargs).next_check_at == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_items": 0}, "max_items 0"),
        ({"max_items": limits.MAX_REQUESTS_PER_BATCH + 1}, "max_items 1001"),
        ({"max_content_seconds": 0.5}, "max_content_seconds 0.5"),
        ({"max_content_seconds": limits.MAX_CONTENT_SECONDS_PER_BATCH + 1}, "max_content_seconds"),
        ({"max_wait_seconds": -1}, "max_wait_seconds -1"),
    ],
)
def test_plan_batches_rejects_bad_limits(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        plan([], **kwargs)  # type: ignore[arg-type]


def _random_candidates(rng: random.Random, count: int) -> list[PackCandidate]:
    candidates = []
    for i in range(count):
        duration = rng.choice([5.0, 600.0, 1.9 * H, 2.5 * H, 4 * H])
        windows = 1 if duration <= 2 * H else 2
        candidates.append(
            cand(
                f"item{i:05d}",
                waited_seconds=rng.uniform(-300, 3000),
                duration=duration,
                windows=windows if rng.random() > 0.05 else 3,
                mode=rng.choice(["general", "time_based_metadata"]),
            )
        )
    return candidates


@pytest.mark.parametrize("seed", range(25))
def test_plan_batches_properties(seed: int) -> None:
    rng = random.Random(seed)
    candidates = _random_candidates(rng, rng.randint(0, 400))
    max_items = rng.choice([2, 3, 10, 50, 1000])
    max_content = rng.choice([4 * H, 10 * H, 100 * H])
    free_slots = rng.randint(0, 5)
    counting: ContentCounting = rng.choice(["per_request", "per_video", "windows"])
    result = plan(
        candidates,
        free_slots=free_slots,
        max_items=max_items,
        max_content_seconds=max_content,
        max_wait_seconds=rng.choice([0.0, 600.0, 1e9]),
        content_counting=counting,
    )
    by_id = {c.item_id: c for c in candidates}
    packed = [c.item_id for b in result.batches for c in b.items]
    unpackable = {u.item_id for u in result.unpackable}

    assert len(result.batches) <= max(free_slots, 0)
    assert len(packed) == len(set(packed)), "an item appears twice"
    assert not unpackable & set(packed)
    for batch in result.batches:
        assert {c.analysis_mode for c in batch.items} == {batch.analysis_mode}
        assert batch.request_count == sum(len(c.windows) for c in batch.items) <= max_items
        assert batch.content_seconds <= max_content
        assert all(c.eligible_at <= NOW for c in batch.items)
        assert batch.items[0].eligible_at == batch.oldest_eligible_at
    for mode in limits.ANALYSIS_MODES:
        queue = sorted(
            (c for c in candidates if c.analysis_mode == mode and c.eligible_at <= NOW and c.item_id not in unpackable),
            key=lambda c: (c.eligible_at, c.item_id),
        )
        sent = [c.item_id for b in result.batches if b.analysis_mode == mode for c in b.items]
        # Strict oldest first: what a mode sends is always a prefix of its queue, in order.
        assert sent == [c.item_id for c in queue[: len(sent)]]
    for item_id in unpackable:
        item = by_id[item_id]
        content = content_seconds(item.video_duration_seconds, item.windows, counting)
        assert len(item.windows) > max_items or content > max_content


def test_two_window_videos_never_share_a_three_request_batch() -> None:
    result = plan([cand(f"v{i}", waited_seconds=100 - i, windows=2, duration=3 * H) for i in range(5)], max_items=3)
    # Four full batches of one video each (2 + 2 > 3); the fifth video waits in an open batch.
    assert [Counter(len(c.windows) for c in b.items) for b in result.batches] == [Counter({2: 1})] * 4
    assert [b.trigger for b in result.batches] == [FULL] * 4


@pytest.mark.parametrize(
    ("free_slots", "max_wait", "wait"),
    [(5, 900.0, 0.0), (3, 900.0, 0.0), (2, 900.0, 0.0), (1, 900.0, 900.0), (0, 900.0, 900.0), (1, 0.0, 0.0)],
)
def test_a_partial_batch_waits_only_when_slots_are_scarce(free_slots: int, max_wait: float, wait: float) -> None:
    assert wait_allowance_seconds(free_slots, max_wait) == wait
