"""Translation of HTTP outcomes into the project's exception tree, done once at the boundary.

- An error status becomes the APIStatusError subclass for it, with the code, message and details from either of
  the API's body shapes (flat ``{code, message}`` or nested ``{"error": {code, message, details}}``; a body with both
  is read from the nested part first) and the wait the API asked for, in seconds: ``Retry-After``, and for a 429
  also ``X-Ratelimit-Reset`` when ``X-Ratelimit-Remaining`` is 0 or absent (the later of the two wins: retrying
  before the window resets would only be refused again).
- An httpx exception becomes TransportError when the request provably never left (connect failure, no pooled
  connection in time) and OutcomeUnknownError otherwise (timeout, dropped connection after sending).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import httpx

from videobatch.errors import APIStatusError, OutcomeUnknownError, TransportError, api_error_class

_MESSAGE_CHARS = 500
_DIGITS = re.compile(r"^\s*\d+(\.\d+)?\s*$")
_RATE_LIMITED = 429
# X-Ratelimit-Reset is documented as epoch seconds; a smaller number can only be seconds from now.
_EPOCH_FLOOR_SECONDS = 1_000_000_000
# PoolTimeout means no connection was free before the timeout: nothing was written to the network yet.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def status_error(response: httpx.Response, now: datetime) -> APIStatusError:
    """The typed error for a non-2xx response whose body has been read."""
    code, message, details = parse_error_body(response)
    error_class = api_error_class(response.status_code)
    wait_seconds = parse_retry_after(response.headers, now)
    if response.status_code == _RATE_LIMITED:
        reset_seconds = parse_ratelimit_reset(response.headers, now)
        if reset_seconds is not None:
            wait_seconds = max(wait_seconds or 0.0, reset_seconds)
    return error_class(
        message,
        status_code=response.status_code,
        code=code,
        retry_after_seconds=wait_seconds,
        details=details,
    )


def parse_error_body(response: httpx.Response) -> tuple[str | None, str, Any]:
    """(code, message, details) from either error shape; falls back to the raw text for non-JSON bodies."""
    fallback = response.text[:_MESSAGE_CHARS] or response.reason_phrase or "no message"
    try:
        body = json.loads(response.content)
    except ValueError:
        return None, fallback, None
    if not isinstance(body, dict):
        return None, fallback, None
    nested = body.get("error")
    parts = [nested] if isinstance(nested, dict) else []
    parts.append(body)
    code = _first_string(parts, "code")
    message = _first_string(parts, "message") or fallback
    details = next((part["details"] for part in parts if part.get("details") is not None), None)
    return code, message, details


def parse_retry_after(headers: httpx.Headers, now: datetime) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or HTTP-date) or ``Retry-After-Ms``; None if absent."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None and _DIGITS.match(milliseconds):
        return float(milliseconds) / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    if _DIGITS.match(value):
        return float(value)
    from email.utils import parsedate_to_datetime  # only 429/503 with a date need it

    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - now).total_seconds())


def parse_ratelimit_reset(headers: httpx.Headers, now: datetime) -> float | None:
    """Seconds until ``X-Ratelimit-Reset`` when the window is spent (``X-Ratelimit-Remaining`` 0 or absent)."""
    reset = headers.get("x-ratelimit-reset")
    remaining = headers.get("x-ratelimit-remaining")
    if reset is None or not _DIGITS.match(reset):
        return None
    if remaining is not None and (not _DIGITS.match(remaining) or float(remaining) > 0):
        return None
    value = float(reset)
    seconds = value - now.timestamp() if value >= _EPOCH_FLOOR_SECONDS else value
    return max(0.0, seconds)


def transport_error(exc: httpx.HTTPError, request: httpx.Request) -> TransportError | OutcomeUnknownError:
    what = f"{request.method} {request.url.copy_with(query=None)}"
    if isinstance(exc, _NEVER_SENT):
        error: TransportError | OutcomeUnknownError = TransportError(f"{what}: request not sent: {exc!r}")
    else:
        error = OutcomeUnknownError(f"{what}: no definitive answer after sending: {exc!r}")
    error.__cause__ = exc
    return error


def _first_string(parts: list[dict[str, Any]], key: str) -> str | None:
    for part in parts:
        value = part.get(key)
        if isinstance(value, str) and value:
            return value
    return None
