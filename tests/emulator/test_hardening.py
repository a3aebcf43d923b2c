"""What a hostile client cannot do: make the emulator read unauthenticated or unbounded bodies, recurse, reach the
control endpoints from elsewhere, read back fetched URLs, fetch arbitrary hosts, or steer presigned URLs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.support import API_KEY, Emu, item, raw_exchange, running, status_of
from twelvelabs_emulator.server import Incoming

pytestmark = pytest.mark.integration

HUGE = 100_000_000_000


def _batch_head(key: str, length: str) -> str:
    return (
        f"POST /v1.3/analyze/batches HTTP/1.1\nHost: x\nx-api-key: {key}\n"
        f"Content-Type: application/json\nContent-Length: {length}\n"
    )


def test_the_key_is_checked_before_the_body_is_read(emu: Emu) -> None:
    started = time.monotonic()
    answer = raw_exchange(emu.server, _batch_head("wrong", str(HUGE)))
    assert status_of(answer) == 401
    assert b"Connection: close" in answer
    assert time.monotonic() - started < 2  # answered at once: it never waited for 100 GB


def test_a_body_over_the_bound_is_413_without_reading_or_allocating(emu: Emu) -> None:
    started = time.monotonic()
    answer = raw_exchange(emu.server, _batch_head(API_KEY, str(HUGE)))
    assert status_of(answer) == 413
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "+7"])
def test_a_malformed_content_length_is_400(emu: Emu, length: str) -> None:
    answer = raw_exchange(emu.server, _batch_head(API_KEY, length))
    assert status_of(answer) == 400
    assert b"Content-Length" in answer


def test_a_small_refused_body_is_drained_and_the_connection_stays_usable(emu: Emu) -> None:
    with httpx.Client(base_url=emu.server.api_url) as client:
        refused = client.post("/analyze/batches", json={"requests": []}, headers={"x-api-key": "wrong"})
        again = client.get("/analyze/batches", headers={"x-api-key": API_KEY})
    assert (refused.status_code, again.status_code) == (401, 200)
    assert refused.headers.get("connection") != "close"


@pytest.mark.parametrize("depth", [65, 100_000])
def test_json_nested_too_deep_is_400_not_a_recursion_error(emu: Emu, depth: int) -> None:
    body = "[" * depth + "]" * depth
    response = emu.api.post("/analyze/batches", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "nests deeper than 64 levels" in response.json()["error"]["message"]


def test_json_nested_within_the_bound_is_read(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(25):  # 25 object levels plus the envelope: within 64
        schema = {"type": "object", "properties": {"x": schema}}
    response = emu.create_batch([item(asset, response_format={"type": "json_schema", "json_schema": schema})])
    assert response.status_code == 201, response.text


def test_user_metadata_nested_too_deep_is_400(emu: Emu, videos: dict[str, Path]) -> None:
    metadata = json.dumps({"a": json.loads("[" * 70 + "]" * 70)})
    with videos["short"].open("rb") as handle:
        response = emu.api.post(
            "/assets", data={"method": "direct", "user_metadata": metadata}, files={"file": ("a.mp4", handle)}
        )
    assert response.status_code == 400
    assert set(response.json()) == {"code", "message"}


def _control_request(client_host: str, headers: dict[str, str] | None = None) -> Incoming:
    return Incoming("GET", "/_emulator/state", {}, headers or {}, client_host=client_host, content_length=0)


def test_control_endpoints_refuse_other_hosts() -> None:
    """The peer address comes from the socket; a request built with another peer takes the same path."""
    with running() as server:
        for host in ("203.0.113.7", "10.0.0.2", "::ffff:192.0.2.1", "not-an-address"):
            response = server.handle(_control_request(host), lambda n: b"")
            assert response is not None
            assert response.status == 403, host
        for host in ("127.0.0.1", "127.10.0.1", "::1", "::ffff:127.0.0.1"):
            response = server.handle(_control_request(host), lambda n: b"")
            assert response is not None
            assert response.status == 200, host


def test_a_control_token_is_then_required_from_every_host() -> None:
    with running(control_token="s3cret-token") as server:
        assert httpx.get(f"{server.base_url}/_emulator/state").status_code == 403
        granted = httpx.get(f"{server.base_url}/_emulator/state", headers={"x-emulator-token": "s3cret-token"})
        assert granted.status_code == 200
        remote = server.handle(_control_request("203.0.113.7", {"x-emulator-token": "s3cret-token"}), lambda n: b"")
        assert remote is not None
        assert remote.status == 200


def test_the_old_content_read_back_is_gone(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    assert emu.control.get(f"/_emulator/assets/{asset}/content").status_code == 404
    assert emu.control.get(f"/_assets/{asset}/content").status_code == 403  # unsigned


def test_only_signed_urls_of_multipart_assets_read_their_bytes(emu: Emu) -> None:
    data = b"x" * 5000
    session = emu.api.post("/assets/multipart-uploads", json={"filename": "a.mp4", "type": "video", "total_size": 5000})
    urls = session.json()["upload_urls"]
    proofs = []
    for chunk in urls:
        piece = data[(chunk["chunk_index"] - 1) * 4096 : chunk["chunk_index"] * 4096]
        etag = httpx.put(chunk["url"], content=piece).headers["etag"]
        proofs.append(
            {"chunk_index": chunk["chunk_index"], "proof": etag, "proof_type": "etag", "chunk_size": len(piece)}
        )
    report = emu.api.post(f"/assets/multipart-uploads/{session.json()['upload_id']}", json={"completed_chunks": proofs})
    url = report.json()["url"]
    assert httpx.get(url).content == data
    assert httpx.get(url.replace("signature=", "signature=0")).status_code == 403
    emu.advance(3_600)
    assert httpx.get(url).status_code == 403  # expired


@pytest.fixture
def redirector() -> Iterator[tuple[str, list[str]]]:
    """A local server whose /to?url=X redirects to X and whose other paths serve a small body; logs each hit."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path.startswith("/to?url="):
                self.send_response(302)
                self.send_header("Location", self.path.removeprefix("/to?url="))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"data")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _fetched_asset(emu: Emu, url: str) -> dict[str, Any]:
    created = emu.api.post("/assets", data={"method": "url", "url": url})
    assert created.status_code == 201, created.text
    emu.advance(5)
    asset: dict[str, Any] = emu.api.get(f"/assets/{created.json()['_id']}").json()
    return asset


def test_url_assets_only_from_allowed_hosts(emu: Emu) -> None:
    for url in ("http://10.1.2.3/v.mp4", "http://169.254.169.254/latest/meta-data", "http://example.com/v.mp4"):
        refused = emu.api.post("/assets", data={"method": "url", "url": url})
        assert refused.status_code == 400, url
        assert "allowed hosts" in refused.json()["message"]


def test_every_redirect_hop_is_checked_again(redirector: tuple[str, list[str]]) -> None:
    address, hits = redirector
    port = address.split(":")[1]
    with running(url_fetch_allowed_hosts=("127.0.0.1",)) as server:
        emu = Emu(server)
        try:
            # localhost reaches the same server, but only the address 127.0.0.1 is allowed here.
            refused = _fetched_asset(emu, f"http://{address}/to?url=http://localhost:{port}/secret")
            assert refused["status"] == "failed"
            assert "not allowed" in refused["error"]["message"]
            assert "/secret" not in hits
            followed = _fetched_asset(emu, f"http://{address}/to?url=http://{address}/fine")
            assert "/fine" in hits
            assert "not allowed" not in (followed.get("error") or {}).get("message", "")
        finally:
            emu.close()


def test_presigned_urls_ignore_the_host_header(emu: Emu) -> None:
    body = {"filename": "a.mp4", "type": "video", "total_size": 5000}
    session = emu.api.post("/assets/multipart-uploads", json=body, headers={"host": "evil.example"})
    assert all(u["url"].startswith(f"{emu.server.base_url}/_uploads/") for u in session.json()["upload_urls"])


def test_presigned_urls_use_the_configured_public_base_url() -> None:
    with running(public_base_url="https://uploads.example.test") as server:
        emu = Emu(server)
        try:
            body = {"filename": "a.mp4", "type": "video", "total_size": 5000}
            session = emu.api.post("/assets/multipart-uploads", json=body).json()
            assert all(u["url"].startswith("https://uploads.example.test/_uploads/") for u in session["upload_urls"])
        finally:
            emu.close()
