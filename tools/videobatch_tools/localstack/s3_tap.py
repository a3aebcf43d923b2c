"""Capture moto's S3 -> EventBridge notifications so the local stack can deliver them the way AWS does.

What moto 5.2 does: when a bucket has ``EventBridgeConfiguration`` set, every PutObject / CopyObject /
CompleteMultipartUpload calls ``moto.s3.notifications._send_event_bridge_message``, which builds an "Object
Created" event and hands it to the matching rules of *every* event bus in the region (not only the default bus),
whose SQS targets then receive it. What it gets wrong, compared with AWS:

- ``detail.object`` carries ``eTag`` instead of ``etag``;
- ``detail.reason`` is ``"ObjectCreated"`` instead of ``PutObject`` / ``POST Object`` / ``CopyObject`` /
  ``CompleteMultipartUpload``;
- ``id``, ``sequencer`` and ``request-id`` are constants, so consumers cannot deduplicate or order events;
- ``time`` is the wall clock, which a simulation driven by a virtual clock cannot use.

So while a tap is open, that function is replaced by one that records what happened (bucket, key, size,
etag, version id, S3 event name) and nothing else. The bucket's ``EventBridgeConfiguration`` still decides whether
moto calls it at all. ``LocalWiring`` then builds the exact AWS event and routes it by the template's rules.
The replacement is process-wide (moto's backends are process-wide too) and removed when the last tap closes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import moto.s3.notifications as moto_s3_notifications


@dataclass(frozen=True)
class S3Notification:
    """One S3 event as moto reported it, before it became an EventBridge event."""

    account_id: str
    region: str
    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    # moto's S3 event name, e.g. "s3:ObjectCreated:Put".
    event_name: str


class S3NotificationTap:
    """Thread-safe inbox of S3 notifications (moto records them on its server thread)."""

    def __init__(self) -> None:
        self._inbox: queue.SimpleQueue[S3Notification] = queue.SimpleQueue()

    def put(self, notification: S3Notification) -> None:
        self._inbox.put(notification)

    def drain(self) -> list[S3Notification]:
        drained: list[S3Notification] = []
        while True:
            try:
                drained.append(self._inbox.get_nowait())
            except queue.Empty:
                return drained

    def pending(self) -> bool:
        return not self._inbox.empty()


class _Diversion:
    """Process-wide state of the replacement: the open taps and moto's function to put back."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.taps: list[S3NotificationTap] = []
        self.original: Any = None


_diversion = _Diversion()


def _record(account_id: str, bucket: Any, event_name: Any, key: Any) -> None:
    """Stand-in for moto's _send_event_bridge_message (same signature)."""
    notification = S3Notification(
        account_id=account_id,
        region=str(bucket.region_name),
        bucket=str(bucket.name),
        key=str(key.name),
        size=int(key.size),
        etag=str(key.etag).strip('"'),
        # moto reports "null" for objects written while versioning was off, as S3 does in its APIs.
        version_id=None if key.version_id in (None, "null") else str(key.version_id),
        event_name=str(getattr(event_name, "value", event_name)),
    )
    with _diversion.lock:
        taps = list(_diversion.taps)
    for tap in taps:
        tap.put(notification)


@contextmanager
def tap_s3_eventbridge() -> Iterator[S3NotificationTap]:
    """Divert moto's S3 EventBridge notifications into a tap for the duration of the block."""
    tap = S3NotificationTap()
    with _diversion.lock:
        if not _diversion.taps:
            _diversion.original = moto_s3_notifications._send_event_bridge_message
            moto_s3_notifications._send_event_bridge_message = _record
        _diversion.taps.append(tap)
    try:
        yield tap
    finally:
        with _diversion.lock:
            _diversion.taps.remove(tap)
            if not _diversion.taps:
                moto_s3_notifications._send_event_bridge_message = _diversion.original
                _diversion.original = None
