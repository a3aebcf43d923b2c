import itertools
import json
import math
from typing import Any

import pytest

from videobatch.domain.items import Window
from videobatch.domain.windows import (
    MAX_PLANNED_WINDOW_SECONDS,
    MergedResult,
    TimeBounds,
    WindowResult,
    format_hms,
    merge_window_results,
    parse_timestamp_seconds,
    plan_windows,
    request_time_bounds,
)
from videobatch.errors import InvalidInputError, RejectedUploadError, RequestValidationError
from videobatch.twelvelabs import limits

H = 3600.0


@pytest.mark.parametrize(
    ("duration", "start", "end", "expected"),
    [
        (1.0, None, None, [(0, 1.0)]),
        (60.0, None, None, [(0, 60.0)]),
        (2 * H - 60, None, None, [(0, 2 * H - 60)]),
        # Within a minute of 2 h: two windows, so a platform measuring the video a little longer stays in limits.
        (2 * H, None, None, [(0, H), (H, 2 * H)]),
        (2 * H + 0.5, None, None, [(0, H + 0.25), (H + 0.25, 2 * H + 0.5)]),
        (2.5 * H, None, None, [(0, 1.25 * H), (1.25 * H, 2.5 * H)]),
        (4 * H - 120, None, None, [(0, 2 * H - 60), (2 * H - 60, 4 * H - 120)]),
        (4 * H, None, None, [(0, 4800.0), (4800.0, 9600.0), (9600.0, 4 * H)]),
        # A profile window: only [start, end] is analysed.
        (3 * H, 600.0, 1200.0, [(600.0, 1200.0)]),
        (3 * H, 600.0, None, [(600.0, 5700.0), (5700.0, 3 * H)]),
        # A profile window longer than the video is clipped to it.
        (300.0, 0.0, 600.0, [(0, 300.0)]),
        (300.0, None, 600.0, [(0, 300.0)]),
    ],
)
def test_plan_windows(
    duration: float, start: float | None, end: float | None, expected: list[tuple[float, float]]
) -> None:
    windows = plan_windows(duration, start_seconds=start, end_seconds=end)
    assert [(w.start_seconds, w.end_seconds) for w in windows] == expected
    assert [w.index for w in windows] == list(range(len(expected)))


@pytest.mark.parametrize("duration", [1.0, 7199.9, 7200.0, 7200.001, 9000.48, 10_000.0, 14_399.99, 14_400.0])
def test_planned_windows_cover_the_video_within_limits(duration: float) -> None:
    windows = plan_windows(duration)
    assert windows[0].start_seconds == 0
    assert windows[-1].end_seconds == duration
    for left, right in itertools.pairwise(windows):
        assert left.end_seconds == right.start_seconds
    for window in windows:
        assert limits.MIN_WINDOW_SECONDS <= window.duration_seconds <= MAX_PLANNED_WINDOW_SECONDS
    assert max(w.duration_seconds for w in windows) - min(w.duration_seconds for w in windows) < 1e-6


@pytest.mark.parametrize(
    ("duration", "start", "end", "reason"),
    [
        (4 * H + 0.001, None, None, "video_too_long"),
        (10 * H, 0.0, 60.0, "video_too_long"),
        (0.999, None, None, "video_too_short"),
        (0.0, None, None, "video_too_short"),
        (math.nan, None, None, "video_too_short"),
        (300.0, 299.5, None, "video_too_short"),
        (300.0, 400.0, None, "video_too_short"),
        (300.0, 10.0, 10.5, "video_too_short"),
    ],
)
def test_plan_windows_rejects_videos(duration: float, start: float | None, end: float | None, reason: str) -> None:
    with pytest.raises(RejectedUploadError) as info:
        plan_windows(duration, start_seconds=start, end_seconds=end)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [(-1.0, None, "start_time"), (math.inf, None, "start_time"), (10.0, 10.0, "end_time"), (10.0, 5.0, "end_time")],
)
def test_plan_windows_rejects_bad_bounds(start: float, end: float | None, field: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        plan_windows(300.0, start_seconds=start, end_seconds=end)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("start", "end", "duration", "expected"),
    [
        (0.0, 100.0, 100.0, TimeBounds(start_time=None, end_time=None)),
        (0.0, 50.0, 100.0, TimeBounds(start_time=None, end_time=50.0)),
        (50.0, 100.0, 100.0, TimeBounds(start_time=50.0, end_time=None)),
        (10.0, 20.0, 100.0, TimeBounds(start_time=10.0, end_time=20.0)),
    ],
)
def test_request_time_bounds(start: float, end: float, duration: float, expected: TimeBounds) -> None:
    window = Window(index=0, start_seconds=start, end_seconds=end)
    assert request_time_bounds(window, video_duration_seconds=duration) == expected


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "00:00:00"), (4500, "01:15:00"), (3661.25, "01:01:01.250"), (14_400, "04:00:00")]
)
def test_format_hms(seconds: float, text: str) -> None:
    assert format_hms(seconds) == text


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (12, 12.0),
        (12.5, 12.5),
        ("12.5", 12.5),
        ("01:02:03", 3723.0),
        ("01:02:03.250", 3723.25),
        ("02:03", 123.0),
        ("100:00:00", 360_000.0),
        ("nope", None),
        ("", None),
        (None, None),
        (True, None),
        (math.inf, None),
        ("inf", None),
        ([1], None),
    ],
)
def test_parse_timestamp_seconds(value: object, seconds: float | None) -> None:
    assert parse_timestamp_seconds(value) == seconds


W0 = Window(index=0, start_seconds=0, end_seconds=4500)
W1 = Window(index=1, start_seconds=4500, end_seconds=9000)


def _part(window: Window, text: str, finish_reason: str | None = "stop") -> WindowResult:
    return WindowResult.model_validate({"window": window, "text": text, "finish_reason": finish_reason})


def test_general_text_single_window_is_unchanged() -> None:
    merged = merge_window_results("general", None, [_part(W0, "A summary.\n")])
    assert merged == MergedResult(media_type="text/plain", body="A summary.\n", window_count=1, truncated=False)


def test_general_text_windows_get_headers_in_window_order() -> None:
    merged = merge_window_results("general", None, [_part(W1, "second", "length"), _part(W0, " first\n")])
    assert merged.body == (
        "## Window 1 of 2 (00:00:00 - 01:15:00)\n\nfirst\n\n## Window 2 of 2 (01:15:00 - 02:30:00)\n\nsecond"
    )
    assert merged.truncated is True
    assert merged.window_count == 2


def test_json_schema_results_are_a_list_with_window_bounds() -> None:
    merged = merge_window_results("general", "json_schema", [_part(W1, '{"t": 2}'), _part(W0, '{"t": 1}')])
    assert merged.media_type == "application/json"
    assert json.loads(merged.body) == [
        {"window": {"index": 0, "start_seconds": 0.0, "end_seconds": 4500.0}, "data": {"t": 1}},
        {"window": {"index": 1, "start_seconds": 4500.0, "end_seconds": 9000.0}, "data": {"t": 2}},
    ]
    assert merged.unparsable_window_indexes == ()


def test_json_schema_single_window_keeps_the_list_shape() -> None:
    merged = merge_window_results("general", "json_schema", [_part(W0, '{"t": 1}')])
    assert json.loads(merged.body) == [
        {"window": {"index": 0, "start_seconds": 0.0, "end_seconds": 4500.0}, "data": {"t": 1}}
    ]


def test_json_schema_keeps_unparsable_output_raw() -> None:
    merged = merge_window_results("general", "json_schema", [_part(W0, '{"t": '), _part(W1, "[]")])
    body = json.loads(merged.body)
    assert body[0]["raw"] == '{"t": '
    assert "data" not in body[0]
    assert merged.unparsable_window_indexes == (0,)


def _segments(**definitions: list[Any]) -> str:
    return json.dumps(definitions)


def test_time_based_metadata_segments_merge_per_definition_in_time_order() -> None:
    first = _segments(
        chapter=[{"start_time": 10, "end_time": 4400, "metadata": {"title": "b"}}, {"start_time": 0, "end_time": 10}],
        ad=[{"start_time": 100, "end_time": 130}],
    )
    second = _segments(chapter=[{"start_time": 4500, "end_time": 9000}], scene=[{"start_time": 4600, "end_time": 4700}])
    merged = merge_window_results("time_based_metadata", "segment_definitions", [_part(W1, second), _part(W0, first)])
    assert json.loads(merged.body) == {
        "chapter": [
            {"start_time": 0, "end_time": 10},
            {"start_time": 10, "end_time": 4400, "metadata": {"title": "b"}},
            {"start_time": 4500, "end_time": 9000},
        ],
        "ad": [{"start_time": 100, "end_time": 130}],
        "scene": [{"start_time": 4600, "end_time": 4700}],
    }
    assert list(json.loads(merged.body)) == ["chapter", "ad", "scene"]


def test_time_based_metadata_sorts_clock_strings_numerically() -> None:
    first = _segments(c=[{"start_time": "00:10:00", "end_time": "00:20:00"}, {"start_time": "00:02:00.500"}])
    second = _segments(c=[{"start_time": "01:20:00", "end_time": "01:30:00"}, "not-a-segment", {"end_time": "x"}])
    merged = merge_window_results("time_based_metadata", None, [_part(W0, first), _part(W1, second)])
    starts = [s.get("start_time") if isinstance(s, dict) else s for s in json.loads(merged.body)["c"]]
    assert starts == ["00:02:00.500", "00:10:00", "01:20:00", "not-a-segment", None]


def test_time_based_metadata_ties_keep_window_order() -> None:
    first = _segments(c=[{"start_time": 5, "end_time": 6, "w": 0}])
    second = _segments(c=[{"start_time": 5, "end_time": 6, "w": 1}])
    merged = merge_window_results("time_based_metadata", None, [_part(W1, second), _part(W0, first)])
    assert [s["w"] for s in json.loads(merged.body)["c"]] == [0, 1]


@pytest.mark.parametrize("text", ["{", "[]", '{"c": 1}', '"text"'])
def test_time_based_metadata_reports_unparsable_windows(text: str) -> None:
    good = _segments(c=[{"start_time": 1, "end_time": 2}])
    merged = merge_window_results("time_based_metadata", None, [_part(W0, good), _part(W1, text)])
    assert merged.unparsable_window_indexes == (1,)
    assert json.loads(merged.body) == {"c": [{"start_time": 1, "end_time": 2}]}


def test_merge_is_deterministic() -> None:
    parts = [_part(W1, _segments(c=[{"start_time": 4501}])), _part(W0, _segments(c=[{"start_time": 3}]))]
    bodies = {merge_window_results("time_based_metadata", None, order).body for order in (parts, parts[::-1])}
    assert len(bodies) == 1


@pytest.mark.parametrize(
    ("mode", "format_type", "field"),
    [
        ("general", "segment_definitions", "response_format.type"),
        ("time_based_metadata", "json_schema", "response_format.type"),
        ("general", "text", "response_format.type"),
        ("summaries", None, "analysis_mode"),
    ],
)
def test_merge_rejects_mode_format_mismatch(mode: str, format_type: str | None, field: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        merge_window_results(mode, format_type, [_part(W0, "x")])
    assert info.value.field == field


@pytest.mark.parametrize(
    ("parts", "message"),
    [([], "no window results"), ([_part(W0, "a"), _part(W0, "b")], "repeat a window index")],
)
def test_merge_rejects_bad_part_lists(parts: list[WindowResult], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        merge_window_results("general", None, parts)
