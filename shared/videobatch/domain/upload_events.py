"""The "Object Created" event S3 sends to EventBridge, built for an object already in the bucket.

The ops CLI sends these to the ingest queue (``videobatch backfill``, ``requeue`` of an item that needs a new asset,
``reprocess``), so such objects go through ingest exactly as an upload does: same queue, same retries and
dead-letter queue, same deterministic item ids (sending one twice creates nothing twice). The key is URL-encoded as
S3 encodes it in its notifications (a space is ``+``, non-ASCII bytes ``%XX``); ingest decodes it the same way.

One addition S3 never makes: ``detail.videobatch.profile`` pins the analysis profile (``reprocess``), which makes the
item one of its own (``domain.items.item_id_for(..., profile)``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus


def s3_event_key(key: str) -> str:
    """A key as S3 writes it into event notifications (URL form encoding of its UTF-8 bytes, ``/`` kept)."""
    return quote_plus(key, safe="/")


def object_created_event(
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    size_bytes: int,
    etag: str | None,
    account: str,
    region: str,
    now: datetime,
    reason: str = "PutObject",
    pinned_profile: str | None = None,
    uploaded_at: datetime | None = None,
) -> dict[str, Any]:
    """``uploaded_at``: when S3 created the version (its event carries that time); ``now`` when unknown."""
    s3_object: dict[str, Any] = {"key": s3_event_key(key), "size": size_bytes}
    if etag:
        s3_object["etag"] = etag.strip('"')
    if version_id and version_id != "null":
        s3_object["version-id"] = version_id
    s3_object["sequencer"] = f"{int(now.timestamp() * 1_000_000):018X}"
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": s3_object,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": account,
        "reason": reason,
    }
    if pinned_profile is not None:
        detail["videobatch"] = {"profile": pinned_profile}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": (uploaded_at or now).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }
