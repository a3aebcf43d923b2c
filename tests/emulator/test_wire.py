"""Documented wire points: error body shapes per route, documented codes only, status codes, decimal size limits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.emulator.support import Emu, item, raw_exchange, status_of
from twelvelabs_emulator.api_errors import DOCUMENTED_CODES

pytestmark = pytest.mark.integration


def test_analyze_errors_are_nested_only(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    answers = [
        emu.create_batch([item(asset, temperature=3)]),
        emu.api.get(f"/analyze/batches/{'0' * 24}"),
        emu.api.get(f"/analyze/tasks/{'0' * 24}"),
        emu.api.get("/analyze/batches", params={"page_limit": 99}),
    ]
    for response in answers:
        body = response.json()
        assert set(body) == {"error"}, body
        assert {"code", "message"} <= set(body["error"])


def test_asset_errors_are_flat_only(emu: Emu) -> None:
    answers = [
        emu.api.get(f"/assets/{'0' * 24}"),
        emu.api.post("/assets", data={"method": "ftp"}),
        emu.api.post("/assets/multipart-uploads", json={"filename": "a.mp4", "type": "video"}),
        emu.api.get(f"/assets/multipart-uploads/{'0' * 24}"),
    ]
    for response in answers:
        assert response.status_code in (400, 404)
        assert set(response.json()) == {"code", "message"}, response.text


def test_every_api_error_uses_a_documented_code(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    processing = emu.upload(videos["short"], ready=False)
    batch_id = emu.create_batch([item(asset)]).json()["batch_id"]
    answers = [
        emu.api.get("/nowhere"),
        emu.api.put("/analyze/batches"),
        httpx.get(f"{emu.server.api_url}/assets"),
        emu.create_batch([item("f" * 24)]),
        emu.create_batch([item(processing)]),
        emu.create_batch([item(asset, unknown_field=1)]),
        emu.create_batch([item(asset)], defaults={}),
        emu.api.delete(f"/analyze/batches/{batch_id}"),
        emu.api.post(f"/analyze/batches/{'0' * 24}/cancel"),
        *[emu.create_batch([item(asset)]) for _ in range(5)],
    ]
    seen = set()
    for response in answers:
        assert response.status_code >= 400 or response.status_code == 201, response.text
        if response.status_code >= 400:
            body = response.json()
            seen.add((body.get("error") or body)["code"])
    assert seen <= DOCUMENTED_CODES
    assert {"resource_not_exist", "api_key_invalid", "parameter_unknown", "too_many_requests"} <= seen


def test_cancel_answers_202_and_delete_204(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    batch_id = emu.create_batch([item(asset)] * 3).json()["batch_id"]
    canceled = emu.api.post(f"/analyze/batches/{batch_id}/cancel")
    assert canceled.status_code == 202
    assert canceled.json()["status"] == "canceling"
    emu.advance(10)
    deleted = emu.api.delete(f"/analyze/batches/{batch_id}")
    assert (deleted.status_code, deleted.content) == (204, b"")


def test_multipart_upload_limit_is_ten_decimal_gigabytes(emu: Emu) -> None:
    def session(total_size: int) -> httpx.Response:
        return emu.api.post(
            "/assets/multipart-uploads", json={"filename": "a.mp4", "type": "video", "total_size": total_size}
        )

    assert session(10_000_000_000).status_code == 201
    too_big = session(10_000_000_001)
    assert too_big.status_code == 400
    assert "10000000000" in too_big.json()["message"]


def test_direct_upload_body_over_200_decimal_megabytes_is_refused_unread(emu: Emu) -> None:
    # The body bound is the 200 MB file plus the form around it; nothing is sent, nothing is waited for.
    head = (
        "POST /v1.3/assets HTTP/1.1\nHost: x\nx-api-key: test-key\n"
        "Content-Type: multipart/form-data; boundary=x\nContent-Length: 201000001\n"
    )
    assert status_of(raw_exchange(emu.server, head)) == 413


@pytest.fixture
def oversized_file_server() -> Iterator[str]:
    """Declares a file one byte over 4 decimal GB (under 4 GiB) and sends none of it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "4000000001")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/big.mp4"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_url_assets_over_four_decimal_gigabytes_fail(emu: Emu, oversized_file_server: str) -> None:
    created = emu.api.post("/assets", data={"method": "url", "url": oversized_file_server})
    assert created.status_code == 201
    emu.advance(5)
    asset = emu.api.get(f"/assets/{created.json()['_id']}").json()
    assert asset["status"] == "failed"
    assert "4000000000-byte limit" in asset["error"]["message"]
