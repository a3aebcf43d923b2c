"""Validation of ``POST /analyze/batches`` bodies, by the API's documented rules.

Two phases, because some rules need the videos: ``parse_batch_request`` checks the body alone (shapes,
ranges, per-mode rules) and returns each item's effective parameters (``defaults`` overlaid by the item,
whole-field replacement); ``plan_window`` then checks an item against its video's duration.
Every failure raises ``ApiError`` 400 whose message starts with the dotted path of the offending field, except an
unsupported JSON-schema keyword, which the API answers 422.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from twelvelabs_emulator import limits
from twelvelabs_emulator.api_errors import invalid, missing, unknown

# The fields an item (or ``defaults``) may carry besides ``video`` and ``custom_id``.
PARAM_FIELDS: tuple[str, ...] = (
    "prompt",
    "response_format",
    "temperature",
    "max_tokens",
    "min_segment_duration",
    "max_segment_duration",
    "start_time",
    "end_time",
)
ITEM_ONLY_FIELDS: tuple[str, ...] = ("video", "custom_id")
RESERVED_SEGMENT_FIELD_NAMES: frozenset[str] = frozenset({"start_time", "end_time", "metadata"})
ARRAY_ITEM_TYPES: frozenset[str] = frozenset({"string", "number", "boolean", "integer"})
MAX_MEDIA_SOURCES = 4
MAX_ENUM_VALUES = 100
TOP_LEVEL_FIELDS: frozenset[str] = frozenset({"model_name", "analysis_mode", "requests", "defaults"})


class ItemRequest(BaseModel):
    """One validated request: which asset, its custom id, and the effective parameters."""

    model_config = ConfigDict(frozen=True)

    index: int
    custom_id: str | None
    asset_id: str
    params: dict[str, Any]


class BatchRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    analysis_mode: str
    items: list[ItemRequest]


class Timeline(BaseModel):
    """Where a video's frames lie in the coordinates request times are read in.

    ``duration_seconds`` is what the asset reports (the probe); ``measured_seconds`` what the platform measures
    when it analyses (longer under the window_overrun variant); ``origin_seconds`` the time of the first frame
    (the container's start time under the start_offset variant, else 0).
    """

    model_config = ConfigDict(frozen=True)

    duration_seconds: float
    measured_seconds: float
    origin_seconds: float = 0.0

    @classmethod
    def of(cls, duration_seconds: float) -> Timeline:
        return cls(duration_seconds=duration_seconds, measured_seconds=duration_seconds)

    @property
    def end_seconds(self) -> float:
        return self.origin_seconds + self.measured_seconds


class Window(BaseModel):
    """An item's analysis window on its video; ``too_long`` items fail alone with ``video_duration_too_long``."""

    model_config = ConfigDict(frozen=True)

    start_seconds: float
    end_seconds: float
    too_long: bool

    @property
    def length_seconds(self) -> float:
        return self.end_seconds - self.start_seconds


def parse_batch_request(body: Any) -> BatchRequest:
    """Check the body alone; return each item's effective parameters."""
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    _reject_unknown(body, TOP_LEVEL_FIELDS, "")
    model_name = _required(body, "model_name", "model_name")
    if model_name != limits.MODEL_NAME:
        raise invalid("model_name", f"must be {limits.MODEL_NAME!r} (batches accept no other model)")
    mode = _required(body, "analysis_mode", "analysis_mode")
    if mode not in limits.ANALYSIS_MODES:
        raise invalid("analysis_mode", f"must be one of {', '.join(limits.ANALYSIS_MODES)}")
    defaults = _defaults(body.get("defaults"), mode)
    requests = _required(body, "requests", "requests")
    if not isinstance(requests, list):
        raise invalid("requests", "must be an array")
    if not 1 <= len(requests) <= limits.MAX_REQUESTS_PER_BATCH:
        raise invalid("requests", f"must hold 1 to {limits.MAX_REQUESTS_PER_BATCH} requests, got {len(requests)}")
    items = [_item(raw, index, mode, defaults) for index, raw in enumerate(requests)]
    _check_unique_custom_ids(items)
    return BatchRequest(analysis_mode=mode, items=items)


def plan_window(params: Mapping[str, Any], timeline: Timeline, field: str) -> Window:
    """The item's window on its video; 400 when it cannot exist on that video."""
    if timeline.duration_seconds > limits.MAX_VIDEO_SECONDS:
        lasted = f"{timeline.duration_seconds:.0f} s"
        raise invalid(f"{field}.video", f"the video lasts {lasted}; at most 4 hours are accepted")
    origin = timeline.origin_seconds
    # Times before the first frame hold no video: the window starts at the first frame at the earliest.
    start = max(float(params.get("start_time") or 0.0), origin)
    end = float(params["end_time"]) if params.get("end_time") is not None else timeline.end_seconds
    if start >= origin + timeline.duration_seconds:
        raise invalid(f"{field}.start_time", "must be less than the video duration")
    if end > timeline.end_seconds + _DURATION_TOLERANCE_SECONDS:
        raise invalid(f"{field}.end_time", "must not exceed the video duration")
    end = min(end, timeline.end_seconds)
    if end - start < limits.MIN_WINDOW_SECONDS:
        raise invalid(f"{field}.end_time", "the analysis window must last at least 1 second")
    _check_time_ranges_within(params, timeline.end_seconds, field)
    return Window(start_seconds=start, end_seconds=end, too_long=end - start > limits.MAX_WINDOW_SECONDS)


# Probed durations carry rounding; a client may send the duration it read from the asset as end_time.
_DURATION_TOLERANCE_SECONDS = 0.001


def _check_time_ranges_within(params: Mapping[str, Any], video_end_seconds: float, field: str) -> None:
    response_format = params.get("response_format") or {}
    for d_index, definition in enumerate(response_format.get("segment_definitions") or []):
        for r_index, time_range in enumerate(definition.get("time_ranges") or []):
            if time_range["end_time"] > video_end_seconds + _DURATION_TOLERANCE_SECONDS:
                path = f"{field}.response_format.segment_definitions.{d_index}.time_ranges.{r_index}"
                raise invalid(path, "must fall within the video duration")


def _required(container: Mapping[str, Any], key: str, field: str) -> Any:
    value = container.get(key)
    if value is None:
        raise missing(field)
    return value


def _reject_unknown(container: Mapping[str, Any], allowed: frozenset[str] | tuple[str, ...], prefix: str) -> None:
    for key in container:
        if key not in allowed:
            raise unknown(f"{prefix}.{key}" if prefix else key)


def _defaults(raw: Any, mode: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid("defaults", "must be an object")
    _reject_unknown(raw, PARAM_FIELDS, "defaults")
    params = {key: value for key, value in raw.items() if value is not None}
    _check_params(params, mode, "defaults", effective=False)
    return params


def _item(raw: Any, index: int, mode: str, defaults: Mapping[str, Any]) -> ItemRequest:
    field = f"requests.{index}"
    if not isinstance(raw, dict):
        raise invalid(field, "must be an object")
    _reject_unknown(raw, PARAM_FIELDS + ITEM_ONLY_FIELDS, field)
    asset_id = _video_asset_id(raw.get("video"), f"{field}.video")
    custom_id = _custom_id(raw.get("custom_id"), f"{field}.custom_id")
    own = {key: raw[key] for key in PARAM_FIELDS if raw.get(key) is not None}
    _check_params(own, mode, field, effective=False)
    # Whole-field replacement: an item's prompt or response_format replaces the default object entirely.
    effective = {**defaults, **own}
    _check_params(effective, mode, field, effective=True)
    return ItemRequest(index=index, custom_id=custom_id, asset_id=asset_id, params=effective)


def _video_asset_id(video: Any, field: str) -> str:
    if video is None:
        raise missing(field)
    if not isinstance(video, dict):
        raise invalid(field, "must be an object")
    _reject_unknown(video, ("type", "asset_id"), field)
    if video.get("type") != "asset_id":
        raise invalid(f"{field}.type", "must be 'asset_id'")
    asset_id = video.get("asset_id")
    if not isinstance(asset_id, str) or not asset_id:
        raise missing(f"{field}.asset_id")
    return asset_id


def _custom_id(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not limits.CUSTOM_ID_PATTERN.fullmatch(value):
        raise invalid(field, "must be 1-64 characters of letters, digits, '-' and '_'")
    return value


def _check_unique_custom_ids(items: list[ItemRequest]) -> None:
    seen: dict[str, int] = {}
    for item in items:
        if item.custom_id is None:
            continue
        if item.custom_id in seen:
            raise invalid(
                f"requests.{item.index}.custom_id",
                f"duplicates the custom_id of requests.{seen[item.custom_id]} ({item.custom_id!r})",
            )
        seen[item.custom_id] = item.index


def _check_params(params: Mapping[str, Any], mode: str, field: str, *, effective: bool) -> None:
    """Field rules; ``effective`` adds the rules that hold only once defaults and item are combined."""
    if "prompt" in params:
        _check_prompt(params["prompt"], mode, f"{field}.prompt")
    if "response_format" in params:
        _check_response_format(params["response_format"], mode, f"{field}.response_format")
    if "temperature" in params:
        _check_temperature(params["temperature"], f"{field}.temperature")
    if "max_tokens" in params:
        _check_max_tokens(params["max_tokens"], mode, f"{field}.max_tokens")
    _check_segment_durations(params, mode, field)
    _check_explicit_window(params, field)
    if effective:
        _check_effective(params, mode, field)


def _check_prompt(prompt: Any, mode: str, field: str) -> None:
    if mode == "time_based_metadata":
        raise invalid(field, "is not supported when analysis_mode is time_based_metadata")
    if not isinstance(prompt, dict):
        raise invalid(field, "must be an object {input_text, media_sources?}")
    _reject_unknown(prompt, ("input_text", "media_sources"), field)
    text = prompt.get("input_text")
    if not isinstance(text, str) or not text.strip():
        raise invalid(f"{field}.input_text", "must be a non-empty string")
    _check_media_sources(prompt.get("media_sources"), f"{field}.media_sources")


def _check_media_sources(sources: Any, field: str) -> None:
    if sources is None:
        return
    if not isinstance(sources, list) or len(sources) > MAX_MEDIA_SOURCES:
        raise invalid(field, f"must be an array of at most {MAX_MEDIA_SOURCES} sources")
    for index, source in enumerate(sources):
        if not isinstance(source, dict) or not isinstance(source.get("name"), str):
            raise invalid(f"{field}.{index}", "must be an object with a name")
        if source.get("media_type") != "image":
            raise invalid(f"{field}.{index}.media_type", "must be 'image'")


def _check_response_format(value: Any, mode: str, field: str) -> None:
    if not isinstance(value, dict):
        raise invalid(field, "must be an object")
    kind = value.get("type")
    if mode == "general":
        if kind != "json_schema":
            raise invalid(f"{field}.type", "must be 'json_schema' when analysis_mode is general")
        _reject_unknown(value, ("type", "json_schema"), field)
        schema = value.get("json_schema")
        if not isinstance(schema, dict):
            raise missing(f"{field}.json_schema")
        _check_json_schema(schema, f"{field}.json_schema")
        return
    if kind != "segment_definitions":
        raise invalid(f"{field}.type", "must be 'segment_definitions' when analysis_mode is time_based_metadata")
    _reject_unknown(value, ("type", "segment_definitions", "segment_time_format"), field)
    time_format = value.get("segment_time_format")
    if time_format is not None and time_format not in limits.TIMESTAMP_FORMATS:
        raise invalid(f"{field}.segment_time_format", f"must be one of {sorted(limits.TIMESTAMP_FORMATS)}")
    _check_segment_definitions(value.get("segment_definitions"), f"{field}.segment_definitions")


# Keys whose values are maps of name -> subschema, where the names are user words, not keywords.
_SCHEMA_MAP_KEYWORDS = frozenset({"properties", "$defs", "definitions", "patternProperties"})


def _check_json_schema(schema: Any, field: str) -> None:
    if isinstance(schema, list):
        for index, entry in enumerate(schema):
            _check_json_schema(entry, f"{field}.{index}")
        return
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key in limits.REJECTED_JSON_SCHEMA_KEYWORDS:
            raise invalid(f"{field}.{key}", f"the JSON-schema keyword {key!r} is not supported", status=422)
        if key in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            for name, subschema in value.items():
                _check_json_schema(subschema, f"{field}.{key}.{name}")
        elif isinstance(value, dict | list):
            _check_json_schema(value, f"{field}.{key}")


def _check_segment_definitions(definitions: Any, field: str) -> None:
    if definitions is None:
        raise missing(field)
    if not isinstance(definitions, list) or not 1 <= len(definitions) <= limits.MAX_SEGMENT_DEFINITIONS:
        raise invalid(field, f"must hold 1 to {limits.MAX_SEGMENT_DEFINITIONS} definitions")
    seen_ids: set[str] = set()
    for index, definition in enumerate(definitions):
        path = f"{field}.{index}"
        if not isinstance(definition, dict):
            raise invalid(path, "must be an object")
        _reject_unknown(definition, ("id", "description", "fields", "media_sources", "time_ranges"), path)
        definition_id = definition.get("id")
        if not isinstance(definition_id, str) or not definition_id:
            raise missing(f"{path}.id")
        if definition_id in seen_ids:
            raise invalid(f"{path}.id", f"duplicates the definition id {definition_id!r}")
        seen_ids.add(definition_id)
        if not isinstance(definition.get("description"), str) or not definition["description"]:
            raise missing(f"{path}.description")
        _check_segment_fields(definition.get("fields"), f"{path}.fields")
        _check_media_sources(definition.get("media_sources"), f"{path}.media_sources")
        _check_time_ranges(definition.get("time_ranges"), f"{path}.time_ranges")


def _check_segment_fields(fields: Any, path: str) -> None:
    if fields is None:
        return
    if not isinstance(fields, list):
        raise invalid(path, "must be an array")
    seen: set[str] = set()
    for index, spec in enumerate(fields):
        _check_segment_field(spec, f"{path}.{index}")
        if spec["name"] in seen:
            raise invalid(f"{path}.{index}.name", f"duplicates the field name {spec['name']!r}")
        seen.add(spec["name"])


def _check_segment_field(spec: Any, path: str) -> None:
    if not isinstance(spec, dict):
        raise invalid(path, "must be an object")
    _reject_unknown(spec, ("name", "type", "description", "format", "enum", "items"), path)
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise missing(f"{path}.name")
    if name in RESERVED_SEGMENT_FIELD_NAMES:
        raise invalid(f"{path}.name", f"{name!r} is reserved")
    if not isinstance(spec.get("description"), str):
        raise missing(f"{path}.description")
    kind = spec.get("type")
    if kind == "time_array":
        raise invalid(f"{path}.type", "time_array requires pegasus1.6, which batches do not accept")
    if kind not in limits.SEGMENT_FIELD_TYPES:
        raise invalid(f"{path}.type", f"must be one of {sorted(limits.SEGMENT_FIELD_TYPES)}")
    _check_field_format(spec, kind, path)
    _check_field_extras(spec, kind, path)


def _check_field_format(spec: Mapping[str, Any], kind: str, path: str) -> None:
    time_format = spec.get("format")
    if kind == "timestamp" and time_format not in limits.TIMESTAMP_FORMATS:
        raise invalid(f"{path}.format", f"is required for timestamp; allowed: {sorted(limits.TIMESTAMP_FORMATS)}")
    if kind != "timestamp" and time_format is not None:
        raise invalid(f"{path}.format", "is allowed only when type is timestamp")


def _check_field_extras(spec: Mapping[str, Any], kind: str, path: str) -> None:
    enum = spec.get("enum")
    if enum is not None:
        if kind == "timestamp":
            raise invalid(f"{path}.enum", "is not supported for timestamp fields")
        if not isinstance(enum, list) or len(enum) > MAX_ENUM_VALUES or not all(isinstance(v, str) for v in enum):
            raise invalid(f"{path}.enum", f"must be an array of at most {MAX_ENUM_VALUES} strings")
    items = spec.get("items")
    if kind == "array":
        if not isinstance(items, dict) or items.get("type") not in ARRAY_ITEM_TYPES:
            raise invalid(f"{path}.items", f"is required for arrays; items.type one of {sorted(ARRAY_ITEM_TYPES)}")
    elif items is not None:
        raise invalid(f"{path}.items", "is allowed only when type is array")


def _check_time_ranges(ranges: Any, path: str) -> None:
    if ranges is None:
        return
    if not isinstance(ranges, list) or not ranges:
        raise invalid(path, "must be a non-empty array")
    spans: list[tuple[float, float]] = []
    for index, time_range in enumerate(ranges):
        item_path = f"{path}.{index}"
        if not isinstance(time_range, dict):
            raise invalid(item_path, "must be an object {start_time, end_time}")
        start = _number(time_range.get("start_time"), f"{item_path}.start_time")
        end = _number(time_range.get("end_time"), f"{item_path}.end_time")
        if start < 0 or end - start < limits.MIN_SEGMENT_SECONDS:
            raise invalid(item_path, f"must start at >= 0 and last at least {limits.MIN_SEGMENT_SECONDS:g} seconds")
        spans.append((start, end))
    spans.sort()
    for (_, previous_end), (start, _) in itertools.pairwise(spans):
        if start < previous_end:
            raise invalid(path, "time ranges within a definition must not overlap")


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(field, "must be a number")
    return float(value)


def _check_temperature(value: Any, field: str) -> None:
    number = _number(value, field)
    if not limits.MIN_TEMPERATURE <= number <= limits.MAX_TEMPERATURE:
        raise invalid(field, f"must be between {limits.MIN_TEMPERATURE:g} and {limits.MAX_TEMPERATURE:g}")


def _check_max_tokens(value: Any, mode: str, field: str) -> None:
    low, high = limits.MAX_TOKENS_RANGE[mode]
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, "must be an integer")
    if not low <= value <= high:
        raise invalid(field, f"must be between {low} and {high} in {mode} mode")


def _check_segment_durations(params: Mapping[str, Any], mode: str, field: str) -> None:
    for key in ("min_segment_duration", "max_segment_duration"):
        if key not in params:
            continue
        if mode != "time_based_metadata":
            raise invalid(f"{field}.{key}", "applies only when analysis_mode is time_based_metadata")
        if _number(params[key], f"{field}.{key}") < limits.MIN_SEGMENT_SECONDS:
            raise invalid(f"{field}.{key}", f"must be at least {limits.MIN_SEGMENT_SECONDS:g} seconds")
    low, high = params.get("min_segment_duration"), params.get("max_segment_duration")
    if low is not None and high is not None and high < low:
        raise invalid(f"{field}.max_segment_duration", "must be greater than or equal to min_segment_duration")


def _check_explicit_window(params: Mapping[str, Any], field: str) -> None:
    start = _number(params["start_time"], f"{field}.start_time") if "start_time" in params else None
    end = _number(params["end_time"], f"{field}.end_time") if "end_time" in params else None
    if start is not None and start < 0:
        raise invalid(f"{field}.start_time", "must be >= 0")
    if end is not None and end <= 0:
        raise invalid(f"{field}.end_time", "must be > 0")
    if start is None or end is None:
        return
    if end <= start:
        raise invalid(f"{field}.end_time", "must be greater than start_time")
    if not limits.MIN_WINDOW_SECONDS <= end - start <= limits.MAX_WINDOW_SECONDS:
        raise invalid(f"{field}.end_time", "the window end_time - start_time must last 1 second to 2 hours")


def _check_effective(params: Mapping[str, Any], mode: str, field: str) -> None:
    if mode == "general" and "prompt" not in params:
        raise missing(f"{field}.prompt")
    if mode == "time_based_metadata" and "response_format" not in params:
        raise missing(f"{field}.response_format")
    if not _has_time_ranges(params):
        return
    for key in ("start_time", "end_time", "min_segment_duration", "max_segment_duration"):
        if key in params:
            raise invalid(f"{field}.{key}", "cannot be combined with segment_definitions[].time_ranges")


def _has_time_ranges(params: Mapping[str, Any]) -> bool:
    response_format = params.get("response_format") or {}
    definitions = response_format.get("segment_definitions") or []
    return any(isinstance(d, dict) and d.get("time_ranges") for d in definitions)
