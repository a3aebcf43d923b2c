"""Each variant against the default on the same requests: the undocumented points answered the other plausible way."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.support import Emu, item, running
from twelvelabs_emulator.variants import PARTIAL_RESULT_MESSAGE
from videobatch_tools.samples import write_sample_video

pytestmark = pytest.mark.integration

SEGMENTS = {"type": "segment_definitions", "segment_definitions": [{"id": "scene", "description": "a scene"}]}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("variant-clips")
    return {
        "two_hours": write_sample_video(root / "two.mp4", duration_seconds=7_200, fps=0.2),
        "offset": write_sample_video(root / "offset.mp4", duration_seconds=30, fps=1, start_seconds=10),
    }


def _state_items(emu: Emu, batch_id: str) -> list[dict[str, Any]]:
    batches = emu.control.get("/_emulator/state").json()["batches"]
    found: list[dict[str, Any]] = next(b for b in batches if b["batch_id"] == batch_id)["items"]
    return found


def test_variants_are_selected_over_http_and_validated(emu: Emu) -> None:
    assert emu.settings(variants=["results_noise", "window_overrun"])["variants"] == ["results_noise", "window_overrun"]
    assert emu.control.post("/_emulator/settings", json={"variants": ["no_such_variant"]}).status_code == 400
    both = emu.control.post("/_emulator/settings", json={"variants": ["active_limit_400", "active_limit_409"]})
    assert both.status_code == 400
    assert emu.settings(variants=[])["variants"] == []


def test_index_free_errors(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    bad_field = {"name": "t", "type": "timestamp", "description": "d"}
    definitions = [{"id": "s", "description": "d", "fields": [bad_field]}]
    cases = [
        ([item(asset, custom_id="a"), item(asset, custom_id="a")], {}, "custom_id"),
        (
            [item(asset, response_format={**SEGMENTS, "segment_definitions": definitions})],
            {"analysis_mode": "time_based_metadata", "defaults": {}},
            "response_format.segment_definitions.fields.format",
        ),
        ([item(asset), item(asset, temperature=2)], {}, "temperature"),
    ]
    for requests, body, _ in cases:
        default = emu.create_batch(requests, **body).json()["error"]
        assert re.search(r"requests\.\d", default["message"]), default
    emu.settings(variants=["index_free_errors"])
    for requests, body, field in cases:
        error = emu.create_batch(requests, **body).json()["error"]
        assert error["message"].startswith(f"{field}:"), error
        assert not re.search(r"\.\d|requests\.", json.dumps(error)), error
        assert error["details"]["field"] == field


def test_item_level_refusals_fail_the_item_alone(emu: Emu, videos: dict[str, Path]) -> None:
    ready = emu.upload(videos["short"])
    over = emu.upload(videos["over_four_hours"])
    processing = emu.upload(videos["short"], ready=False)
    requests = [
        item("f" * 24, custom_id="missing"),
        item(processing, custom_id="not_ready"),
        item(ready, custom_id="past_the_end", start_time=0, end_time=25),
        item(over, custom_id="over_four_hours", start_time=0, end_time=60),
        item(ready, custom_id="fine"),
    ]
    assert [emu.create_batch([r]).status_code for r in requests[:4]] == [404, 409, 400, 400]
    emu.settings(variants=["item_level_refusals"])
    created = emu.create_batch(requests)
    assert created.status_code == 201, created.text
    emu.advance(30)
    lines = {line["custom_id"]: line for line in emu.results(created.json()["batch_id"])}
    outcome = {key: (line["status"], (line.get("error") or {}).get("code")) for key, line in lines.items()}
    assert outcome == {
        "missing": ("failed", "asset_unavailable"),
        "not_ready": ("failed", "asset_unavailable"),
        "past_the_end": ("failed", "parameter_invalid"),
        "over_four_hours": ("failed", "video_duration_too_long"),
        "fine": ("ready", None),
    }
    assert "f" * 24 in lines["missing"]["error"]["message"]


def test_content_per_request_counts_whole_videos(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["four_hours"])
    one_hour_windows = [item(asset, start_time=0, end_time=3_600)] * 501
    accepted = emu.create_batch(one_hour_windows)  # 501 h of windows
    assert accepted.status_code == 201
    emu.api.post(f"/analyze/batches/{accepted.json()['batch_id']}/cancel")
    emu.settings(variants=["content_per_request"])
    refused = emu.create_batch(one_hour_windows)  # 501 x 4 h of video
    assert refused.status_code == 400
    assert "2004.0 content hours" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("variant", "status", "code"),
    [("active_limit_400", 400, "parameter_invalid"), ("active_limit_409", 409, "too_many_requests")],
)
def test_the_sixth_active_batch_refused_otherwise(
    emu: Emu, videos: dict[str, Path], variant: str, status: int, code: str
) -> None:
    asset = emu.upload(videos["short"])
    for _ in range(5):
        assert emu.create_batch([item(asset)]).status_code == 201
    assert emu.create_batch([item(asset)]).status_code == 429
    emu.settings(variants=[variant])
    sixth = emu.create_batch([item(asset)])
    assert sixth.status_code == status
    assert sixth.json()["error"]["code"] == code
    assert "active batches" in sixth.json()["error"]["message"]


def test_new_enum_values(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    emu.settings(variants=["new_enum_values"], item_concurrency=1)
    small = {"type": "json_schema", "json_schema": {"type": "string"}}
    created = emu.create_batch([item(asset), item(asset, max_tokens=512, response_format=small)])
    assert created.json()["status"] == "validating"
    batch_id = created.json()["batch_id"]
    assert emu.batch(batch_id)["status"] == "validating"
    pending = emu.api.get("/analyze/batches", params={"status": "pending"}).json()["data"]
    assert [b["batch_id"] for b in pending] == [batch_id]  # filters keep the documented values
    emu.advance(1)
    assert [line["status"] for line in emu.results(batch_id)] == ["processing", "scheduled"]
    emu.advance(60)
    lines = emu.results(batch_id)
    assert {line["data"]["finish_reason"] for line in lines} <= {"end_turn", "max_tokens"}
    assert emu.api.get(f"/analyze/tasks/{lines[0]['task_id']}").json()["result"]["finish_reason"] == "end_turn"


def test_ready_with_warning(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    default = emu.create_batch([item(asset)]).json()["batch_id"]
    emu.advance(10)
    assert "error" not in emu.results(default)[0]
    # A presentation variant: it applies to every ready item read while it is on.
    emu.settings(variants=["ready_with_warning"])
    general = emu.create_batch([item(asset)]).json()["batch_id"]
    segments = emu.create_batch(
        [item(asset, response_format=SEGMENTS)], analysis_mode="time_based_metadata", defaults={}
    )
    emu.advance(10)
    [line] = emu.results(general)
    assert line["status"] == "ready"
    assert line["data"]["data"]
    assert line["error"] == {"message": PARTIAL_RESULT_MESSAGE.format(what="")}
    assert emu.api.get(f"/analyze/tasks/{line['task_id']}").json()["error"] == line["error"]
    [segment_line] = emu.results(segments.json()["batch_id"])
    assert segment_line["error"]["message"].startswith("partial result: some output for segment_definitions scene ")


def test_a_truncated_task_carries_the_documented_warning(emu: Emu, videos: dict[str, Path]) -> None:
    """Not a variant: the SDK documents this warning on ready tasks whose finish_reason is length."""
    asset = emu.upload(videos["short"])
    echoed_prompt = {"input_text": "Describe every frame. " * 150}  # echoed in the answer: over 512 tokens
    batch_id = emu.create_batch([item(asset, max_tokens=512, prompt=echoed_prompt)]).json()["batch_id"]
    emu.advance(10)
    [line] = emu.results(batch_id)
    assert line["data"]["finish_reason"] == "length"
    assert "error" not in line  # results lines carry an error only when failed
    task = emu.api.get(f"/analyze/tasks/{line['task_id']}").json()
    assert task["error"]["message"].startswith("output truncated: the generation reached the configured max_tokens")
    assert "code" not in task["error"]


def test_window_overrun_fails_a_two_hour_window_without_end_time(emu: Emu, clips: dict[str, Path]) -> None:
    asset = emu.upload(clips["two_hours"])
    emu.settings(content_seconds_per_second=10_000.0)
    requests = [item(asset, custom_id="open_ended"), item(asset, custom_id="explicit", start_time=0, end_time=7_200)]
    default = emu.create_batch(requests).json()["batch_id"]
    emu.settings(variants=["window_overrun"])
    overrun = emu.create_batch(requests).json()["batch_id"]
    emu.advance(10)
    assert [line["status"] for line in emu.results(default)] == ["ready", "ready"]
    lines = {line["custom_id"]: line for line in emu.results(overrun)}
    assert lines["open_ended"]["error"]["code"] == "video_duration_too_long"
    assert lines["explicit"]["status"] == "ready"
    assert emu.api.get(f"/assets/{asset}").json()["duration"] == pytest.approx(7_200)  # the asset says 2 h


def test_start_offset_reads_request_times_as_absolute(emu: Emu, clips: dict[str, Path]) -> None:
    asset = emu.upload(clips["offset"])  # frames from 10 s to 40 s
    request = item(asset, start_time=0, end_time=20, response_format=SEGMENTS)
    tbm = {"analysis_mode": "time_based_metadata", "defaults": {}}
    default = emu.create_batch([request], **tbm).json()["batch_id"]
    emu.settings(variants=["start_offset"])
    absolute = emu.create_batch([request], **tbm).json()["batch_id"]
    [relative_item] = _state_items(emu, default)
    [absolute_item] = _state_items(emu, absolute)
    assert (relative_item["window_start_seconds"], relative_item["window_end_seconds"]) == (0, 20)
    assert (absolute_item["window_start_seconds"], absolute_item["window_end_seconds"]) == (10, 20)
    emu.advance(10)
    [line] = emu.results(absolute)
    segments = json.loads(line["data"]["data"])["scene"]
    assert min(segment["start_time"] for segment in segments) >= 10
    before_the_video = emu.create_batch([item(asset, start_time=0, end_time=10)])
    assert before_the_video.status_code == 400
    open_ended = emu.create_batch([item(asset)]).json()["batch_id"]
    assert [(i["window_start_seconds"], i["window_end_seconds"]) for i in _state_items(emu, open_ended)] == [(10, 40)]


def test_results_noise(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    emu.settings(variants=["results_noise"])
    batch_id = emu.create_batch([item(asset, custom_id="a"), item(asset, custom_id="b")]).json()["batch_id"]
    emu.advance(10)
    raw = emu.api.get(f"/analyze/batches/{batch_id}/results").text
    lines = raw.split("\n")
    assert "" in lines
    assert "   " in lines
    parsed = [json.loads(line) for line in lines[:-1] if line.strip()]
    assert [p.get("custom_id") for p in parsed] == ["a", "b", None]
    assert "custom_id" not in parsed[-1]
    assert parsed[-1]["task_id"] == parsed[0]["task_id"]
    truncated = lines[-1]
    assert truncated.startswith('{"task_id": "')
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated)


@pytest.fixture
def overrun_from_python() -> Iterator[Emu]:
    with running(variants=["window_overrun", "ready_with_warning"]) as server:
        emu = Emu(server)
        try:
            yield emu
        finally:
            emu.close()


def test_variants_selected_from_python_config(overrun_from_python: Emu) -> None:
    state = overrun_from_python.control.get("/_emulator/state").json()
    assert state["settings"]["variants"] == ["ready_with_warning", "window_overrun"]
