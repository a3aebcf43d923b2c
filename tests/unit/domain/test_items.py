import re

import pytest
from pydantic import ValidationError

from videobatch.domain.items import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATES,
    CustomId,
    FailureReason,
    ItemState,
    Window,
    check_transition,
    custom_id_for,
    item_id_for,
    parse_custom_id,
)
from videobatch.errors import InvalidInputError, InvalidTransitionError, VideoBatchError
from videobatch.twelvelabs import limits

S = ItemState
LEGAL = [
    (S.REGISTERED, S.ASSET_PROCESSING),
    (S.REGISTERED, S.FAILED),
    (S.ASSET_PROCESSING, S.QUEUED),
    (S.ASSET_PROCESSING, S.FAILED),
    (S.QUEUED, S.CLAIMED),
    (S.QUEUED, S.FAILED),
    (S.CLAIMED, S.SUBMITTED),
    (S.CLAIMED, S.QUEUED),
    (S.CLAIMED, S.FAILED),
    (S.SUBMITTED, S.DONE),
    (S.SUBMITTED, S.QUEUED),
    (S.SUBMITTED, S.FAILED),
]
ILLEGAL = [(src, dst) for src in S for dst in S if (src, dst) not in LEGAL]


@pytest.mark.parametrize(("source", "target"), LEGAL)
def test_legal_transitions_pass(source: ItemState, target: ItemState) -> None:
    check_transition(source, target)


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
def test_illegal_transitions_raise_naming_both_states(source: ItemState, target: ItemState) -> None:
    with pytest.raises(InvalidTransitionError) as info:
        check_transition(source, target)
    assert (info.value.source, info.value.target) == (source.value, target.value)
    assert f"{source.value} -> {target.value}" in str(info.value)
    assert isinstance(info.value, VideoBatchError)


def test_transition_table_is_exactly_the_legal_list() -> None:
    assert {(s, d) for s, targets in ALLOWED_TRANSITIONS.items() for d in targets} == set(LEGAL)
    assert set(ALLOWED_TRANSITIONS) == set(ItemState)
    assert frozenset({S.DONE, S.FAILED}) == TERMINAL_STATES


def test_terminal_state_error_says_terminal() -> None:
    with pytest.raises(InvalidTransitionError, match="terminal state"):
        check_transition(S.DONE, S.QUEUED)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("bkt", "videos/a.mp4", "v1"), ("bkt", "videos/a.mp4", "v1"), True),
        (("bkt", "videos/a.mp4", "v1"), ("bkt", "videos/a.mp4", "v2"), False),
        (("bkt", "videos/a.mp4", None), ("bkt", "videos/a.mp4", "null"), True),
        (("bkt", "videos/a.mp4", None), ("bkt", "videos/a.mp4", ""), True),
        (("bkt", "videos/a.mp4", None), ("bkt", "videos/b.mp4", None), False),
        (("a/b", "c", None), ("a", "b/c", None), False),
        (("bkt", "a", "b"), ("bkt", "a\x00b", None), False),
        (("bkt1", "k", None), ("bkt2", "k", None), False),
    ],
)
def test_item_id_is_deterministic_and_separates_objects(
    a: tuple[str, str, str | None], b: tuple[str, str, str | None], same: bool
) -> None:
    assert (item_id_for(*a) == item_id_for(*b)) is same


@pytest.mark.parametrize("key", ["a.mp4", "ünïcode/视频.mov", "x" * 1024])
def test_item_id_is_32_hex(key: str) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", item_id_for("bucket", key, "v"))


ITEM = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("attempt", "window", "expected"),
    [
        (0, 0, f"{ITEM}-a0-w0"),
        (1, 1, f"{ITEM}-a1-w1"),
        (999_999_999, 999, f"{ITEM}-a999999999-w999"),
    ],
)
def test_custom_id_round_trips(attempt: int, window: int, expected: str) -> None:
    value = custom_id_for(ITEM, attempt, window)
    assert value == expected
    assert limits.CUSTOM_ID_PATTERN.match(value)
    parsed = parse_custom_id(value)
    assert parsed == CustomId(item_id=ITEM, attempt=attempt, window_index=window)
    assert str(parsed) == value


@pytest.mark.parametrize(
    ("item_id", "attempt", "window", "problem"),
    [
        ("ABCDEF" * 5 + "AB", 0, 0, "item_id"),
        ("abc", 0, 0, "item_id"),
        (ITEM, -1, 0, "attempt -1"),
        (ITEM, 1_000_000_000, 0, "attempt"),
        (ITEM, 0, -1, "window_index -1"),
        (ITEM, 0, 1000, "window_index"),
    ],
)
def test_custom_id_for_rejects_bad_parts(item_id: str, attempt: int, window: int, problem: str) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        custom_id_for(item_id, attempt, window)


@pytest.mark.parametrize(
    "value",
    ["", "summary-002", f"{ITEM}-a1", f"{ITEM}-w1-a1", f"{ITEM.upper()}-a1-w1", f"{ITEM}-a1-w1-x", f"{ITEM}-a-1-w1"],
)
def test_parse_custom_id_rejects_foreign_ids(value: str) -> None:
    with pytest.raises(InvalidInputError, match="not <32 hex>"):
        parse_custom_id(value)


@pytest.mark.parametrize(("start", "end", "duration"), [(0, 1, 1), (10.5, 7210.5, 7200), (0, 0.25, 0.25)])
def test_window_duration(start: float, end: float, duration: float) -> None:
    assert Window(index=0, start_seconds=start, end_seconds=end).duration_seconds == duration


@pytest.mark.parametrize(
    ("index", "start", "end", "message"),
    [
        (0, 10, 10, "must be after"),
        (0, 10, 5, "must be after"),
        (-1, 0, 5, "greater than or equal"),
        (0, -1, 5, "greater than or equal"),
        (0, 0, float("inf"), "finite"),
    ],
)
def test_window_rejects_invalid_bounds(index: int, start: float, end: float, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Window(index=index, start_seconds=start, end_seconds=end)


def test_window_is_frozen() -> None:
    window = Window(index=0, start_seconds=0, end_seconds=1)
    with pytest.raises(ValidationError):
        window.index = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("code", "message", "ok"),
    [("video_duration_too_long", "Trim the video to 4 h.", True), ("", "m", False), ("c", "", False)],
)
def test_failure_reason_requires_code_and_message(code: str, message: str, ok: bool) -> None:
    if ok:
        reason = FailureReason(code=code, message=message)
        assert reason.retryable is False
    else:
        with pytest.raises(ValidationError):
            FailureReason(code=code, message=message)
