"""Signed batch notifications, sent as batches turn terminal on the virtual clock, by HTTP or by an injected sender."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from tests.emulator.support import API_KEY, Emu, emulator_config, item, running
from twelvelabs_emulator.clock import ManualClock
from twelvelabs_emulator.server import EmulatorServer
from twelvelabs_emulator.webhooks import SIGNATURE_HEADER, WebhookRequest, verify

pytestmark = pytest.mark.integration

SECRET = "whsec-test"


def _expected_signature(header: str, body: bytes) -> str:
    timestamp = header.split(",", maxsplit=1)[0].removeprefix("t=")
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@pytest.fixture
def received() -> list[WebhookRequest]:
    return []


@pytest.fixture
def emu_with_sender(received: list[WebhookRequest]) -> Iterator[Emu]:
    with running(webhook_secret=SECRET, webhook_sender=received.append) as server:
        emu = Emu(server)
        try:
            yield emu
        finally:
            emu.close()


def test_a_completed_batch_sends_one_signed_notification(
    emu_with_sender: Emu, received: list[WebhookRequest], videos: dict[str, Path]
) -> None:
    emu = emu_with_sender
    asset = emu.upload(videos["short"])
    batch_id = emu.create_batch([item(asset), item(asset), item(asset)]).json()["batch_id"]
    emu.advance(2)
    assert received == []  # still processing
    assert "webhooks" not in emu.batch(batch_id)
    emu.advance(60)
    [note] = received
    assert note.url == "inprocess://webhook"
    assert note.headers["Content-Type"] == "application/json"
    assert note.headers[SIGNATURE_HEADER] == _expected_signature(note.headers[SIGNATURE_HEADER], note.body)
    sent_at = int(note.headers[SIGNATURE_HEADER].split(",")[0].removeprefix("t="))
    assert sent_at == int(datetime.fromisoformat(emu.advance(0)).timestamp())
    payload = json.loads(note.body)
    assert payload["type"] == "analyze.batch.completed"
    assert payload["data"] == {
        "batch_id": batch_id,
        "status": "completed",
        "total_items": 3,
        "ready_items": 3,
        "failed_items": 0,
        "canceled_items": 0,
    }
    assert payload["created_at"] == emu.batch(batch_id)["completed_at"]
    assert emu.batch(batch_id)["webhooks"] == [
        {"url": "inprocess://webhook", "delivered": True, "attempts": 1, "last_error": None}
    ]
    emu.advance(3_600)
    assert len(received) == 1


def test_canceled_and_expired_batches_notify_with_their_type(
    emu_with_sender: Emu, received: list[WebhookRequest], videos: dict[str, Path]
) -> None:
    emu = emu_with_sender
    asset = emu.upload(videos["short"])
    emu.settings(content_seconds_per_second=0.0001, item_concurrency=1)  # 20 s of content takes ~55 h
    to_cancel = emu.create_batch([item(asset), item(asset)]).json()["batch_id"]
    emu.api.post(f"/analyze/batches/{to_cancel}/cancel")  # still pending: every item is canceled at once
    to_expire = emu.create_batch([item(asset)]).json()["batch_id"]
    emu.advance(24 * 3_600)
    kinds = {_payload(n)["data"]["batch_id"]: (_payload(n)["type"], _payload(n)["data"]["status"]) for n in received}
    assert kinds == {
        to_cancel: ("analyze.batch.canceled", "canceled"),
        to_expire: ("analyze.batch.expired", "expired"),
    }


def test_the_signature_verifies_and_refuses_tampering_and_age() -> None:
    body = b'{"type":"analyze.batch.completed"}'
    now = datetime(2026, 1, 1, tzinfo=UTC)
    timestamp = int(now.timestamp())
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    header = f"t={timestamp},v1={digest}"
    assert verify(SECRET, header, body, now)
    assert not verify(SECRET, header, body + b" ", now)
    assert not verify("other-secret", header, body, now)
    assert not verify(SECRET, header, body, now + timedelta(minutes=5, seconds=1))


def test_a_sender_may_call_the_emulator_back(videos: dict[str, Path]) -> None:
    """The local stack hands notifications to a Lambda handler that reads the batch: no deadlock."""
    seen: list[str] = []
    holder: dict[str, EmulatorServer] = {}

    def handler(request: WebhookRequest) -> None:
        batch_id = json.loads(request.body)["data"]["batch_id"]
        answer = httpx.get(f"{holder['server'].api_url}/analyze/batches/{batch_id}", headers={"x-api-key": API_KEY})
        seen.append(answer.json()["status"])

    with running(webhook_secret=SECRET, webhook_sender=handler) as server:
        holder["server"] = server
        emu = Emu(server)
        try:
            asset = emu.upload(videos["short"])
            emu.create_batch([item(asset)])
            emu.advance(10)
        finally:
            emu.close()
    assert seen == ["completed"]


def test_failed_deliveries_are_recorded_retried_and_never_crash(videos: dict[str, Path]) -> None:
    attempts: list[datetime] = []

    def broken(request: WebhookRequest) -> None:
        attempts.append(datetime.now(UTC))
        raise ConnectionRefusedError("receiver down")

    with running(webhook_secret=SECRET, webhook_sender=broken) as server:
        emu = Emu(server)
        try:
            asset = emu.upload(videos["short"])
            batch_id = emu.create_batch([item(asset)]).json()["batch_id"]
            emu.advance(10)
            [status] = emu.batch(batch_id)["webhooks"]
            assert (status["delivered"], status["attempts"]) == (False, 1)
            assert status["last_error"] == "ConnectionRefusedError: receiver down"
            emu.advance(59)
            assert len(attempts) == 1
            emu.advance(1)
            emu.advance(60)
            emu.advance(600)
            assert len(attempts) == 3  # then it gives up
            assert emu.batch(batch_id)["webhooks"][0]["attempts"] == 3
        finally:
            emu.close()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]], list[int]]]:
    """A local HTTP endpoint answering the statuses queued in ``answers`` (200 once they run out)."""
    got: list[tuple[dict[str, str], bytes]] = []
    answers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(answers.pop(0) if answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", got, answers
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_delivery_to_a_configured_url(
    receiver: tuple[str, list[tuple[dict[str, str], bytes]], list[int]], videos: dict[str, Path]
) -> None:
    url, got, answers = receiver
    answers.append(500)
    with running(webhook_url=url, webhook_secret=SECRET) as server:
        emu = Emu(server)
        try:
            asset = emu.upload(videos["short"])
            batch_id = emu.create_batch([item(asset)]).json()["batch_id"]
            emu.advance(10)
            assert emu.batch(batch_id)["webhooks"] == [
                {
                    "url": url,
                    "delivered": False,
                    "attempts": 1,
                    "last_error": "WebhookDeliveryError: the endpoint answered HTTP 500",
                }
            ]
            emu.advance(60)
            assert emu.batch(batch_id)["webhooks"][0] == {
                "url": url,
                "delivered": True,
                "attempts": 2,
                "last_error": None,
            }
        finally:
            emu.close()
    assert len(got) == 2
    headers, body = got[-1]
    assert headers["tl-signature"] == _expected_signature(headers["tl-signature"], body)
    assert json.loads(body)["id"] == json.loads(got[0][1])["id"]  # a retry keeps the event id


def test_a_shared_clock_moved_directly_delivers_on_request(
    received: list[WebhookRequest], videos: dict[str, Path]
) -> None:
    clock = ManualClock()
    with running(clock=clock, webhook_secret=SECRET, webhook_sender=received.append) as server:
        emu = Emu(server)
        try:
            asset = emu.upload(videos["short"])
            emu.create_batch([item(asset)])
            clock.advance(10)  # the simulation moves its own clock, not through /_emulator/clock
            assert server.deliver_webhooks() == 1
        finally:
            emu.close()
    assert len(received) == 1


def test_webhook_configuration_is_checked() -> None:
    with pytest.raises(ValidationError):
        emulator_config(webhook_url="http://127.0.0.1:1/hooks")
    with pytest.raises(ValueError, match="webhook_secret"):
        EmulatorServer(emulator_config(), webhook_sender=lambda request: None)
    with pytest.raises(ValueError, match="webhook_url or a webhook_sender"):
        EmulatorServer(emulator_config(webhook_secret=SECRET))


def _payload(note: WebhookRequest) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(note.body)
    return parsed
