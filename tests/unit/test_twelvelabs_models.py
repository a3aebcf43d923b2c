import copy
from typing import Any, get_args

import pytest

from videobatch.errors import RequestValidationError
from videobatch.twelvelabs.models import (
    KNOWN_BATCH_STATUSES,
    KNOWN_ITEM_STATUSES,
    KNOWN_TASK_STATUSES,
    AnalysisOptions,
    Asset,
    Batch,
    BatchCreateRequest,
    BatchItemRequest,
    BatchResultItem,
    JsonSchemaFormat,
    Page,
    Prompt,
    VideoContext,
)
from videobatch.twelvelabs.validation import (
    effective_options,
    parse_batch_request,
    parse_options,
    validate_batch_request,
    validate_options,
)

SEGMENTS: dict[str, Any] = {
    "type": "segment_definitions",
    "segment_definitions": [
        {
            "id": "scene",
            "description": "scene changes",
            "fields": [{"name": "at", "type": "timestamp", "description": "when", "format": "seconds"}],
        }
    ],
}


def general_batch(**item: Any) -> dict[str, Any]:
    return {
        "model_name": "pegasus1.5",
        "analysis_mode": "general",
        "defaults": {"prompt": {"input_text": "Summarise"}},
        "requests": [{"video": {"type": "asset_id", "asset_id": "a0"}, "custom_id": "v0", **item}],
    }


def tbm_batch(**item: Any) -> dict[str, Any]:
    return {
        "analysis_mode": "time_based_metadata",
        "defaults": {"response_format": copy.deepcopy(SEGMENTS)},
        "requests": [{"video": {"asset_id": "a0"}, **item}],
    }


def segment_format(**definition: Any) -> dict[str, Any]:
    return {
        "type": "segment_definitions",
        "segment_definitions": [{"id": "scene", "description": "d", **definition}],
    }


def with_requests(count: int) -> dict[str, Any]:
    raw = general_batch()
    raw["requests"] = [{"video": {"asset_id": f"a{i}"}} for i in range(count)]
    return raw


def with_raw(**changes: Any) -> dict[str, Any]:
    raw = general_batch()
    raw.update(changes)
    return raw


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("model", with_raw(model_name="pegasus1.2"), "model_name", "only 'pegasus1.5'"),
    ("mode", with_raw(analysis_mode="chat"), "analysis_mode", "'general' or 'time_based_metadata'"),
    ("no requests", with_requests(0), "requests", "1 to 1000"),
    ("too many", with_requests(1001), "requests", "1 to 1000"),
    ("custom_id chars", general_batch(custom_id="has space"), "requests.0.custom_id", "A-Z"),
    ("custom_id length", general_batch(custom_id="x" * 65), "requests.0.custom_id", "1-64"),
    ("structure", general_batch(video={"type": "url", "asset_id": "a"}), "requests.0.video.type", "'asset_id'"),
    ("extra field", general_batch(colour="red"), "requests.0.colour", "Extra inputs"),
    ("temperature", general_batch(temperature=1.5), "requests.0.temperature", "between 0.0 and 1.0"),
    ("temperature<0", general_batch(temperature=-0.1), "requests.0.temperature", "between 0.0 and 1.0"),
    ("tokens general", general_batch(max_tokens=100), "requests.0.max_tokens", "512 and 98304 in general"),
    ("tokens tbm", tbm_batch(max_tokens=1024), "requests.0.max_tokens", "2048 and 98304 in time_based_metadata"),
    ("tokens high", general_batch(max_tokens=98_305), "requests.0.max_tokens", "512 and 98304"),
    ("start<0", general_batch(start_time=-1), "requests.0.start_time", ">= 0"),
    ("end<=start", general_batch(start_time=10, end_time=10), "requests.0.end_time", "greater than start_time"),
    ("window<1s", general_batch(start_time=10, end_time=10.5), "requests.0.end_time", "1-7200 seconds"),
    ("window>2h", general_batch(end_time=7_201), "requests.0.end_time", "1-7200 seconds"),
    ("prompt in tbm", tbm_batch(prompt={"input_text": "x"}), "requests.0.prompt", "not allowed in time_based_metadata"),
    ("general needs prompt", with_raw(defaults=None), "requests.0.prompt", "required in general mode"),
    ("tbm needs format", with_raw(analysis_mode="time_based_metadata", defaults=None), "requests.0.response_format",
     "required in time_based_metadata"),
    ("format for mode", general_batch(response_format=SEGMENTS), "requests.0.response_format.type",
     "'json_schema' in general"),
    ("format for tbm", tbm_batch(response_format={"type": "json_schema", "json_schema": {}}),
     "requests.0.response_format.type", "'segment_definitions' in time_based_metadata"),
    ("schema keyword", general_batch(response_format={"type": "json_schema", "json_schema": {
        "type": "object", "properties": {"title": {"type": "string", "maxLength": 10}}}}),
     "requests.0.response_format.json_schema.properties.title.maxLength", "'maxLength' is not supported"),
    ("schema keyword in list", general_batch(response_format={"type": "json_schema", "json_schema": {
        "anyOf": [{"type": "string"}, {"type": "array", "uniqueItems": True}]}}),
     "requests.0.response_format.json_schema.anyOf.1.uniqueItems", "'uniqueItems'"),
    ("schema additionalProperties", general_batch(response_format={"type": "json_schema", "json_schema": {
        "type": "object", "additionalProperties": False}}),
     "requests.0.response_format.json_schema.additionalProperties", "not supported"),
    ("no definitions", tbm_batch(response_format={"type": "segment_definitions", "segment_definitions": []}),
     "requests.0.response_format.segment_definitions", "1 to 20"),
    ("21 definitions", tbm_batch(response_format={"type": "segment_definitions", "segment_definitions": [
        {"id": f"s{i}", "description": "d"} for i in range(21)]}),
     "requests.0.response_format.segment_definitions", "1 to 20"),
    ("duplicate definition", tbm_batch(response_format={"type": "segment_definitions", "segment_definitions": [
        {"id": "s", "description": "d"}, {"id": "s", "description": "e"}]}),
     "requests.0.response_format.segment_definitions.1.id", "unique"),
    ("field type", tbm_batch(response_format=segment_format(fields=[
        {"name": "f", "type": "date", "description": "d"}])),
     "requests.0.response_format.segment_definitions.0.fields.0.type", "must be one of array, boolean"),
    ("time_array", tbm_batch(response_format=segment_format(fields=[
        {"name": "f", "type": "time_array", "description": "d"}])),
     "requests.0.response_format.segment_definitions.0.fields.0.type", "pegasus1.6"),
    ("timestamp format", tbm_batch(response_format=segment_format(fields=[
        {"name": "f", "type": "timestamp", "description": "d"}])),
     "requests.0.response_format.segment_definitions.0.fields.0.format", "timestamp fields need format"),
    ("segment_time_format", tbm_batch(response_format={**SEGMENTS, "segment_time_format": "minutes"}),
     "requests.0.response_format.segment_time_format", "must be one of"),
    ("min segment", tbm_batch(min_segment_duration=1.5), "requests.0.min_segment_duration", ">= 2 seconds"),
    ("max segment", tbm_batch(max_segment_duration=1), "requests.0.max_segment_duration", ">= 2 seconds"),
    ("min>max", tbm_batch(min_segment_duration=10, max_segment_duration=5), "requests.0.min_segment_duration",
     "must not exceed max_segment_duration"),
    ("short range", tbm_batch(response_format=segment_format(time_ranges=[{"start_time": 0, "end_time": 1.5}])),
     "requests.0.response_format.segment_definitions.0.time_ranges.0", "at least 2 seconds"),
    ("range start<0", tbm_batch(response_format=segment_format(time_ranges=[{"start_time": -2, "end_time": 5}])),
     "requests.0.response_format.segment_definitions.0.time_ranges.0.start_time", ">= 0"),
    ("overlap", tbm_batch(response_format=segment_format(time_ranges=[
        {"start_time": 10, "end_time": 20}, {"start_time": 0, "end_time": 11}])),
     "requests.0.response_format.segment_definitions.0.time_ranges.0", "must not overlap"),
    ("ranges vs window", tbm_batch(start_time=0, end_time=60, response_format=segment_format(
        time_ranges=[{"start_time": 0, "end_time": 5}])),
     "requests.0.response_format.segment_definitions.0.time_ranges", "cannot be combined with start_time, end_time"),
    ("ranges vs durations", tbm_batch(min_segment_duration=3, response_format=segment_format(
        time_ranges=[{"start_time": 0, "end_time": 5}])),
     "requests.0.response_format.segment_definitions.0.time_ranges", "min_segment_duration"),
    ("bad default", with_raw(defaults={"prompt": {"input_text": "x"}, "temperature": 3}), "defaults.temperature",
     "between 0.0 and 1.0"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "field", "rule"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_rule_names_its_field_and_rule(raw: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_batch_request(raw)
    assert caught.value.field == field
    assert rule in caught.value.rule


def test_duplicate_custom_id_names_both_items() -> None:
    raw = general_batch()
    raw["requests"] = [
        {"video": {"asset_id": "a"}, "custom_id": "same"},
        {"video": {"asset_id": "b"}, "custom_id": "other"},
        {"video": {"asset_id": "c"}, "custom_id": "same"},
    ]
    with pytest.raises(RequestValidationError) as caught:
        parse_batch_request(raw)
    assert caught.value.field == "requests.2.custom_id"
    assert "repeats requests.0.custom_id" in caught.value.rule


@pytest.mark.parametrize(
    "raw",
    [
        general_batch(),
        general_batch(start_time=0, end_time=7_200, temperature=0, max_tokens=512),
        general_batch(end_time=1),
        general_batch(response_format={"type": "json_schema", "json_schema": {
            # a property *named* like a rejected keyword is fine
            "type": "object", "properties": {"maxLength": {"type": "number"}}, "required": ["maxLength"]}}),
        tbm_batch(),
        tbm_batch(min_segment_duration=2, max_segment_duration=2, max_tokens=2_048),
        tbm_batch(response_format=segment_format(time_ranges=[
            {"start_time": 5, "end_time": 10}, {"start_time": 0, "end_time": 5}])),  # touching is allowed
        tbm_batch(response_format={**SEGMENTS, "segment_time_format": "hh:mm:ss.fff"}),
    ],
)  # fmt: skip
def test_valid_batches_pass(raw: dict[str, Any]) -> None:
    request = parse_batch_request(raw)
    assert request.model_name == "pegasus1.5"


def test_item_field_replaces_the_default_whole() -> None:
    defaults = AnalysisOptions(prompt=Prompt(input_text="default"), temperature=0.1, start_time=10, end_time=20)
    item = BatchItemRequest(video=VideoContext(asset_id="a"), prompt=Prompt(input_text="mine"), start_time=0)
    effective = effective_options(defaults, item)
    assert effective.prompt == Prompt(input_text="mine")
    assert (effective.temperature, effective.start_time, effective.end_time) == (0.1, 0, 20)


def test_rules_apply_to_the_effective_combination() -> None:
    # Each side is fine alone; together the window is 30 s .. 20 s.
    raw = general_batch(start_time=30)
    raw["defaults"]["end_time"] = 20
    with pytest.raises(RequestValidationError) as caught:
        parse_batch_request(raw)
    assert caught.value.field == "requests.0.end_time"


def test_validate_options_uses_the_prefix() -> None:
    options = AnalysisOptions(prompt=Prompt(input_text="x"), temperature=2)
    with pytest.raises(RequestValidationError) as caught:
        validate_options("general", options, field_prefix="profiles.news")
    assert caught.value.field == "profiles.news.temperature"


def test_validate_options_rejects_an_unknown_mode() -> None:
    with pytest.raises(RequestValidationError) as caught:
        validate_options("chat", AnalysisOptions())
    assert caught.value.field == "analysis_mode"


def test_parse_options_translates_structure_errors_once() -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_options("general", {"prompt": {"input_text": "x"}, "temperature": "warm"}, "profile")
    assert caught.value.field == "profile.temperature"
    assert "valid number" in caught.value.rule
    assert parse_options("general", {"prompt": {"input_text": "x"}}).prompt == Prompt(input_text="x")


def test_validate_batch_request_checks_models_built_in_code() -> None:
    request = BatchCreateRequest(
        analysis_mode="general",
        requests=[BatchItemRequest(video=VideoContext(asset_id="a"), custom_id="bad id")],
        defaults=AnalysisOptions(prompt=Prompt(input_text="x")),
    )
    with pytest.raises(RequestValidationError, match=r"requests\.0\.custom_id"):
        validate_batch_request(request)


def test_request_serialises_without_unset_fields_but_keeps_schema_nulls() -> None:
    request = parse_batch_request(
        general_batch(response_format={"type": "json_schema", "json_schema": {"type": "string", "default": None}})
    )
    body = request.model_dump(mode="json", exclude_none=True)
    assert body["requests"][0] == {
        "video": {"type": "asset_id", "asset_id": "a0"},
        "custom_id": "v0",
        "response_format": {"type": "json_schema", "json_schema": {"type": "string", "default": None}},
    }
    assert isinstance(request.requests[0].response_format, JsonSchemaFormat)


def test_response_models_tolerate_new_fields_and_read_the_asset_id_alias() -> None:
    asset = Asset.model_validate({"_id": "a1", "status": "ready", "duration": 12.5, "brand_new": {"x": 1}})
    assert (asset.id, asset.status, asset.duration) == ("a1", "ready", 12.5)
    page = Page[Batch].model_validate(
        {
            "data": [
                {
                    "batch_id": "b" * 24,
                    "analysis_mode": "general",
                    "model_name": "pegasus1.5",
                    "status": "processing",
                    "total_items": 2,
                    "created_at": "2026-01-01T00:00:00Z",
                    "expires_at": "2026-01-02T00:00:00Z",
                    "ready_items": 1,
                    "queued_items": 1,
                    "priority": "new field",
                }
            ],
            "page_info": {"page": 1, "total_page": 1},
        }
    )
    assert page.data[0].ready_items == 1


def test_result_item_shapes() -> None:
    ready = BatchResultItem.model_validate_json(
        '{"task_id":"t","custom_id":"c","status":"ready","data":{"generation_id":"g","data":"text",'
        '"finish_reason":"stop","usage":{"output_tokens":5}}}'
    )
    assert ready.data is not None
    assert ready.data.usage.output_tokens == 5
    failed = BatchResultItem.model_validate_json('{"task_id":"t","status":"failed","error":{"message":"no"}}')
    assert failed.error is not None
    assert failed.error.code is None


BATCH = {
    "batch_id": "b" * 24,
    "analysis_mode": "general",
    "model_name": "pegasus1.5",
    "status": "processing",
    "total_items": 2,
    "created_at": "2026-01-01T00:00:00Z",
    "expires_at": "2026-01-02T00:00:00Z",
}


def _sdk_literal_values(alias: Any) -> frozenset[str]:
    """The documented values of one of the SDK's open enums (``Union[Literal[...], Any]``)."""
    literal = next(arg for arg in get_args(alias) if get_args(arg))
    return frozenset(get_args(literal))


def test_known_values_are_the_sdks() -> None:
    from twelvelabs.types import AnalyzeTaskStatus, BatchItemStatus, BatchStatus

    assert _sdk_literal_values(BatchStatus) == KNOWN_BATCH_STATUSES
    assert _sdk_literal_values(BatchItemStatus) == KNOWN_ITEM_STATUSES
    assert _sdk_literal_values(AnalyzeTaskStatus) <= KNOWN_TASK_STATUSES


def test_status_and_finish_reason_fields_are_open() -> None:
    batch = Batch.model_validate({**BATCH, "status": "validating"})
    assert batch.status == "validating"
    assert batch.status not in KNOWN_BATCH_STATUSES
    line = BatchResultItem.model_validate_json(
        '{"task_id":"t","status":"ready","data":{"generation_id":"g","data":"x",'
        '"finish_reason":"content_filter","usage":{"output_tokens":1}},"error":{"message":"partial"}}'
    )
    assert line.data is not None
    assert (line.data.finish_reason, line.data.known_finish_reason) == ("content_filter", None)
    assert line.warning is not None
    assert line.parsed


def test_the_emulator_enforces_the_same_documented_numbers() -> None:
    """Two copies on purpose (the emulator imports nothing of the client): a wrong one shows up here."""
    from twelvelabs_emulator import limits as documented
    from videobatch.twelvelabs import limits

    for name in (
        "MAX_REQUESTS_PER_BATCH",
        "MAX_CONTENT_SECONDS_PER_BATCH",
        "MAX_ACTIVE_BATCHES",
        "BATCH_EXPIRY_SECONDS",
        "RESULT_RETENTION_SECONDS",
        "MIN_WINDOW_SECONDS",
        "MAX_WINDOW_SECONDS",
        "MAX_VIDEO_SECONDS",
        "MAX_TOKENS_RANGE",
        "DEFAULT_MAX_TOKENS",
        "REJECTED_JSON_SCHEMA_KEYWORDS",
        "MAX_DIRECT_UPLOAD_BYTES",
        "MAX_URL_UPLOAD_BYTES",
        "MAX_MULTIPART_UPLOAD_BYTES",
        "MAX_PAGE_LIMIT",
        "MAX_PRESIGNED_URLS_PER_CALL",
    ):
        assert getattr(limits, name) == getattr(documented, name), name
    assert limits.MAX_URL_UPLOAD_BYTES == 4_000_000_000  # decimal: 4.1 GB must not go by URL
