"""Signed batch notifications, sent when a batch turns terminal on the emulator's clock.

Signature (documented): header ``TL-Signature: t=<unix seconds>,v1=<hex>`` with v1 = HMAC-SHA256(secret,
``"<t>.<raw body>"``); a receiver compares in constant time and refuses a ``t`` older than 5 minutes.

Payload (a guess: the batch-level notification's payload is not documented). It follows the documented task
events' envelope (``id``, ``type``, ``created_at``, ``data``)::

    {"id": "<event id, the same on every retry>", "type": "analyze.batch.completed" | "analyze.batch.canceled"
     | "analyze.batch.expired", "created_at": "<when the batch turned terminal>",
     "data": {"batch_id", "status", "total_items", "ready_items", "failed_items", "canceled_items"}}

Delivery: a ``WebhookSender`` (an HTTP POST to the configured URL by default, or any callable, such as the local
stack handing the request to a Lambda handler in process) is called outside the state lock; anything it raises is
recorded as the attempt's ``last_error`` and retried ``RETRY_SECONDS`` of emulator time later, up to
``MAX_ATTEMPTS`` attempts. The batch object's ``webhooks[]`` shows each endpoint's status once a first attempt
was made.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import httpx

from twelvelabs_emulator.clock import rfc3339
from twelvelabs_emulator.models import BatchRecord, WebhookStatus

SIGNATURE_HEADER: Final = "TL-Signature"
SIGNATURE_TOLERANCE_SECONDS: Final = 300
MAX_ATTEMPTS: Final = 3
RETRY_SECONDS: Final = 60.0
HTTP_TIMEOUT_SECONDS: Final = 10.0
_ERROR_CHARS: Final = 300


@dataclass(frozen=True)
class WebhookRequest:
    """What a sender delivers: POST ``body`` to ``url`` with ``headers`` (Content-Type and TL-Signature)."""

    url: str
    body: bytes
    headers: dict[str, str]


WebhookSender = Callable[[WebhookRequest], None]


class WebhookDeliveryError(Exception):
    """The receiver did not accept the notification (non-2xx)."""


def http_sender(request: WebhookRequest) -> None:
    """POST the notification; a non-2xx answer is a failed delivery."""
    response = httpx.post(
        request.url, content=request.body, headers=request.headers, timeout=HTTP_TIMEOUT_SECONDS, trust_env=False
    )
    if not response.is_success:
        raise WebhookDeliveryError(f"the endpoint answered HTTP {response.status_code}")


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The ``TL-Signature`` header value for ``body`` signed at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, now: datetime) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most 5 minutes old, as a receiver checks."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, digest = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or now.timestamp() - int(timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    expected = signature(secret, body, int(timestamp)).split("v1=", 1)[1]
    return hmac.compare_digest(expected, digest)


@dataclass
class Notification:
    batch_id: str
    event_id: str
    payload: dict[str, Any]
    due_at: datetime
    attempts: int = 0


@dataclass
class WebhookOutbox:
    """Notifications waiting to be sent; every method but ``send`` runs under the state lock."""

    url: str
    secret: str
    sender: WebhookSender
    pending: list[Notification] = field(default_factory=list)

    def enqueue(self, batch: BatchRecord, event_id: str) -> None:
        ended = batch.ended_at or batch.advanced_to
        payload = {
            "id": event_id,
            "type": f"analyze.batch.{batch.status}",
            "created_at": rfc3339(ended),
            "data": _batch_data(batch),
        }
        self.pending.append(Notification(batch.batch_id, event_id, payload, due_at=ended))
        batch.notification_queued = True

    def take_due(self, now: datetime) -> list[Notification]:
        due = [note for note in self.pending if note.due_at <= now]
        self.pending = [note for note in self.pending if note.due_at > now]
        return due

    def send(self, note: Notification, now: datetime) -> str | None:
        """Deliver one notification; the error text on failure. Never raises: a receiver cannot crash the emulator."""
        body = json.dumps(note.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self.secret, body, int(now.timestamp())),
        }
        try:
            self.sender(WebhookRequest(self.url, body, headers))
        except Exception as error:
            return f"{type(error).__name__}: {error}"[:_ERROR_CHARS]
        return None

    def settle(self, note: Notification, error: str | None, batch: BatchRecord | None, now: datetime) -> None:
        note.attempts += 1
        if batch is not None:
            status = _status_for(batch, self.url)
            status.attempts = note.attempts
            status.delivered = error is None
            status.last_error = error
        if error is not None and note.attempts < MAX_ATTEMPTS and batch is not None:
            note.due_at = now + timedelta(seconds=RETRY_SECONDS)
            self.pending.append(note)


def _status_for(batch: BatchRecord, url: str) -> WebhookStatus:
    for status in batch.webhooks:
        if status.url == url:
            return status
    status = WebhookStatus(url=url)
    batch.webhooks.append(status)
    return status


def _batch_data(batch: BatchRecord) -> dict[str, Any]:
    counts = dict.fromkeys(("ready", "failed", "canceled"), 0)
    for item in batch.items:
        if item.status in counts:
            counts[item.status] += 1
    return {
        "batch_id": batch.batch_id,
        "status": batch.status,
        "total_items": len(batch.items),
        **{f"{status}_items": count for status, count in counts.items()},
    }
