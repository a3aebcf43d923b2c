"""When to try a TwelveLabs call again, and after how long: a pure policy, no I/O and no clock.

The client asks ``decide`` after each failed attempt. Which errors are worth another attempt depends on whether the
call is safe to repeat (``idempotent``):

- TransportError (the request never left) and 429 (the API refused before acting) are retried for every call.
- 5xx and OutcomeUnknownError (timeout or dropped connection after sending) are retried only for safe calls:
  for a create, a second attempt could duplicate what the first one did.
- Any other 4xx is definitive and never retried.

A retry must fit in the remaining budget: the delay never undercuts the server's Retry-After, and if that delay
does not fit, the answer is "stop because of the budget" so the caller can raise DeadlineExceededError.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from videobatch.errors import APIStatusError, OutcomeUnknownError, ServerError, TransportError

RATE_LIMITED = 429


class StopReason(StrEnum):
    NOT_RETRYABLE = "not_retryable"
    UNSAFE_TO_REPEAT = "unsafe_to_repeat"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    BUDGET_EXHAUSTED = "budget_exhausted"


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_seconds: float = 0.0
    stop_reason: StopReason | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff: attempt n waits up to ``base * 2**(n-1)`` capped, minus up to ``jitter``."""

    max_attempts: int = 5
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 10.0
    jitter_ratio: float = 0.25
    random_source: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not 0.0 <= self.jitter_ratio <= 1.0:
            raise ValueError(f"jitter_ratio must be between 0 and 1, got {self.jitter_ratio}")

    def decide(self, *, attempt: int, error: Exception, remaining_seconds: float, idempotent: bool) -> RetryDecision:
        """``attempt`` is the 1-based number of the attempt that just failed with ``error``."""
        if not _is_retryable(error):
            return RetryDecision(retry=False, stop_reason=StopReason.NOT_RETRYABLE)
        if not idempotent and not _nothing_happened(error):
            return RetryDecision(retry=False, stop_reason=StopReason.UNSAFE_TO_REPEAT)
        if attempt >= self.max_attempts:
            return RetryDecision(retry=False, stop_reason=StopReason.ATTEMPTS_EXHAUSTED)
        delay_seconds = self.backoff_seconds(attempt)
        retry_after = error.retry_after_seconds if isinstance(error, APIStatusError) else None
        if retry_after is not None:
            delay_seconds = max(delay_seconds, retry_after)
        if delay_seconds >= remaining_seconds:
            return RetryDecision(retry=False, delay_seconds=delay_seconds, stop_reason=StopReason.BUDGET_EXHAUSTED)
        return RetryDecision(retry=True, delay_seconds=delay_seconds)

    def backoff_seconds(self, attempt: int) -> float:
        ceiling = min(self.base_delay_seconds * 2.0 ** (attempt - 1), self.max_delay_seconds)
        return ceiling * (1.0 - self.jitter_ratio * self.random_source())


def _is_retryable(error: Exception) -> bool:
    if isinstance(error, TransportError | OutcomeUnknownError | ServerError):
        return True
    return isinstance(error, APIStatusError) and error.status_code == RATE_LIMITED


def _nothing_happened(error: Exception) -> bool:
    """True when the error proves the request had no effect, so repeating even a create is safe."""
    return isinstance(error, TransportError) or (
        isinstance(error, APIStatusError) and error.status_code == RATE_LIMITED
    )
