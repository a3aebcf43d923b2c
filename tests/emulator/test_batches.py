"""Batch lifecycle, limits, expiry, retention, cancel and delete, over real HTTP with the virtual clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.support import Emu, item

pytestmark = pytest.mark.integration


def _error_code(response: Any) -> str:
    """The code of an /analyze error, which must come in the nested shape only."""
    body = response.json()
    assert set(body) == {"error"}, body
    code: str = body["error"]["code"]
    return code


def test_lifecycle_pending_processing_completed_with_counts(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])  # 20 s at 10 content-s/s: 2 s per item, 2 at a time
    created = emu.create_batch([item(asset, custom_id=f"c{i}") for i in range(3)])
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "pending"
    assert body["total_items"] == 3
    assert len(body["batch_id"]) == 24
    assert [entry["custom_id"] for entry in body["items"]] == ["c0", "c1", "c2"]
    batch_id = body["batch_id"]
    assert emu.batch(batch_id)["status"] == "pending"
    emu.advance(1)
    running = emu.batch(batch_id)
    assert (running["status"], running["processing_items"], running["queued_items"]) == ("processing", 2, 1)
    assert "completed_at" not in running
    emu.advance(1)
    assert (emu.batch(batch_id)["ready_items"], emu.batch(batch_id)["processing_items"]) == (2, 1)
    emu.advance(2)
    done = emu.batch(batch_id)
    assert done["status"] == "completed"
    assert done["ready_items"] == 3
    assert done["completed_at"] == "2026-01-01T00:00:09Z"


def test_results_jsonl_while_running(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    batch_id = emu.create_batch([item(asset), item(asset), item(asset)]).json()["batch_id"]
    emu.advance(2.5)
    response = emu.api.get(f"/analyze/batches/{batch_id}/results")
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["status"] for line in lines] == ["ready", "ready", "processing"]
    assert set(lines[0]["data"]) == {"generation_id", "data", "finish_reason", "usage"}
    assert "data" not in lines[2]
    assert "error" not in lines[2]
    assert lines[0]["custom_id"] is None


def test_validation_errors_are_nested_and_name_the_field(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    cases = [
        ({"model_name": "pegasus1.2"}, "model_name"),
        ({"requests": []}, "requests"),
        ({"requests": [item(asset, custom_id="a"), item(asset, custom_id="a")]}, "requests.1.custom_id"),
        ({"requests": [item(asset, custom_id="bad id")]}, "requests.0.custom_id"),
        ({"requests": [item(asset, temperature=1.5)]}, "requests.0.temperature"),
        ({"requests": [item(asset, max_tokens=100)]}, "requests.0.max_tokens"),
        ({"requests": [item(asset, start_time=0, end_time=0.5)]}, "requests.0.end_time"),
        ({"requests": [item(asset, start_time=0, end_time=7201)]}, "requests.0.end_time"),
        ({"requests": [item(asset, end_time=30)]}, "requests.0.end_time"),
        ({"requests": [item(asset, min_segment_duration=5)]}, "requests.0.min_segment_duration"),
        ({"defaults": {}, "requests": [item(asset)]}, "requests.0.prompt"),
    ]
    for body, field in cases:
        payload: dict[str, Any] = {"requests": [item(asset)], **body}
        response = emu.create_batch(**payload)
        assert response.status_code == 400, (field, response.text)
        assert _error_code(response).startswith("parameter_")
        assert response.json()["error"]["message"].startswith(field), response.text
    assert emu.api.get("/analyze/batches").json()["data"] == []


@pytest.mark.parametrize("keyword", ["minLength", "maxLength", "additionalProperties", "uniqueItems", "maxItems"])
def test_unsupported_json_schema_keywords_answer_422(emu: Emu, videos: dict[str, Path], keyword: str) -> None:
    asset = emu.upload(videos["short"])
    schema = {"type": "object", "properties": {"tags": {"type": "array", keyword: 3}}}
    response = emu.create_batch([item(asset, response_format={"type": "json_schema", "json_schema": schema})])
    assert response.status_code == 422, response.text
    assert _error_code(response) == "parameter_invalid"
    field = f"requests.0.response_format.json_schema.properties.tags.{keyword}"
    assert response.json()["error"]["message"].startswith(field)


def test_time_based_metadata_rules(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    segments = {"type": "segment_definitions", "segment_definitions": [{"id": "scene", "description": "a scene"}]}
    ok = emu.create_batch([item(asset)], analysis_mode="time_based_metadata", defaults={"response_format": segments})
    assert ok.status_code == 201
    bad_field = {"name": "t", "type": "time_array", "description": "x"}
    bad = {**segments, "segment_definitions": [{"id": "s", "description": "d", "fields": [bad_field]}]}
    cases = [
        ({"prompt": {"input_text": "x"}, "response_format": segments}, "defaults.prompt"),
        ({"response_format": bad}, "defaults.response_format.segment_definitions.0.fields.0.type"),
        ({}, "requests.0.response_format"),
    ]
    for defaults, field in cases:
        response = emu.create_batch([item(asset)], analysis_mode="time_based_metadata", defaults=defaults)
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith(field), response.text


def test_missing_asset_404_and_not_ready_409(emu: Emu, videos: dict[str, Path]) -> None:
    missing = emu.create_batch([item("0" * 24)])
    assert missing.status_code == 404
    assert _error_code(missing) == "resource_not_exist"
    processing = emu.upload(videos["short"], ready=False)
    assert emu.create_batch([item(processing)]).status_code == 409


def test_request_count_limit(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    assert emu.create_batch([item(asset)] * 1001).status_code == 400
    assert emu.create_batch([item(asset)] * 1000).status_code == 201


def test_content_hour_limit_counts_whole_videos(emu: Emu, videos: dict[str, Path]) -> None:
    """500 items on a real 4 h video are exactly 2,000 content hours; one more item exceeds the limit."""
    asset = emu.upload(videos["four_hours"])
    too_much = emu.create_batch([item(asset)] * 501)
    assert too_much.status_code == 400
    assert "content hours" in too_much.json()["error"]["message"]
    assert emu.create_batch([item(asset)] * 500).status_code == 201


def test_videos_over_four_hours_are_rejected(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["over_four_hours"])
    response = emu.create_batch([item(asset, start_time=0, end_time=60)])
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("requests.0.video")


def test_window_over_two_hours_fails_the_item_alone(emu: Emu, videos: dict[str, Path]) -> None:
    long_asset = emu.upload(videos["three_hours"])
    short = emu.upload(videos["short"])
    batch_id = emu.create_batch([item(long_asset), item(short)]).json()["batch_id"]
    emu.advance(10)
    batch = emu.batch(batch_id)
    assert (batch["status"], batch["failed_items"], batch["ready_items"]) == ("completed", 1, 1)
    lines = [json.loads(line) for line in emu.api.get(f"/analyze/batches/{batch_id}/results").text.splitlines()]
    assert lines[0]["error"]["code"] == "video_duration_too_long"


def test_five_active_batches_then_429(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    ids = [emu.create_batch([item(asset)]).json()["batch_id"] for _ in range(5)]
    sixth = emu.create_batch([item(asset)])
    assert sixth.status_code == 429
    assert _error_code(sixth) == "too_many_requests"
    emu.advance(10)  # all complete, none active
    assert all(emu.batch(batch_id)["status"] == "completed" for batch_id in ids)
    assert emu.create_batch([item(asset)]).status_code == 201


def test_expiry_cancels_queued_and_fails_processing(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    emu.settings(content_seconds_per_second=0.0001, item_concurrency=1)  # 20 s of content takes ~55 h
    batch_id = emu.create_batch([item(asset), item(asset)]).json()["batch_id"]
    emu.advance(24 * 3600 - 1)
    assert emu.batch(batch_id)["status"] == "processing"
    emu.advance(1)
    batch = emu.batch(batch_id)
    assert (batch["status"], batch["failed_items"], batch["canceled_items"]) == ("expired", 1, 1)
    assert batch["expired_at"] == batch["expires_at"]
    assert "completed_at" not in batch
    lines = [json.loads(line) for line in emu.api.get(f"/analyze/batches/{batch_id}/results").text.splitlines()]
    assert lines[0]["error"]["code"] == "batch_processing_timeout"
    task = emu.api.get(f"/analyze/tasks/{lines[1]['task_id']}").json()
    assert task["status"] == "canceled"
    assert task["error"]["code"] == "batch_expired"


def test_retention_deletes_batch_and_tasks_after_30_days(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    created = emu.create_batch([item(asset)]).json()
    emu.advance(30 * 24 * 3600 - 10)
    assert emu.api.get(f"/analyze/batches/{created['batch_id']}").status_code == 200
    emu.advance(10)
    assert emu.api.get(f"/analyze/batches/{created['batch_id']}").status_code == 404
    assert emu.api.get(f"/analyze/batches/{created['batch_id']}/results").status_code == 404
    assert emu.api.get(f"/analyze/tasks/{created['items'][0]['task_id']}").status_code == 404


def test_cancel_canceling_canceled_and_409s(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    batch_id = emu.create_batch([item(asset)] * 3).json()["batch_id"]
    emu.advance(1)
    canceled = emu.api.post(f"/analyze/batches/{batch_id}/cancel")
    assert canceled.status_code == 202
    body = canceled.json()
    assert (body["status"], body["processing_items"], body["canceled_items"]) == ("canceling", 2, 1)
    assert emu.api.post(f"/analyze/batches/{batch_id}/cancel").status_code == 409
    assert emu.api.delete(f"/analyze/batches/{batch_id}").status_code == 409
    emu.advance(1)
    done = emu.batch(batch_id)
    assert (done["status"], done["ready_items"], done["canceled_items"]) == ("canceled", 2, 1)
    assert "canceled_at" in done
    assert "completed_at" not in done
    task_id = emu.api.get(f"/analyze/batches/{batch_id}/results").text.splitlines()[2]
    assert json.loads(task_id)["status"] == "canceled"
    assert emu.api.post(f"/analyze/batches/{batch_id}/cancel").status_code == 409


def test_delete_only_when_terminal_and_tasks_go_too(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    created = emu.create_batch([item(asset)]).json()
    assert emu.api.delete(f"/analyze/batches/{created['batch_id']}").status_code == 409
    emu.advance(5)
    assert emu.api.delete(f"/analyze/batches/{created['batch_id']}").status_code == 204
    assert emu.api.get(f"/analyze/batches/{created['batch_id']}").status_code == 404
    assert emu.api.get(f"/analyze/tasks/{created['items'][0]['task_id']}").status_code == 404
    assert emu.api.delete(f"/analyze/batches/{created['batch_id']}").status_code == 404


def test_list_newest_first_filters_and_empty_page(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    first = emu.create_batch([item(asset)]).json()["batch_id"]
    emu.advance(5)
    second = emu.create_batch([item(asset)]).json()["batch_id"]
    listed = emu.api.get("/analyze/batches").json()
    assert [b["batch_id"] for b in listed["data"]] == [second, first]
    assert listed["page_info"]["total_results"] == 2
    pending = emu.api.get("/analyze/batches", params=[("status", "pending"), ("status", "processing")]).json()
    assert [b["batch_id"] for b in pending["data"]] == [second]
    assert emu.api.get("/analyze/batches", params={"analysis_mode": "time_based_metadata"}).json()["data"] == []
    past_end = emu.api.get("/analyze/batches", params={"page": 3, "page_limit": 1})
    assert past_end.status_code == 200
    assert past_end.json()["data"] == []
    assert emu.api.get("/analyze/batches", params={"page_limit": 51}).status_code == 400
    assert emu.api.get("/analyze/batches", params={"status": "failed"}).status_code == 400


def test_tasks_carry_batch_and_effective_params(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    created = emu.create_batch([item(asset, custom_id="x", temperature=0.5)]).json()
    task = emu.api.get(f"/analyze/tasks/{created['items'][0]['task_id']}").json()
    assert (task["batch_id"], task["custom_id"], task["status"]) == (created["batch_id"], "x", "queued")
    assert task["request_params"]["temperature"] == 0.5
    assert task["request_params"]["max_tokens"] == 4096
    assert task["request_params"]["prompt"] == "Describe the video."
    listed = emu.api.get("/analyze/tasks", params={"asset_id": asset}).json()
    assert [t["task_id"] for t in listed["data"]] == [created["items"][0]["task_id"]]


def test_an_output_the_model_cannot_produce_fails_the_item_alone(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    impossible = {"type": "json_schema", "json_schema": {"type": "string", "enum": []}}
    batch_id = emu.create_batch([item(asset, custom_id="bad", response_format=impossible), item(asset, custom_id="ok")])
    assert batch_id.status_code == 201
    emu.advance(60)
    lines = [
        json.loads(line)
        for line in emu.api.get(f"/analyze/batches/{batch_id.json()['batch_id']}/results").text.splitlines()
    ]
    by_id = {line["custom_id"]: line for line in lines}
    assert by_id["bad"]["status"] == "failed"
    assert by_id["bad"]["error"]["code"] == "schema_unsatisfiable"
    assert by_id["ok"]["status"] == "ready"
