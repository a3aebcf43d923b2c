"""Rate limits: requests and video seconds per UTC minute and per UTC day, in fixed windows on the emulator's clock.

A request over any configured limit answers 429 ``too_many_requests`` with the headers earlier API versions
document, ``X-Ratelimit-Limit``, ``X-Ratelimit-Remaining``, ``X-Ratelimit-Used`` and ``X-Ratelimit-Reset`` (epoch
seconds when the window ends), plus ``Retry-After`` (seconds to that end) unless the ratelimit_headers_only variant
drops it. Admitted requests carry the same headers for the dimension closest to its limit. Refused requests do not
count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from twelvelabs_emulator.api_errors import ApiError
from twelvelabs_emulator.models import RateLimits

Quantity = Literal["requests", "video_seconds"]
_WINDOW_SECONDS: Final[dict[str, int]] = {"minute": 60, "day": 86_400}
# The rate-limited endpoints, as the rate-limits page lists them for this API's resources.
RATE_LIMITED_ENDPOINTS: Final[frozenset[str]] = frozenset(
    {"POST /assets", "POST /assets/multipart-uploads", "POST /analyze/batches"}
)


@dataclass(frozen=True)
class _Dimension:
    quantity: Quantity
    window: str
    limit: float
    window_end: int
    used: float

    def headers(self) -> dict[str, str]:
        return {
            "X-Ratelimit-Limit": _number(self.limit),
            "X-Ratelimit-Remaining": _number(max(0.0, self.limit - self.used)),
            "X-Ratelimit-Used": _number(self.used),
            "X-Ratelimit-Reset": str(self.window_end),
        }


class RateLimiter:
    """Usage per (quantity, window, window start); not thread-safe on its own (the state lock guards it)."""

    def __init__(self) -> None:
        self._used: dict[tuple[Quantity, str, int], float] = {}

    def admit(
        self, limits: RateLimits, now: datetime, quantity: Quantity, amount: float, *, retry_after: bool
    ) -> dict[str, str]:
        """Count ``amount`` if it fits every configured limit and return the headers; raise 429 if it does not."""
        dimensions = self._dimensions(limits, now, quantity)
        for dimension in dimensions:
            if dimension.used + amount > dimension.limit:
                raise _refusal(dimension, now, retry_after=retry_after)
        self._forget_before(now)
        for dimension in dimensions:
            key = (quantity, dimension.window, dimension.window_end)
            self._used[key] = self._used.get(key, 0.0) + amount
        if not dimensions:
            return {}
        closest = min(dimensions, key=lambda d: (d.limit - d.used - amount) / d.limit)
        return _Dimension(
            closest.quantity, closest.window, closest.limit, closest.window_end, closest.used + amount
        ).headers()

    def _dimensions(self, limits: RateLimits, now: datetime, quantity: Quantity) -> list[_Dimension]:
        configured = {
            ("requests", "minute"): limits.requests_per_minute,
            ("requests", "day"): limits.requests_per_day,
            ("video_seconds", "minute"): limits.video_seconds_per_minute,
            ("video_seconds", "day"): limits.video_seconds_per_day,
        }
        dimensions = []
        for (kind, window), limit in configured.items():
            if kind != quantity or limit is None:
                continue
            length = _WINDOW_SECONDS[window]
            window_end = (math.floor(now.timestamp()) // length + 1) * length
            used = self._used.get((quantity, window, window_end), 0.0)
            dimensions.append(_Dimension(quantity, window, float(limit), window_end, used))
        return dimensions

    def _forget_before(self, now: datetime) -> None:
        moment = now.timestamp()
        for key in [key for key in self._used if key[2] <= moment]:
            del self._used[key]


def _refusal(dimension: _Dimension, now: datetime, *, retry_after: bool) -> ApiError:
    headers = dimension.headers()
    if retry_after:
        headers["Retry-After"] = str(max(1, math.ceil(dimension.window_end - now.timestamp())))
    unit = "requests" if dimension.quantity == "requests" else "seconds of video"
    message = f"You have exceeded the rate limit ({_number(dimension.limit)} {unit} per {dimension.window})."
    return ApiError(429, "too_many_requests", message, headers=headers)


def _number(value: float) -> str:
    return str(math.floor(value)) if value >= 0 else "0"
