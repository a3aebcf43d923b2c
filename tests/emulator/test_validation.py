"""Body rules of POST /analyze/batches, checked directly on the validator (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest

from twelvelabs_emulator.api_errors import ApiError
from twelvelabs_emulator.command import build_config
from twelvelabs_emulator.state import DEFAULT_MULTIPART_CHUNK_BYTES
from twelvelabs_emulator.validation import Timeline, parse_batch_request, plan_window
from twelvelabs_emulator.variants import Variant
from videobatch_tools.cli import build_parser

VIDEO = {"type": "asset_id", "asset_id": "a" * 24}
SEGMENTS: dict[str, Any] = {"type": "segment_definitions", "segment_definitions": [{"id": "s", "description": "d"}]}


def _tbm(definition: dict[str, Any], **item: Any) -> dict[str, Any]:
    response_format = {
        "type": "segment_definitions",
        "segment_definitions": [{"id": "s", "description": "d", **definition}],
    }
    return {
        "model_name": "pegasus1.5",
        "analysis_mode": "time_based_metadata",
        "requests": [{"video": VIDEO, "response_format": response_format, **item}],
    }


def _general(**item: Any) -> dict[str, Any]:
    return {
        "model_name": "pegasus1.5",
        "analysis_mode": "general",
        "requests": [{"video": VIDEO, "prompt": {"input_text": "x"}, **item}],
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({**_general(), "extra": 1}, "extra"),
        ({**_general(), "analysis_mode": "other"}, "analysis_mode"),
        ({**_general(), "requests": "x"}, "requests"),
        ({**_general(), "defaults": []}, "defaults"),
        ({"model_name": "pegasus1.5", "analysis_mode": "general", "requests": ["x"]}, "requests.0"),
        (_general(video=None), "requests.0.video"),
        (_general(video={"type": "url", "asset_id": "a"}), "requests.0.video.type"),
        (_general(video={"type": "asset_id"}), "requests.0.video.asset_id"),
        (_general(prompt={"input_text": " "}), "requests.0.prompt.input_text"),
        (_general(prompt="text"), "requests.0.prompt"),
        (
            _general(prompt={"input_text": "x", "media_sources": [{"name": "a", "media_type": "video"}]}),
            "requests.0.prompt.media_sources.0.media_type",
        ),
        (_general(prompt={"input_text": "x", "media_sources": [{}] * 5}), "requests.0.prompt.media_sources"),
        (_general(response_format={"type": "segment_definitions"}), "requests.0.response_format.type"),
        (_general(response_format={"type": "json_schema"}), "requests.0.response_format.json_schema"),
        (
            _general(
                response_format={
                    "type": "json_schema",
                    "json_schema": {"properties": {"a": {"type": "array", "uniqueItems": True}}},
                }
            ),
            "requests.0.response_format.json_schema.properties.a.uniqueItems",
        ),
        (_general(temperature="hot"), "requests.0.temperature"),
        (_general(max_tokens=5000.5), "requests.0.max_tokens"),
        (_general(start_time=-1), "requests.0.start_time"),
        (_general(end_time=0), "requests.0.end_time"),
        (_general(start_time=5, end_time=4), "requests.0.end_time"),
        (_tbm({}, max_tokens=1024), "requests.0.max_tokens"),
        (_tbm({}, min_segment_duration=1), "requests.0.min_segment_duration"),
        (_tbm({}, min_segment_duration=5, max_segment_duration=3), "requests.0.max_segment_duration"),
        (
            _tbm({"fields": [{"name": "start_time", "type": "string", "description": "d"}]}),
            "requests.0.response_format.segment_definitions.0.fields.0.name",
        ),
        (
            _tbm({"fields": [{"name": "t", "type": "timestamp", "description": "d"}]}),
            "requests.0.response_format.segment_definitions.0.fields.0.format",
        ),
        (
            _tbm({"fields": [{"name": "t", "type": "string", "description": "d", "format": "seconds"}]}),
            "requests.0.response_format.segment_definitions.0.fields.0.format",
        ),
        (
            _tbm({"fields": [{"name": "t", "type": "array", "description": "d"}]}),
            "requests.0.response_format.segment_definitions.0.fields.0.items",
        ),
        (
            _tbm({"fields": [{"name": "t", "type": "string", "description": "d", "items": {"type": "string"}}]}),
            "requests.0.response_format.segment_definitions.0.fields.0.items",
        ),
        (
            _tbm(
                {"fields": [{"name": "t", "type": "timestamp", "format": "seconds", "description": "d", "enum": ["a"]}]}
            ),
            "requests.0.response_format.segment_definitions.0.fields.0.enum",
        ),
        (
            _tbm({"fields": [{"name": "t", "type": "nope", "description": "d"}]}),
            "requests.0.response_format.segment_definitions.0.fields.0.type",
        ),
        (
            _tbm({"fields": [{"name": "t", "type": "string", "description": "d"}] * 2}),
            "requests.0.response_format.segment_definitions.0.fields.1.name",
        ),
        (
            _tbm({"time_ranges": [{"start_time": 0, "end_time": 1}]}),
            "requests.0.response_format.segment_definitions.0.time_ranges.0",
        ),
        (
            _tbm({"time_ranges": [{"start_time": 0, "end_time": 5}, {"start_time": 4, "end_time": 9}]}),
            "requests.0.response_format.segment_definitions.0.time_ranges",
        ),
        (_tbm({"time_ranges": [{"start_time": 0, "end_time": 5}]}, start_time=0), "requests.0.start_time"),
        (_tbm({"id": ""}), "requests.0.response_format.segment_definitions.0.id"),
        (_tbm({"description": ""}), "requests.0.response_format.segment_definitions.0.description"),
        (
            {**_tbm({}), "defaults": {"response_format": {**SEGMENTS, "segment_time_format": "ms"}}},
            "defaults.response_format.segment_time_format",
        ),
    ],
)
def test_rejected_bodies_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(ApiError) as error:
        parse_batch_request(body)
    assert error.value.status == (422 if field.endswith("uniqueItems") else 400)
    assert error.value.message.startswith(field), error.value.message


def test_item_fields_replace_defaults_whole() -> None:
    body = {**_general(), "defaults": {"prompt": {"input_text": "default"}, "temperature": 0.1}}
    body["requests"][0]["prompt"] = {"input_text": "mine"}
    parsed = parse_batch_request(body)
    assert parsed.items[0].params == {"prompt": {"input_text": "mine"}, "temperature": 0.1}


def test_plan_window_against_the_video() -> None:
    assert plan_window({}, Timeline.of(3 * 3600), "r").too_long
    assert plan_window({"start_time": 10}, Timeline.of(20), "r").length_seconds == 10
    with pytest.raises(ApiError):
        plan_window({"start_time": 30}, Timeline.of(20), "r")
    with pytest.raises(ApiError):
        plan_window({"start_time": 19.5}, Timeline.of(20), "r")
    time_ranges = {
        "response_format": {
            **SEGMENTS,
            "segment_definitions": [
                {"id": "s", "description": "d", "time_ranges": [{"start_time": 0, "end_time": 30}]}
            ],
        }
    }
    with pytest.raises(ApiError):
        plan_window(time_ranges, Timeline.of(20), "r")


def test_cli_builds_the_config() -> None:
    args = build_parser().parse_args(
        [
            "emulator",
            "--api-key",
            "k",
            "--port",
            "0",
            "--clock",
            "virtual",
            "--item-concurrency",
            "3",
            "--content-seconds-per-second",
            "5",
            "--asset-ready-seconds",
            "1",
            "--seed",
            "9",
        ]
    )
    config = build_config(args)
    assert (config.api_key, config.clock, config.seed) == ("k", "virtual", 9)
    assert config.settings.item_concurrency == 3
    assert config.settings.content_seconds_per_second == 5


def test_cli_selects_variants_and_lists_them_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(
        ["emulator", "--api-key", "k", "--variant", "results_noise", "--variant", "window_overrun"]
    )
    assert sorted(build_config(args).settings.variants) == ["results_noise", "window_overrun"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["emulator", "--api-key", "k", "--variant", "nonsense"])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["emulator", "--help"])
    shown = capsys.readouterr().out
    for variant in Variant:
        assert variant.value in shown


def test_cli_hardening_and_rate_limit_options() -> None:
    args = build_parser().parse_args(
        [
            "emulator",
            "--api-key",
            "k",
            "--public-base-url",
            "http://emulator.local:8787",
            "--control-token",
            "tok",
            "--allow-fetch-host",
            "s3.local",
            "--requests-per-minute",
            "30",
        ]
    )
    config = build_config(args)
    assert config.public_base_url == "http://emulator.local:8787"
    assert config.control_token == "tok"
    assert config.url_fetch_allowed_hosts == ("s3.local",)
    assert config.settings.rate_limits.requests_per_minute == 30


def test_cli_sets_the_multipart_chunk_size_or_keeps_the_default() -> None:
    args = build_parser().parse_args(["emulator", "--api-key", "k", "--multipart-chunk-bytes", "65536"])
    assert build_config(args).multipart_chunk_bytes == 65536
    default = build_config(build_parser().parse_args(["emulator", "--api-key", "k"]))
    assert default.multipart_chunk_bytes == DEFAULT_MULTIPART_CHUNK_BYTES
