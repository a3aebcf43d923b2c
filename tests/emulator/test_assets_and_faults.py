"""Assets (direct, url, failures), auth, control endpoints and fault injection, over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.emulator.support import Emu, item, running

pytestmark = pytest.mark.integration


@pytest.fixture
def file_server(videos: dict[str, Path]) -> Iterator[str]:
    """A local HTTP server serving the sample files by name (404 otherwise)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            path = videos.get(name)
            body = path.read_bytes() if path else b"missing"
            self.send_response(200 if path else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_auth_required_on_api_routes(emu: Emu) -> None:
    with httpx.Client(base_url=emu.server.api_url) as anonymous:
        for headers in ({}, {"x-api-key": "wrong"}):
            response = anonymous.get("/analyze/batches", headers=headers)
            assert response.status_code == 401
            # Flat even under /analyze: the SDK types the analyze routes' 401 body as FlatErrorResponse.
            assert response.json() == {"code": "api_key_invalid", "message": response.json()["message"]}
    assert emu.api.get("/nowhere").status_code == 404
    assert emu.api.put("/analyze/batches").status_code == 405


def test_direct_asset_processing_then_ready_with_metadata(emu: Emu, videos: dict[str, Path]) -> None:
    asset_id = emu.upload(videos["short"], ready=False)
    assert emu.api.get(f"/assets/{asset_id}").json()["status"] == "processing"
    emu.advance(5)
    asset = emu.api.get(f"/assets/{asset_id}").json()
    assert asset["status"] == "ready"
    assert asset["duration"] == pytest.approx(20, abs=0.5)
    assert asset["size"] == videos["short"].stat().st_size
    assert {"video_fps", "video_width", "video_height", "video_codec", "has_audio"} <= set(asset["technical_metadata"])


@pytest.mark.parametrize("name", ["text", "corrupt"])
def test_non_video_asset_fails_with_message(emu: Emu, videos: dict[str, Path], name: str) -> None:
    asset_id = emu.upload(videos[name])
    asset = emu.api.get(f"/assets/{asset_id}").json()
    assert asset["status"] == "failed"
    assert asset["error"]["message"]
    assert "technical_metadata" not in asset
    assert emu.create_batch([item(asset_id)]).status_code == 409


def test_url_asset_is_fetched(emu: Emu, file_server: str) -> None:
    created = emu.api.post("/assets", data={"method": "url", "url": f"{file_server}/short"})
    assert created.status_code == 201
    emu.advance(5)
    asset = emu.api.get(f"/assets/{created.json()['_id']}").json()
    assert asset["status"] == "ready"
    assert asset["method"] == "url"
    assert asset["filename"] == "short"


def test_url_fetch_failure_fails_the_asset(emu: Emu, file_server: str) -> None:
    created = emu.api.post("/assets", data={"method": "url", "url": f"{file_server}/absent"})
    emu.advance(5)
    asset = emu.api.get(f"/assets/{created.json()['_id']}").json()
    assert asset["status"] == "failed"
    assert "404" in asset["error"]["message"]


def test_asset_form_validation(emu: Emu, videos: dict[str, Path]) -> None:
    assert emu.api.post("/assets", data={"method": "ftp"}).status_code == 400
    assert emu.api.post("/assets", data={"method": "url"}).status_code == 400
    assert emu.api.post("/assets", data={"method": "url", "url": "file:///etc/passwd"}).status_code == 400
    assert emu.api.post("/assets", data={"method": "direct"}).status_code == 400
    bad_metadata = {"method": "direct", "user_metadata": "{not json"}
    with videos["short"].open("rb") as handle:
        response = emu.api.post("/assets", data=bad_metadata, files={"file": ("a.mp4", handle)})
    assert response.status_code == 400


def test_direct_upload_size_limit(videos: dict[str, Path]) -> None:
    """The 200 MB limit, lowered by configuration so the test need not send 200 MB."""
    with running(max_direct_upload_bytes=1000) as server:
        emu = Emu(server)
        try:
            with videos["short"].open("rb") as handle:
                response = emu.api.post("/assets", data={"method": "direct"}, files={"file": ("a.mp4", handle)})
            assert response.status_code == 400
            assert "limit" in response.json()["message"]
        finally:
            emu.close()


def test_asset_list_filters_and_delete(emu: Emu, videos: dict[str, Path]) -> None:
    first = emu.upload(videos["short"])
    second = emu.upload(videos["text"])
    listed = emu.api.get("/assets", params=[("asset_ids", first), ("asset_ids", second)]).json()["data"]
    assert [a["_id"] for a in listed] == [second, first]
    assert [a["_id"] for a in emu.api.get("/assets", params={"filename": "NOTES"}).json()["data"]] == [second]
    assert emu.api.get("/assets", params={"asset_types": "image"}).json()["data"] == []
    assert emu.api.get("/assets", params={"asset_types": "nonsense"}).status_code == 400
    assert emu.api.delete(f"/assets/{first}").status_code == 204
    assert emu.api.get(f"/assets/{first}").status_code == 404


def test_control_validation(emu: Emu) -> None:
    assert emu.control.post("/_emulator/settings", json={"item_concurrency": 0}).status_code == 400
    assert emu.control.post("/_emulator/clock", json={"advance_seconds": -1}).status_code == 400
    assert emu.control.post("/_emulator/clock", json={}).status_code == 400
    assert emu.settings(item_concurrency=7)["item_concurrency"] == 7
    state = emu.control.get("/_emulator/state").json()
    assert state["clock"] == "virtual"
    assert state["settings"]["item_concurrency"] == 7


def test_real_clock_cannot_be_moved() -> None:
    with running(clock="real") as server:
        response = httpx.post(f"{server.base_url}/_emulator/clock", json={"advance_seconds": 1})
        assert response.status_code == 409


@pytest.mark.parametrize(
    "rules",
    [
        [{"endpoint": "GET /nowhere", "status": 500}],
        [{"endpoint": "GET /assets", "status": 500, "lose_response": True}],
        [{"endpoint": "GET /assets", "rate": 2, "status": 500}],
        [{"endpoint": "GET /assets", "status": 500, "retry_after": 3}],
        [{"endpoint": "GET /assets"}],
        [{"item_failure": {"code": "x", "rate": 1.5}}],
        [{"endpoint": "GET /assets", "status": 500, "surprise": 1}],
    ],
)
def test_malformed_fault_rules_are_rejected(emu: Emu, rules: list[dict[str, object]]) -> None:
    assert emu.faults(rules).status_code == 400


def test_fault_status_with_retry_after_then_clears(emu: Emu) -> None:
    rule = {
        "endpoint": "GET /analyze/batches",
        "count": 2,
        "status": 429,
        "code": "too_many_requests",
        "retry_after": 7,
    }
    assert emu.faults([rule]).status_code == 200
    for _ in range(2):
        response = emu.api.get("/analyze/batches")
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert response.json()["error"]["code"] == "too_many_requests"
    assert emu.api.get("/analyze/batches").status_code == 200
    emu.faults([{"endpoint": "GET /analyze/batches", "status": 503}])
    assert emu.api.get("/analyze/batches").status_code == 503
    emu.faults([])
    assert emu.api.get("/analyze/batches").status_code == 200


def test_fault_status_blocks_the_effect(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    emu.faults([{"endpoint": "POST /analyze/batches", "count": 1, "status": 500}])
    assert emu.create_batch([item(asset)]).status_code == 500
    assert emu.api.get("/analyze/batches").json()["data"] == []


def test_lose_response_takes_effect_but_drops_connection(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    emu.faults([{"endpoint": "POST /analyze/batches", "count": 1, "lose_response": True}])
    with pytest.raises(httpx.RemoteProtocolError):
        emu.create_batch([item(asset, custom_id="lost-1")])
    batches = emu.api.get("/analyze/batches").json()["data"]
    assert len(batches) == 1
    task = emu.api.get("/analyze/tasks").json()["data"][0]
    assert task["custom_id"] == "lost-1"


def test_latency_is_a_real_delay(emu: Emu) -> None:
    emu.faults([{"endpoint": "GET /assets", "count": 1, "latency_seconds": 0.3}])
    with pytest.raises(httpx.ReadTimeout):
        emu.api.get("/assets", timeout=0.05)
    started = time.monotonic()
    assert emu.api.get("/assets").status_code == 200
    assert time.monotonic() - started < 0.3


def test_seeded_rate_faults_replay(emu: Emu) -> None:
    def run(seed: int) -> list[int]:
        emu.faults([{"endpoint": "GET /assets", "rate": 0.5, "status": 500}], seed=seed)
        return [emu.api.get("/assets").status_code for _ in range(30)]

    first = run(11)
    assert set(first) == {200, 500}
    assert run(11) == first
    assert run(12) != first


def test_item_failure_fault_is_seeded_per_task(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    emu.settings(item_concurrency=20)
    emu.faults([{"item_failure": {"code": "asset_unavailable", "rate": 0.5}}], seed=3)
    batch_id = emu.create_batch([item(asset)] * 20).json()["batch_id"]
    emu.advance(5)
    batch = emu.batch(batch_id)
    assert batch["status"] == "completed"
    assert 0 < batch["failed_items"] < 20
    lines = [json.loads(line) for line in emu.api.get(f"/analyze/batches/{batch_id}/results").text.splitlines()]
    failed = [line for line in lines if line["status"] == "failed"]
    assert len(failed) == batch["failed_items"]
    assert {line["error"]["code"] for line in failed} == {"asset_unavailable"}
