"""The batch API's documented request rules, checked before sending.

Every violation raises RequestValidationError naming a dotted field path (``requests.3.custom_id``) and the rule,
so a bad profile or item is reported precisely instead of as an opaque 400 for a whole batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from videobatch.errors import RequestValidationError
from videobatch.twelvelabs import limits
from videobatch.twelvelabs.models import (
    OPTION_FIELDS,
    AnalysisOptions,
    BatchCreateRequest,
    JsonSchemaFormat,
    MediaSource,
    SegmentDefinition,
    SegmentDefinitionsFormat,
    SegmentField,
    TimeRange,
)

ModelT = TypeVar("ModelT", bound=BaseModel)

# Keys whose children are names chosen by the schema author, not keywords: a property called "maxLength" is fine.
_SCHEMA_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_RESPONSE_FORMAT_TAGS = frozenset({"json_schema", "segment_definitions"})
_EXPECTED_FORMAT = {"general": "json_schema", "time_based_metadata": "segment_definitions"}


def path(prefix: str, *parts: str | int) -> str:
    """A dotted field path; an empty prefix adds nothing."""
    return ".".join(str(part) for part in (prefix, *parts) if part != "")


def effective_options(defaults: AnalysisOptions | None, item: AnalysisOptions) -> AnalysisOptions:
    """What the API applies to one item: each field the item sets replaces the default whole (no deep merge)."""
    values: dict[str, Any] = {}
    for name in OPTION_FIELDS:
        own = getattr(item, name)
        values[name] = own if own is not None else getattr(defaults, name, None)
    return AnalysisOptions.model_construct(**values)


def validate_options(analysis_mode: str, options: AnalysisOptions, field_prefix: str = "") -> None:
    """Check the options one item will run with (defaults already applied) against the mode's rules."""
    _check_option_values(analysis_mode, options, field_prefix)
    _check_required(analysis_mode, options, field_prefix)


def validate_batch_request(request: BatchCreateRequest) -> None:
    """Check a whole batch: model, request count, custom_ids, the defaults, and every item's effective options."""
    if request.model_name != limits.MODEL_NAME:
        raise RequestValidationError("model_name", f"batches accept only '{limits.MODEL_NAME}'")
    _check_mode(request.analysis_mode)
    count = len(request.requests)
    if not 1 <= count <= limits.MAX_REQUESTS_PER_BATCH:
        raise RequestValidationError(
            "requests", f"must hold 1 to {limits.MAX_REQUESTS_PER_BATCH} requests, got {count}"
        )
    _check_custom_ids(request)
    if request.defaults is not None:
        # The defaults need not be complete (items may supply the prompt), but what they do say must be valid.
        _check_option_values(request.analysis_mode, request.defaults, "defaults")
    for index, item in enumerate(request.requests):
        validate_options(request.analysis_mode, effective_options(request.defaults, item), path("requests", index))


def parse_model(model: type[ModelT], raw: Mapping[str, Any], field_prefix: str = "") -> ModelT:
    """Build a request model from raw data, reporting the first structural problem as RequestValidationError."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RequestValidationError(path(field_prefix, *_clean_location(first["loc"])), first["msg"]) from exc


def parse_batch_request(raw: Mapping[str, Any]) -> BatchCreateRequest:
    """Raw dict → a BatchCreateRequest that passed both the structural and the documented rules."""
    request = parse_model(BatchCreateRequest, raw)
    validate_batch_request(request)
    return request


def parse_options(analysis_mode: str, raw: Mapping[str, Any], field_prefix: str = "") -> AnalysisOptions:
    """Raw dict (a profile's options) → validated AnalysisOptions for ``analysis_mode``."""
    options = parse_model(AnalysisOptions, raw, field_prefix)
    validate_options(analysis_mode, options, field_prefix)
    return options


def _clean_location(location: tuple[int | str, ...]) -> Iterator[int | str]:
    # Pydantic inserts the discriminator's value after "response_format"; it is not part of the wire path.
    previous: int | str | None = None
    for position, part in enumerate(location):
        is_tag = previous == "response_format" and part in _RESPONSE_FORMAT_TAGS and position + 1 < len(location)
        if not is_tag:
            yield part
        previous = part


def _check_mode(analysis_mode: str) -> None:
    if analysis_mode not in limits.ANALYSIS_MODES:
        raise RequestValidationError("analysis_mode", f"must be one of {', '.join(limits.ANALYSIS_MODES)}")


def _check_custom_ids(request: BatchCreateRequest) -> None:
    seen: dict[str, int] = {}
    for index, item in enumerate(request.requests):
        if item.custom_id is None:
            continue
        field = path("requests", index, "custom_id")
        # fullmatch: with match, the pattern's '$' would let a trailing newline through.
        if not limits.CUSTOM_ID_PATTERN.fullmatch(item.custom_id):
            raise RequestValidationError(field, "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        if item.custom_id in seen:
            first = path("requests", seen[item.custom_id], "custom_id")
            raise RequestValidationError(field, f"must be unique within the batch; {item.custom_id!r} repeats {first}")
        seen[item.custom_id] = index


def _check_required(analysis_mode: str, options: AnalysisOptions, prefix: str) -> None:
    if analysis_mode == "general" and options.prompt is None:
        raise RequestValidationError(path(prefix, "prompt"), "required in general mode (on the item or in defaults)")
    if analysis_mode == "time_based_metadata" and options.response_format is None:
        raise RequestValidationError(
            path(prefix, "response_format"), "required in time_based_metadata mode (type segment_definitions)"
        )


def _check_option_values(analysis_mode: str, options: AnalysisOptions, prefix: str) -> None:
    _check_mode(analysis_mode)
    if options.prompt is not None and analysis_mode == "time_based_metadata":
        raise RequestValidationError(path(prefix, "prompt"), "not allowed in time_based_metadata mode")
    if options.prompt is not None:
        _check_media_sources(options.prompt.media_sources, path(prefix, "prompt", "media_sources"))
    _check_temperature(options, prefix)
    _check_max_tokens(analysis_mode, options, prefix)
    _check_window(options, prefix)
    _check_segment_durations(options, prefix)
    if options.response_format is not None:
        _check_response_format(analysis_mode, options, prefix)


def _check_temperature(options: AnalysisOptions, prefix: str) -> None:
    temperature = options.temperature
    if temperature is not None and not limits.MIN_TEMPERATURE <= temperature <= limits.MAX_TEMPERATURE:
        raise RequestValidationError(
            path(prefix, "temperature"), f"must be between {limits.MIN_TEMPERATURE} and {limits.MAX_TEMPERATURE}"
        )


def _check_max_tokens(analysis_mode: str, options: AnalysisOptions, prefix: str) -> None:
    low, high = limits.MAX_TOKENS_RANGE[analysis_mode]
    if options.max_tokens is not None and not low <= options.max_tokens <= high:
        raise RequestValidationError(
            path(prefix, "max_tokens"), f"must be between {low} and {high} in {analysis_mode} mode"
        )


def _check_window(options: AnalysisOptions, prefix: str) -> None:
    start, end = options.start_time, options.end_time
    if start is not None and start < 0:
        raise RequestValidationError(path(prefix, "start_time"), "must be >= 0")
    if end is None:
        # Without end_time the window runs to the end of the video, which only the asset's duration can check.
        return
    start = start or 0.0
    if end <= start:
        raise RequestValidationError(path(prefix, "end_time"), "must be greater than start_time")
    if not limits.MIN_WINDOW_SECONDS <= end - start <= limits.MAX_WINDOW_SECONDS:
        raise RequestValidationError(
            path(prefix, "end_time"),
            f"window end_time - start_time must be {limits.MIN_WINDOW_SECONDS:g}-{limits.MAX_WINDOW_SECONDS:g} seconds",
        )


def _check_segment_durations(options: AnalysisOptions, prefix: str) -> None:
    for name in ("min_segment_duration", "max_segment_duration"):
        value = getattr(options, name)
        if value is not None and value < limits.MIN_SEGMENT_SECONDS:
            raise RequestValidationError(path(prefix, name), f"must be >= {limits.MIN_SEGMENT_SECONDS:g} seconds")
    low, high = options.min_segment_duration, options.max_segment_duration
    if low is not None and high is not None and low > high:
        raise RequestValidationError(path(prefix, "min_segment_duration"), "must not exceed max_segment_duration")


def _check_response_format(analysis_mode: str, options: AnalysisOptions, prefix: str) -> None:
    response_format = options.response_format
    expected = _EXPECTED_FORMAT[analysis_mode]
    if response_format is None or response_format.type != expected:
        raise RequestValidationError(
            path(prefix, "response_format", "type"), f"must be '{expected}' in {analysis_mode} mode"
        )
    format_path = path(prefix, "response_format")
    if isinstance(response_format, JsonSchemaFormat):
        _check_json_schema(response_format.json_schema, path(format_path, "json_schema"))
    elif isinstance(response_format, SegmentDefinitionsFormat):
        _check_segment_format(response_format, options, format_path)


def _check_json_schema(schema: Any, field: str) -> None:
    if isinstance(schema, list):
        for index, element in enumerate(schema):
            _check_json_schema(element, path(field, index))
        return
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key in limits.REJECTED_JSON_SCHEMA_KEYWORDS:
            raise RequestValidationError(path(field, key), f"JSON-schema keyword '{key}' is not supported")
        if key in _SCHEMA_NAME_MAPS and isinstance(value, dict):
            for name, subschema in value.items():
                _check_json_schema(subschema, path(field, key, name))
        else:
            _check_json_schema(value, path(field, key))


def _check_segment_format(response_format: SegmentDefinitionsFormat, options: AnalysisOptions, prefix: str) -> None:
    time_format = response_format.segment_time_format
    if time_format is not None and time_format not in limits.TIMESTAMP_FORMATS:
        raise RequestValidationError(
            path(prefix, "segment_time_format"), f"must be one of {', '.join(sorted(limits.TIMESTAMP_FORMATS))}"
        )
    definitions = response_format.segment_definitions
    definitions_path = path(prefix, "segment_definitions")
    if not 1 <= len(definitions) <= limits.MAX_SEGMENT_DEFINITIONS:
        raise RequestValidationError(
            definitions_path, f"must hold 1 to {limits.MAX_SEGMENT_DEFINITIONS} definitions, got {len(definitions)}"
        )
    seen: dict[str, int] = {}
    for index, definition in enumerate(definitions):
        definition_path = path(definitions_path, index)
        if definition.id in seen:
            raise RequestValidationError(
                path(definition_path, "id"),
                f"must be unique; {definition.id!r} repeats {path(definitions_path, seen[definition.id], 'id')}",
            )
        seen[definition.id] = index
        _check_segment_definition(definition, options, definition_path)


def _check_segment_definition(definition: SegmentDefinition, options: AnalysisOptions, prefix: str) -> None:
    _check_media_sources(definition.media_sources, path(prefix, "media_sources"))
    for index, segment_field in enumerate(definition.fields or []):
        _check_segment_field(segment_field, path(prefix, "fields", index))
    if definition.time_ranges:
        _check_time_ranges(definition.time_ranges, options, path(prefix, "time_ranges"))


def _check_segment_field(segment_field: SegmentField, prefix: str) -> None:
    if segment_field.type == "time_array":
        raise RequestValidationError(path(prefix, "type"), "'time_array' needs pegasus1.6 and is not valid in batches")
    if segment_field.type not in limits.SEGMENT_FIELD_TYPES:
        raise RequestValidationError(
            path(prefix, "type"), f"must be one of {', '.join(sorted(limits.SEGMENT_FIELD_TYPES))}"
        )
    if segment_field.name in limits.RESERVED_SEGMENT_FIELD_NAMES:
        raise RequestValidationError(
            path(prefix, "name"), f"{segment_field.name!r} is reserved (every segment carries it already)"
        )
    is_timestamp = segment_field.type == "timestamp"
    if is_timestamp and segment_field.format not in limits.TIMESTAMP_FORMATS:
        raise RequestValidationError(
            path(prefix, "format"), f"timestamp fields need format {' | '.join(sorted(limits.TIMESTAMP_FORMATS))}"
        )
    if not is_timestamp and segment_field.format is not None:
        raise RequestValidationError(path(prefix, "format"), "allowed only when type is timestamp")
    if segment_field.enum is not None and (is_timestamp or len(segment_field.enum) > limits.MAX_ENUM_VALUES):
        raise RequestValidationError(
            path(prefix, "enum"), f"at most {limits.MAX_ENUM_VALUES} values, and not for timestamp fields"
        )
    items = segment_field.items
    if segment_field.type == "array":
        if items is None or items.type not in limits.ARRAY_ITEM_TYPES or items.fields is not None:
            raise RequestValidationError(
                path(prefix, "items"),
                f"array fields need items.type one of {', '.join(sorted(limits.ARRAY_ITEM_TYPES))} and no items.fields",
            )
    elif items is not None:
        raise RequestValidationError(path(prefix, "items"), "allowed only when type is array")


def _check_media_sources(sources: list[MediaSource] | None, prefix: str) -> None:
    if sources is None:
        return
    if len(sources) > limits.MAX_MEDIA_SOURCES:
        raise RequestValidationError(prefix, f"at most {limits.MAX_MEDIA_SOURCES} sources")
    for index, source in enumerate(sources):
        if source.media_type != limits.MEDIA_SOURCE_TYPE:
            raise RequestValidationError(path(prefix, index, "media_type"), f"must be '{limits.MEDIA_SOURCE_TYPE}'")


def _check_time_ranges(time_ranges: list[TimeRange], options: AnalysisOptions, prefix: str) -> None:
    exclusive = [
        name
        for name in ("start_time", "end_time", "min_segment_duration", "max_segment_duration")
        if getattr(options, name) is not None
    ]
    if exclusive:
        raise RequestValidationError(prefix, f"cannot be combined with {', '.join(exclusive)}")
    for index, time_range in enumerate(time_ranges):
        if time_range.start_time < 0:
            raise RequestValidationError(path(prefix, index, "start_time"), "must be >= 0")
        if time_range.end_time - time_range.start_time < limits.MIN_SEGMENT_SECONDS:
            raise RequestValidationError(
                path(prefix, index),
                f"end_time must exceed start_time by at least {limits.MIN_SEGMENT_SECONDS:g} seconds",
            )
    ordered = sorted(enumerate(time_ranges), key=lambda pair: pair[1].start_time)
    for (earlier_index, earlier), (later_index, later) in itertools.pairwise(ordered):
        # Touching boundaries ([0, 5] and [5, 10]) are allowed.
        if later.start_time < earlier.end_time:
            raise RequestValidationError(path(prefix, later_index), f"must not overlap {path(prefix, earlier_index)}")
