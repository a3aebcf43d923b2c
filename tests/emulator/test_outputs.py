import itertools
import json
import math
import re
from typing import Any

import jsonschema
import pytest

from twelvelabs_emulator.outputs import (
    CHARACTERS_PER_TOKEN,
    GeneratedOutput,
    OutputGenerationError,
    format_time,
    generate_output,
)

ASSET_ID = "6650a1b2c3d4e5f6a7b8c9d0"
STRUCTURED_SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "topics": {"type": "array", "items": {"type": "string"}},
        "objects": {"type": "array", "items": {"type": "string"}},
        "scenes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "start": {"type": "number"},
                    "end": {"type": "number"},
                    "description": {"type": "string"},
                },
                "required": ["start", "end", "description"],
            },
        },
        "safety": {
            "type": "object",
            "properties": {
                "is_safe": {"type": "boolean"},
                "flags": {"type": "array", "items": {"type": "string", "enum": ["violence", "nudity", "none"]}},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["is_safe"],
        },
    },
    "required": ["title", "summary", "topics", "objects", "scenes", "safety"],
}


def general(
    request_params: dict[str, Any],
    *,
    seed: str = "task-1",
    window: tuple[float, float] = (60.0, 360.0),
    filename: str | None = "clip.mp4",
) -> GeneratedOutput:
    return generate_output(
        analysis_mode="general",
        request_params=request_params,
        asset_id=ASSET_ID,
        asset_filename=filename,
        video_duration_seconds=600.0,
        window_start_seconds=window[0],
        window_end_seconds=window[1],
        seed=seed,
    )


def segments(
    response_format: dict[str, Any],
    *,
    window: tuple[float, float] = (0.0, 600.0),
    seed: str = "task-1",
    **request_params: Any,
) -> dict[str, list[dict[str, Any]]]:
    output = generate_output(
        analysis_mode="time_based_metadata",
        request_params={"response_format": response_format, **request_params},
        asset_id=ASSET_ID,
        asset_filename="match.mp4",
        video_duration_seconds=9_000.0,
        window_start_seconds=window[0],
        window_end_seconds=window[1],
        seed=seed,
    )
    assert output.finish_reason == "stop"
    parsed: dict[str, list[dict[str, Any]]] = json.loads(output.data)
    return parsed


def definitions(*items: dict[str, Any], time_format: str | None = None) -> dict[str, Any]:
    response_format: dict[str, Any] = {"type": "segment_definitions", "segment_definitions": list(items)}
    if time_format is not None:
        response_format["segment_time_format"] = time_format
    return response_format


def seconds_of(value: float | str) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def validate(schema: dict[str, Any], data: str) -> Any:
    instance = json.loads(data)
    validator = jsonschema.Draft202012Validator
    validator(schema, format_checker=validator.FORMAT_CHECKER).validate(instance)
    return instance


# --- general, plain text ----------------------------------------------------------------------------------------


def test_plain_text_names_asset_window_and_prompt() -> None:
    output = general({"prompt": {"input_text": "List the speakers"}})
    assert output.finish_reason == "stop"
    assert ASSET_ID in output.data
    assert "clip.mp4" in output.data
    assert "00:01:00-00:06:00" in output.data
    assert "List the speakers" in output.data
    assert output.output_tokens == math.ceil(len(output.data) / CHARACTERS_PER_TOKEN)


def test_plain_text_without_filename_or_prompt_uses_the_asset_id() -> None:
    output = general({}, filename=None)
    assert f"Analysis of {ASSET_ID}" in output.data
    assert "(no prompt given)" in output.data


def test_plain_text_over_max_tokens_is_cut_with_length() -> None:
    output = general({"prompt": {"input_text": "Describe"}, "max_tokens": 20})
    assert output.finish_reason == "length"
    assert output.output_tokens == 20
    assert len(output.data) == 20 * CHARACTERS_PER_TOKEN


def test_same_inputs_same_bytes_and_seed_varies_wording() -> None:
    params = {"prompt": {"input_text": "Describe"}, "response_format": None}
    assert general(params) == general(params)
    assert len({general(params, seed=f"task-{n}").data for n in range(6)}) > 1


def test_input_tokens_grow_with_the_window() -> None:
    short = general({"prompt": {"input_text": "x"}}, window=(0, 60))
    long = general({"prompt": {"input_text": "x"}}, window=(0, 3_600))
    assert long.input_tokens > short.input_tokens > 0


# --- general, JSON schema ---------------------------------------------------------------------------------------


def test_structured_summary_validates_and_scenes_tile_the_window() -> None:
    output = general({"response_format": {"type": "json_schema", "json_schema": STRUCTURED_SUMMARY_SCHEMA}})
    summary = validate(STRUCTURED_SUMMARY_SCHEMA, output.data)
    assert output.finish_reason == "stop"
    assert "clip.mp4" in summary["title"]
    assert summary["scenes"][0]["start"] == 60.0
    assert summary["scenes"][-1]["end"] == 360.0
    for earlier, later in itertools.pairwise(summary["scenes"]):
        assert earlier["start"] < earlier["end"] <= later["start"]
    assert list(summary) == list(STRUCTURED_SUMMARY_SCHEMA["properties"])


SCHEMAS: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "integer", "minimum": 10, "maximum": 12},
    {"type": "integer", "exclusiveMinimum": 4, "exclusiveMaximum": 6},
    {"type": "number", "exclusiveMinimum": 0.5, "exclusiveMaximum": 0.6},
    {"type": "number", "minimum": 100},
    {"type": "number", "exclusiveMaximum": -5},
    {"type": "boolean"},
    {"type": "null"},
    {"type": ["string", "null"]},
    {"const": "fixed"},
    {"enum": ["red", "green", 3, None]},
    {"type": "array", "minItems": 5, "items": {"type": "integer", "minimum": 0}},
    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "undeclared"]},
    {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "at": {"type": "string", "format": "time"},
            "link": {"type": "string", "format": "uri"},
            "id": {"type": "string", "format": "uuid"},
            "contact": {"type": "string", "format": "email"},
        },
    },
    {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
            "slug": {"type": "string", "pattern": r"^[a-z]+(-[a-z]+)*$"},
            "not_digits": {"type": "string", "pattern": r"^[^0-9]{2,}$"},
            "choice": {"type": "string", "pattern": r"^(cat|dog)s?$"},
            "spaced": {"type": "string", "pattern": r"\w+\s\w+"},
        },
    },
    {
        "$defs": {"person": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
        "type": "object",
        "properties": {
            "host": {"$ref": "#/$defs/person"},
            "guests": {"type": "array", "items": {"$ref": "#/$defs/person"}},
        },
    },
    {
        "definitions": {"tag": {"type": "string", "enum": ["a", "b"]}},
        "type": "array",
        "items": {"$ref": "#/definitions/tag"},
    },
    {"anyOf": [{"type": "integer", "minimum": 5, "maximum": 1}, {"type": "string"}]},
    {"oneOf": [{"type": "number"}, {"type": "integer"}, {"type": "string"}]},
    {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["label"],
            }
        },
        "$ref": "#/$defs/node",
    },
    {"type": "object", "properties": {"anything": {}, "also": True, "duration_seconds": {"type": "number"}}},
    {"properties": {"implicit_object": {"items": {"type": "boolean"}}}},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[json.dumps(schema)[:60] for schema in SCHEMAS])
def test_instance_validates_against_schema(schema: dict[str, Any]) -> None:
    output = general({"response_format": {"type": "json_schema", "json_schema": schema}})
    validate(schema, output.data)
    assert general({"response_format": {"type": "json_schema", "json_schema": schema}}) == output


def test_one_of_skips_a_branch_another_branch_also_accepts() -> None:
    # A whole number matches both "number" and "integer", so oneOf must move on to the string branch.
    schema = {"oneOf": [{"type": "number"}, {"type": "integer"}, {"type": "string"}]}
    assert isinstance(
        json.loads(general({"response_format": {"type": "json_schema", "json_schema": schema}}).data), str
    )


def test_timestamps_and_reserved_time_names_follow_their_declared_type() -> None:
    schema = {
        "type": "object",
        "properties": {
            "highlight": {"type": "timestamp", "format": "hh:mm:ss"},
            "peak": {"type": "timestamp", "format": "seconds"},
            "start_time": {"type": "string"},
            "end_time": {"type": "integer"},
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "start_time": {"type": "number"},
                        "at": {"type": "timestamp", "format": "hh:mm:ss.fff"},
                    },
                },
            },
        },
    }
    value = json.loads(general({"response_format": {"type": "json_schema", "json_schema": schema}}).data)
    assert value["highlight"] == "00:03:30"
    assert value["peak"] == 210.0
    assert value["start_time"] == "00:01:00.000"
    assert value["end_time"] == 360
    assert [event["start_time"] for event in value["events"]] == [60.0, 160.0, 260.0]
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", value["events"][0]["at"])


def test_json_over_max_tokens_is_cut_like_the_platform() -> None:
    schema = {"type": "array", "minItems": 200, "items": {"type": "string"}}
    output = general({"response_format": {"type": "json_schema", "json_schema": schema}, "max_tokens": 512})
    assert output.finish_reason == "length"
    assert output.output_tokens == 512
    with pytest.raises(json.JSONDecodeError):
        json.loads(output.data)


UNSATISFIABLE: list[tuple[Any, str]] = [
    (False, "no value satisfies"),
    ({"type": "object", "properties": {"x": False}}, "no value satisfies"),
    ({"enum": []}, "empty enum"),
    ({"$ref": "#/$defs/missing"}, "unresolvable"),
    ({"$ref": "https://example.com/schema.json"}, "unsupported \\$ref"),
    ({"type": "integer", "minimum": 1.2, "maximum": 1.8}, "no integer"),
    ({"type": "number", "exclusiveMinimum": 3, "maximum": 3}, "no number"),
    ({"type": "number", "minimum": 4, "maximum": 3}, "no number"),
    ({"anyOf": [False, {"enum": []}]}, "no anyOf branch"),
    ({"oneOf": [{"type": "integer"}, {"type": "integer"}]}, "no oneOf branch"),
    ({"type": "string", "pattern": "(?=x)y"}, "pattern"),
    ({"type": "string", "pattern": "(unclosed"}, "pattern"),
    ({"type": "string", "pattern": r"(a)\1"}, "pattern"),
    ({"type": "string", "pattern": "[^\\w\\W]"}, "pattern"),
    ({"$defs": {"loop": {"type": "object", "properties": {"next": {"$ref": "#/$defs/loop"}}, "required": ["next"]}},
      "$ref": "#/$defs/loop"}, "nests deeper"),
]  # fmt: skip


@pytest.mark.parametrize(("schema", "message"), UNSATISFIABLE, ids=[m for _, m in UNSATISFIABLE])
def test_unsatisfiable_schema_raises(schema: Any, message: str) -> None:
    with pytest.raises(OutputGenerationError, match=message) as caught:
        general({"response_format": {"type": "json_schema", "json_schema": schema}})
    assert caught.value.code == "schema_unsatisfiable"


# --- time_based_metadata ----------------------------------------------------------------------------------------


def assert_segments_within(
    found: list[dict[str, Any]],
    *,
    start: float,
    end: float,
    min_seconds: float | None = None,
    max_seconds: float | None = None,
    tolerance: float = 0.0005,
) -> list[tuple[float, float]]:
    spans = [(seconds_of(s["start_time"]), seconds_of(s["end_time"])) for s in found]
    assert spans, "expected at least one segment"
    for low, high in spans:
        assert start - tolerance <= low < high <= end + tolerance
        if min_seconds is not None:
            assert high - low >= min_seconds - 2 * tolerance
        if max_seconds is not None:
            assert high - low <= max_seconds + 2 * tolerance
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert first_end <= second_start + tolerance
    return spans


def test_default_segments_tile_the_window_about_thirty_seconds_each() -> None:
    found = segments(definitions({"id": "scenes", "description": "each scene"}))["scenes"]
    spans = assert_segments_within(found, start=0, end=600)
    assert len(spans) == 20
    assert spans[0][0] == 0
    assert spans[-1][1] == 600
    assert all(first[1] == second[0] for first, second in itertools.pairwise(spans))
    assert all(isinstance(s["start_time"], float) and s["metadata"] == {} for s in found)


@pytest.mark.parametrize(
    ("window", "min_seconds", "max_seconds"),
    [
        ((125.5, 1_000.0), None, None),
        ((125.5, 1_000.0), 45.0, None),
        ((300.0, 400.0), None, 7.0),
        ((10.0, 20.0), 6.0, 7.0),
        ((0.0, 7_200.0), 60.0, 90.0),
        ((3.0, 5.0), 2.0, 2.0),
    ],
)
def test_segments_respect_window_and_duration_bounds(
    window: tuple[float, float], min_seconds: float | None, max_seconds: float | None
) -> None:
    bounds = {
        key: value
        for key, value in (("min_segment_duration", min_seconds), ("max_segment_duration", max_seconds))
        if value
    }
    found = segments(definitions({"id": "shots", "description": "camera shots"}), window=window, **bounds)["shots"]
    assert_segments_within(found, start=window[0], end=window[1], min_seconds=min_seconds, max_seconds=max_seconds)


def test_window_shorter_than_the_minimum_has_no_segments() -> None:
    found = segments(definitions({"id": "shots", "description": "x"}), window=(0, 1.5), min_segment_duration=2)
    assert found == {"shots": []}


@pytest.mark.parametrize(
    ("time_format", "pattern"),
    [("seconds", None), ("hh:mm:ss", r"\d\d:\d\d:\d\d"), ("hh:mm:ss.fff", r"\d\d:\d\d:\d\d\.\d{3}")],
)
def test_segment_time_format(time_format: str, pattern: str | None) -> None:
    found = segments(definitions({"id": "s", "description": "x"}, time_format=time_format), window=(3_590.25, 3_700.75))
    for segment in found["s"]:
        for key in ("start_time", "end_time"):
            if pattern is None:
                assert isinstance(segment[key], float)
            else:
                assert re.fullmatch(pattern, segment[key])
    tolerance = 0.5 if time_format == "hh:mm:ss" else 0.0005
    assert_segments_within(found["s"], start=3_590.25, end=3_700.75, tolerance=tolerance)
    assert seconds_of(found["s"][0]["start_time"]) == pytest.approx(3_590.25, abs=tolerance)


def test_time_ranges_bound_their_definition_only() -> None:
    response_format = definitions(
        {"id": "goals", "description": "goals", "time_ranges": [{"start_time": 400, "end_time": 470},
                                                              {"start_time": 100, "end_time": 105}]},
        {"id": "crowd", "description": "crowd shots"},
    )  # fmt: skip
    found = segments(response_format, window=(0, 600))
    goals = assert_segments_within(found["goals"], start=100, end=470)
    assert all((low >= 100 and high <= 105) or (low >= 400 and high <= 470) for low, high in goals)
    assert sum(high - low for low, high in goals) == pytest.approx(75)
    assert_segments_within(found["crowd"], start=0, end=600)


def test_time_ranges_are_clipped_to_the_window() -> None:
    response_format = definitions({"id": "g", "description": "x", "time_ranges": [{"start_time": 50, "end_time": 150}]})
    assert_segments_within(segments(response_format, window=(100, 600))["g"], start=100, end=150)


def test_metadata_has_every_field_with_its_declared_type() -> None:
    fields = [
        {"name": "label", "type": "string", "description": "what happens"},
        {"name": "is_goal", "type": "boolean", "description": "goal?"},
        {"name": "speed", "type": "number", "description": "speed"},
        {"name": "players", "type": "integer", "description": "count"},
        {"name": "tags", "type": "array", "description": "tags", "items": {"type": "integer"}},
        {"name": "team", "type": "string", "description": "team", "enum": ["home", "away"]},
        {"name": "peak_s", "type": "timestamp", "format": "seconds", "description": "peak"},
        {"name": "peak_clock", "type": "timestamp", "format": "hh:mm:ss", "description": "peak"},
        {"name": "peak_ms", "type": "timestamp", "format": "hh:mm:ss.fff", "description": "peak"},
        {
            "name": "events",
            "type": "time_array",
            "description": "events",
            "items": {"type": "object", "fields": [{"name": "what", "type": "string", "description": "event"}]},
        },
    ]
    found = segments(definitions({"id": "plays", "description": "plays", "fields": fields}, time_format="hh:mm:ss.fff"))
    for segment in found["plays"]:
        low, high = seconds_of(segment["start_time"]), seconds_of(segment["end_time"])
        metadata = segment["metadata"]
        assert list(metadata) == [field["name"] for field in fields]
        assert isinstance(metadata["label"], str)
        assert "match.mp4" in metadata["label"]
        assert isinstance(metadata["is_goal"], bool)
        assert isinstance(metadata["speed"], float)
        assert isinstance(metadata["players"], int)
        assert not isinstance(metadata["players"], bool)
        assert all(isinstance(tag, int) for tag in metadata["tags"])
        assert metadata["team"] in {"home", "away"}
        assert low <= metadata["peak_s"] <= high
        assert re.fullmatch(r"\d\d:\d\d:\d\d", metadata["peak_clock"])
        assert low <= seconds_of(metadata["peak_ms"]) <= high
        for event in metadata["events"]:
            assert low - 0.0005 <= seconds_of(event["start_time"]) < seconds_of(event["end_time"]) <= high + 0.0005
            assert isinstance(event["what"], str)


def test_segments_thin_out_to_fit_max_tokens_and_never_report_length() -> None:
    fields = [{"name": "label", "type": "string", "description": "what"}]
    many = definitions(*({"id": f"d{n}", "description": "x", "fields": fields} for n in range(20)))
    output = generate_output(
        analysis_mode="time_based_metadata",
        request_params={"response_format": many, "max_tokens": 2_048},
        asset_id=ASSET_ID,
        asset_filename="match.mp4",
        video_duration_seconds=7_200,
        window_start_seconds=0,
        window_end_seconds=7_200,
        seed="t",
    )
    assert output.finish_reason == "stop"
    assert output.output_tokens <= 2_048
    found = json.loads(output.data)
    assert set(found) == {f"d{n}" for n in range(20)}
    for spans in found.values():
        assert 1 <= len(spans) < 240
        assert_segments_within(spans, start=0, end=7_200)


def test_segments_that_cannot_fit_fail_the_task() -> None:
    fields = [{"name": f"field_{n}", "type": "string", "description": "a long description"} for n in range(50)]
    with pytest.raises(OutputGenerationError, match="max_tokens_exceeded") as caught:
        segments(definitions({"id": "d", "description": "x", "fields": fields}), max_tokens=100)
    assert caught.value.code == "max_tokens_exceeded"


def test_segment_output_is_deterministic_and_seeded() -> None:
    fields = [
        {"name": "flag", "type": "boolean", "description": "x"},
        {"name": "n", "type": "integer", "description": "x"},
    ]
    response_format = definitions({"id": "d", "description": "x", "fields": fields})
    assert segments(response_format, seed="a") == segments(response_format, seed="a")
    assert segments(response_format, seed="a") != segments(response_format, seed="b")


def test_general_json_usage_counts_output_tokens() -> None:
    output = general(
        {
            "response_format": {"type": "json_schema", "json_schema": STRUCTURED_SUMMARY_SCHEMA},
            "max_tokens": "unlimited",
        }
    )
    assert output.output_tokens == math.ceil(len(output.data) / CHARACTERS_PER_TOKEN)


@pytest.mark.parametrize(
    ("seconds", "time_format", "expected"),
    [
        (10.5, "seconds", 10.5),
        (83.5, "hh:mm:ss", "00:01:24"),
        (83.5, "hh:mm:ss.fff", "00:01:23.500"),
        (-3.0, "hh:mm:ss", "00:00:00"),
        (9_000.0, "hh:mm:ss.fff", "02:30:00.000"),
    ],
)
def test_format_time(seconds: float, time_format: str, expected: float | str) -> None:
    assert format_time(seconds, time_format) == expected


def test_unknown_time_format_raises() -> None:
    with pytest.raises(OutputGenerationError, match="unknown time format"):
        format_time(1.0, "minutes")
