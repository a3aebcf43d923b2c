"""TwelveLabs webhook notifications: who signed them, how old they are, and which batch they name.

Signature (documented): header ``TL-Signature: t=<unix seconds>,v1=<hex>`` where v1 = HMAC-SHA256(secret,
``"<t>.<raw request body>"``). A notification is trusted only when the digest matches (compared in constant time)
and ``t`` is at most five minutes from now; the caller also refuses a signature it has seen before (replay).

Payload: batch notifications are not documented. A trusted notification is only a hint that something changed:
the batch named anywhere the documented task events put ids (``data.batch_id``, ``batch_id``, ``data.id`` of a
``*.batch.*`` type) or the task it names (``data.task_id``, ``task_id``) is re-read from the API, which stays the
source of truth; polling goes on regardless.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from videobatch.errors import InvalidInputError

SIGNATURE_HEADER: Final = "tl-signature"
TOLERANCE_SECONDS: Final = 300
MAX_BODY_BYTES: Final = 256 * 1024
_HEX_DIGEST: Final = re.compile(r"^[0-9a-f]{64}$")
_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class WebhookRejected(InvalidInputError):
    """The request is not a notification this pipeline trusts (401) or can read (400)."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


class SignedRequest(BaseModel):
    """A notification whose signature checked out."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    timestamp: int
    digest: str  # the v1 hex: what the replay guard remembers


class Mentioned(BaseModel):
    """What a notification names: a batch, or a task whose batch must be looked up."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    batch_id: str | None = None
    task_id: str | None = None


def verify_signature(secret: str, header: str | None, body: bytes, *, now: datetime) -> SignedRequest:
    """The signature of ``body``, checked; WebhookRejected(401) naming what is wrong otherwise."""
    if not header:
        raise WebhookRejected(401, "no TL-Signature header")
    parts = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, digest = parts.get("t", ""), parts.get("v1", "").lower()
    if not timestamp.isdigit() or not _HEX_DIGEST.match(digest):
        raise WebhookRejected(401, "TL-Signature is not t=<unix seconds>,v1=<hex sha256>")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, digest):
        raise WebhookRejected(401, "the signature does not match the body")
    if abs(now.timestamp() - int(timestamp)) > TOLERANCE_SECONDS:
        raise WebhookRejected(401, f"the signature is more than {TOLERANCE_SECONDS} s from now (stale or replayed)")
    return SignedRequest(timestamp=int(timestamp), digest=digest)


def mentioned(body: bytes) -> Mentioned:
    """The batch (or task) a trusted notification names; WebhookRejected(400) when it names neither."""
    try:
        document: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise WebhookRejected(400, f"the body is not JSON: {error}") from error
    if not isinstance(document, Mapping):
        raise WebhookRejected(400, "the body is not a JSON object")
    raw_data = document.get("data")
    data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
    kind = str(document.get("type", ""))
    batch_id = _id(data.get("batch_id")) or _id(document.get("batch_id"))
    if batch_id is None and ".batch." in kind:
        batch_id = _id(data.get("id"))
    task_id = _id(data.get("task_id")) or _id(document.get("task_id"))
    if batch_id is None and task_id is None and ".task." in kind:
        task_id = _id(data.get("id"))
    if batch_id is None and task_id is None:
        raise WebhookRejected(400, "the notification names no batch and no task")
    return Mentioned(batch_id=batch_id, task_id=task_id)


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and _ID.match(value) else None
