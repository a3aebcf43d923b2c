"""Shared helpers for tests that talk to a running emulator over real HTTP (127.0.0.1, port 0)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from twelvelabs_emulator import EmulatorConfig, EmulatorServer, EmulatorSettings, Variant

API_KEY = "test-key"
ASSET_READY_SECONDS = 5.0


def emulator_config(*, variants: Iterable[str] = (), **overrides: Any) -> EmulatorConfig:
    settings = EmulatorSettings(
        item_concurrency=2,
        content_seconds_per_second=10.0,
        asset_ready_seconds=5.0,
        variants=frozenset(Variant(name) for name in variants),
    )
    overrides.setdefault("api_key", API_KEY)
    return EmulatorConfig(settings=settings, multipart_chunk_bytes=4096, **overrides)


@contextmanager
def running(clock: Any = None, webhook_sender: Any = None, **overrides: Any) -> Iterator[EmulatorServer]:
    with EmulatorServer(emulator_config(**overrides), clock=clock, webhook_sender=webhook_sender) as server:
        yield server


class Emu:
    """An API client (with key) and a control client for one emulator."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.api = httpx.Client(base_url=server.api_url, headers={"x-api-key": API_KEY}, timeout=30.0)
        self.control = httpx.Client(base_url=server.base_url, timeout=30.0)

    def close(self) -> None:
        self.api.close()
        self.control.close()

    def advance(self, seconds: float) -> str:
        response = self.control.post("/_emulator/clock", json={"advance_seconds": seconds})
        response.raise_for_status()
        now: str = response.json()["now"]
        return now

    def settings(self, **changes: Any) -> dict[str, Any]:
        response = self.control.post("/_emulator/settings", json=changes)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def faults(self, rules: list[dict[str, Any]], seed: int = 0) -> httpx.Response:
        return self.control.post("/_emulator/faults", json={"seed": seed, "rules": rules})

    def upload(self, path: Path, *, ready: bool = True) -> str:
        with path.open("rb") as handle:
            response = self.api.post("/assets", data={"method": "direct"}, files={"file": (path.name, handle)})
        assert response.status_code == 201, response.text
        asset_id: str = response.json()["_id"]
        if ready:
            self.advance(ASSET_READY_SECONDS)
        return asset_id

    def results(self, batch_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/analyze/batches/{batch_id}/results")
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def create_batch(self, requests: list[dict[str, Any]], **body: Any) -> httpx.Response:
        payload = {"model_name": "pegasus1.5", "analysis_mode": "general", "requests": requests, **body}
        payload.setdefault("defaults", {"prompt": {"input_text": "Describe the video."}})
        return self.api.post("/analyze/batches", json=payload)

    def batch(self, batch_id: str) -> dict[str, Any]:
        response = self.api.get(f"/analyze/batches/{batch_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def item(asset_id: str, **fields: Any) -> dict[str, Any]:
    return {"video": {"type": "asset_id", "asset_id": asset_id}, **fields}


def raw_exchange(server: EmulatorServer, request_head: str, body: bytes = b"", timeout_seconds: float = 5.0) -> bytes:
    """Send a hand-written request (headers as given, body as given, nothing more) and read the whole answer.

    For requests an HTTP client refuses to send (a Content-Length that lies, a malformed one); the server closes
    such connections, so reading to the end returns exactly its answer.
    """
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout_seconds) as connection:
        connection.sendall(request_head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        received = b""
        while chunk := connection.recv(65_536):
            received += chunk
    return received


def status_of(raw_answer: bytes) -> int:
    return int(raw_answer.split(b" ", 2)[1])
