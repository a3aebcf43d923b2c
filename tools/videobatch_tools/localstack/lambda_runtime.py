"""What AWS Lambda and EventBridge would hand a handler: the context object, event shapes, schedule expressions."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

from videobatch.clock import Clock
from videobatch_tools.localstack.resources import LocalFunction
from videobatch_tools.localstack.s3_tap import S3Notification


class LocalLambdaContext:
    """The Lambda context object; the remaining time follows the injected clock and the template's Timeout."""

    def __init__(self, function: LocalFunction, clock: Clock) -> None:
        self._clock = clock
        started = clock.now()
        self.deadline = started + timedelta(seconds=function.timeout_seconds)
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = function.log_group or f"/aws/lambda/{function.name}"
        self.log_stream_name = f"{started:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        remaining = (self.deadline - self._clock.now()).total_seconds()
        return max(0, int(remaining * 1000))


def aws_time(moment: datetime) -> str:
    """EventBridge's event time format: whole seconds, UTC, Z suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_event(*, rule_arn: str, account_id: str, region: str, moment: datetime) -> dict[str, Any]:
    """The event an EventBridge schedule rule delivers to a Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": aws_time(moment),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


# S3 API operation behind each "ObjectCreated" event name, as EventBridge reports it in detail.reason.
_CREATED_REASONS: Mapping[str, str] = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}


def event_key(key: str) -> str:
    """An object key as S3 writes it into its event notifications: URL form encoding of the UTF-8 bytes.

    A space becomes ``+``, every byte outside the unreserved characters (``A-Z a-z 0-9 - _ . ~``) and ``/``
    becomes ``%XX``: ``my video.mp4`` -> ``my+video.mp4``, ``café`` -> ``caf%C3%A9``, ``+`` -> ``%2B``,
    ``%`` -> ``%25``. Consumers decode it with ``urllib.parse.unquote_plus``.
    """
    return quote_plus(key, safe="/")


def object_created_event(notification: S3Notification, *, moment: datetime, sequencer: str) -> dict[str, Any] | None:
    """The exact "Object Created" event S3 sends to EventBridge, or None for other S3 events."""
    reason = _CREATED_REASONS.get(notification.event_name)
    if reason is None:
        return None
    s3_object: dict[str, Any] = {
        "key": event_key(notification.key),
        "size": notification.size,
        "etag": notification.etag,
    }
    if notification.version_id is not None:
        s3_object["version-id"] = notification.version_id
    s3_object["sequencer"] = sequencer
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": notification.account_id,
        "time": aws_time(moment),
        "region": notification.region,
        "resources": [f"arn:aws:s3:::{notification.bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": notification.bucket},
            "object": s3_object,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": notification.account_id,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        },
    }


class UnsupportedScheduleError(ValueError):
    """A schedule expression the local stack cannot fire (cron expressions)."""


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_period(expression: str) -> timedelta:
    """The period of ``rate(N unit)``."""
    match = _RATE.match(expression.strip())
    if match is None:
        raise UnsupportedScheduleError(f"not a rate expression the local stack can fire: {expression!r}")
    amount, unit = int(match.group(1)), match.group(2).rstrip("s")
    if amount < 1:
        raise UnsupportedScheduleError(f"rate must be positive: {expression!r}")
    return timedelta(seconds=amount * _UNIT_SECONDS[unit])


def at_time(expression: str, timezone: str = "UTC") -> datetime | None:
    """The moment of a one-time ``at(yyyy-mm-ddThh:mm:ss)`` expression, or None for other expressions."""
    match = _AT.match(expression.strip())
    if match is None:
        return None
    local = datetime.fromisoformat(match.group(1)).replace(tzinfo=ZoneInfo(timezone or "UTC"))
    return local.astimezone(UTC)
