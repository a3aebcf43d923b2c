"""Long videos are analysed as several windows (one batch request each); this module plans and re-joins them.

Splitting is balanced: a span needing n windows gets n windows of span/n seconds. A 2 h 30 min video becomes two
windows of 75 min, not 2 h + 30 min, because (a) a remainder split could leave a window below the API's 1 s minimum
(a 2 h 0 min 0.5 s video), (b) a tiny tail window gives the model almost no context yet costs a request, and (c) equal
windows produce comparably detailed results. The content billed is the same either way.

Windows are planned at most ``MAX_PLANNED_WINDOW_SECONDS`` (2 h less a minute): the last window is sent without an
``end_time`` (the platform's idea of the end may differ from the probe's), and a platform that measures the video a
few seconds longer than the probe must still see a window within its 2 h limit.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from videobatch.domain.items import Window
from videobatch.errors import InvalidInputError, RejectedUploadError, RequestValidationError
from videobatch.twelvelabs import limits

# The platform may measure a video longer than our probe (container padding, a last partial frame): this much.
WINDOW_OVERRUN_MARGIN_SECONDS: Final = 60.0
MAX_PLANNED_WINDOW_SECONDS: Final = limits.MAX_WINDOW_SECONDS - WINDOW_OVERRUN_MARGIN_SECONDS


def plan_windows(
    duration_seconds: float, *, start_seconds: float | None = None, end_seconds: float | None = None
) -> list[Window]:
    """Split ``[start, end]`` (default the whole video) into balanced windows of at most MAX_PLANNED_WINDOW_SECONDS.

    A profile window reaching past the end of the video is clipped to the video.
    """
    _check_video_duration(duration_seconds)
    start = 0.0 if start_seconds is None else start_seconds
    end = duration_seconds if end_seconds is None else min(end_seconds, duration_seconds)
    _check_bounds(start, end_seconds)
    span = end - start
    if span < limits.MIN_WINDOW_SECONDS:
        raise RejectedUploadError(
            "video_too_short",
            f"the analysis window {start:g}-{end:g} s of this {duration_seconds:g} s video is {max(span, 0):g} s; "
            f"at least {limits.MIN_WINDOW_SECONDS:g} s is needed",
        )
    count = math.ceil(span / MAX_PLANNED_WINDOW_SECONDS)
    bounds = [start + span * i / count for i in range(count)] + [end]
    return [Window(index=i, start_seconds=bounds[i], end_seconds=bounds[i + 1]) for i in range(count)]


def _check_video_duration(duration_seconds: float) -> None:
    if not math.isfinite(duration_seconds) or duration_seconds < limits.MIN_WINDOW_SECONDS:
        raise RejectedUploadError(
            "video_too_short",
            f"the video lasts {duration_seconds:g} s; at least {limits.MIN_WINDOW_SECONDS:g} s is needed",
        )
    if duration_seconds > limits.MAX_VIDEO_SECONDS:
        raise RejectedUploadError(
            "video_too_long",
            f"the video lasts {duration_seconds / 3600:.2f} h; TwelveLabs analyses videos of up to "
            f"{limits.MAX_VIDEO_SECONDS / 3600:g} h: split it and upload the parts",
        )


def _check_bounds(start: float, end_seconds: float | None) -> None:
    if not math.isfinite(start) or start < 0:
        raise RequestValidationError("start_time", f"must be a finite number >= 0, got {start}")
    if end_seconds is not None and (not math.isfinite(end_seconds) or end_seconds <= start):
        raise RequestValidationError(
            "end_time", f"must be finite and greater than start_time {start}, got {end_seconds}"
        )


class TimeBounds(BaseModel):
    """start_time / end_time for one request; None means "omit it" (the API then uses the video's own edge)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    start_time: float | None
    end_time: float | None


def request_time_bounds(window: Window, *, video_duration_seconds: float) -> TimeBounds:
    """Omit the bounds that coincide with the video's edges: the asset's reported duration may differ slightly
    from the platform's own, and an end_time past the real end would be rejected."""
    return TimeBounds(
        start_time=None if window.start_seconds <= 0 else window.start_seconds,
        end_time=None if window.end_seconds >= video_duration_seconds else window.end_seconds,
    )


class WindowResult(BaseModel):
    """One window's ready output as the results stream returns it (``data.data``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    window: Window
    text: str
    finish_reason: Literal["stop", "length"] | None = None


class MergedResult(BaseModel):
    """A video's result, ready to store: ``body`` is the file content."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    media_type: Literal["text/plain", "application/json"]
    body: str
    window_count: int = Field(ge=1)
    truncated: bool  # some window stopped at max_tokens / the context limit
    unparsable_window_indexes: tuple[int, ...] = ()  # windows whose output should have been JSON but was not


_FORMATS_BY_MODE: Final[dict[str, frozenset[str | None]]] = {
    "general": frozenset({None, "json_schema"}),
    "time_based_metadata": frozenset({None, "segment_definitions"}),
}


def merge_window_results(
    analysis_mode: str, response_format_type: str | None, parts: Sequence[WindowResult]
) -> MergedResult:
    """Join a video's window outputs into one result, deterministically (window order, then time order).

    - general, no response_format: the text itself for one window; for several, each under a
      ``## Window i of n (hh:mm:ss - hh:mm:ss)`` header, separated by blank lines.
    - general, json_schema: always a JSON list ``[{"window": {index, start_seconds, end_seconds}, "data": doc}]`` so
      consumers see one shape whatever the video's length; unparsable output is kept as ``"raw"``.
    - time_based_metadata: the API's own shape ``{definition_id: [segment, ...]}``, segments of all windows
      concatenated and stably sorted by (start_time, end_time), whatever segment_time_format wrote them as.
    """
    allowed = _FORMATS_BY_MODE.get(analysis_mode)
    if allowed is None:
        raise RequestValidationError("analysis_mode", f"must be one of {', '.join(limits.ANALYSIS_MODES)}")
    if response_format_type not in allowed:
        raise RequestValidationError(
            "response_format.type", f"{response_format_type!r} is not valid in {analysis_mode}"
        )
    ordered = _ordered_parts(parts)
    if analysis_mode == "time_based_metadata":
        return _merge_segments(ordered)
    if response_format_type == "json_schema":
        return _merge_documents(ordered)
    return _merge_text(ordered)


def _ordered_parts(parts: Sequence[WindowResult]) -> list[WindowResult]:
    if not parts:
        raise InvalidInputError("no window results to merge")
    indexes = [part.window.index for part in parts]
    if len(set(indexes)) != len(indexes):
        raise InvalidInputError(f"window results repeat a window index: {sorted(indexes)}")
    return sorted(parts, key=lambda part: part.window.index)


def _truncated(parts: Sequence[WindowResult]) -> bool:
    return any(part.finish_reason == "length" for part in parts)


def _merge_text(parts: list[WindowResult]) -> MergedResult:
    if len(parts) == 1:
        body = parts[0].text
    else:
        body = "\n\n".join(f"{_window_header(part.window, len(parts))}\n\n{part.text.strip()}" for part in parts)
    return MergedResult(media_type="text/plain", body=body, window_count=len(parts), truncated=_truncated(parts))


def _window_header(window: Window, count: int) -> str:
    span = f"{format_hms(window.start_seconds)} - {format_hms(window.end_seconds)}"
    return f"## Window {window.index + 1} of {count} ({span})"


def format_hms(seconds: float) -> str:
    """``hh:mm:ss``, with ``.fff`` only when the time is not a whole second."""
    millis = round(seconds * 1000)
    whole, fraction = divmod(millis, 1000)
    text = f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"
    return f"{text}.{fraction:03d}" if fraction else text


def _merge_documents(parts: list[WindowResult]) -> MergedResult:
    documents: list[dict[str, Any]] = []
    unparsable: list[int] = []
    for part in parts:
        entry: dict[str, Any] = {"window": part.window.model_dump()}
        try:
            entry["data"] = json.loads(part.text)
        except ValueError:
            entry["raw"] = part.text
            unparsable.append(part.window.index)
        documents.append(entry)
    return MergedResult(
        media_type="application/json",
        body=json.dumps(documents, ensure_ascii=False),
        window_count=len(parts),
        truncated=_truncated(parts),
        unparsable_window_indexes=tuple(unparsable),
    )


def _merge_segments(parts: list[WindowResult]) -> MergedResult:
    merged: dict[str, list[Any]] = {}
    unparsable: list[int] = []
    for part in parts:
        definitions = _parse_segments(part.text)
        if definitions is None:
            unparsable.append(part.window.index)
            continue
        for definition_id, segments in definitions.items():
            merged.setdefault(definition_id, []).extend(segments)
    for segments in merged.values():
        segments.sort(key=_segment_sort_key)  # stable: ties keep window order
    return MergedResult(
        media_type="application/json",
        body=json.dumps(merged, ensure_ascii=False),
        window_count=len(parts),
        truncated=_truncated(parts),
        unparsable_window_indexes=tuple(unparsable),
    )


def _parse_segments(text: str) -> dict[str, list[Any]] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        return None
    return value


def _segment_sort_key(segment: Any) -> tuple[float, float]:
    if not isinstance(segment, dict):
        return (math.inf, math.inf)
    start = parse_timestamp_seconds(segment.get("start_time"))
    end = parse_timestamp_seconds(segment.get("end_time"))
    return (math.inf if start is None else start, math.inf if end is None else end)


_CLOCK_PATTERN: Final = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def parse_timestamp_seconds(value: object) -> float | None:
    """Seconds from a segment time in any segment_time_format (number, ``"12.5"``, ``hh:mm:ss[.fff]``, ``mm:ss``);
    None when it is none of those."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _CLOCK_PATTERN.match(text)
    if match:
        hours, minutes, seconds = match.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
