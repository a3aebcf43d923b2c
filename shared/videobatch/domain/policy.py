"""What to do with a batch item that reached a final status: finish it, requeue it, or fail it.

The rules (checked in this order; ``attempts`` counts submissions so far, including the one that just ended):

======================  =====================================  ==================================================
item status / code      decision                               why
======================  =====================================  ==================================================
ready (any code)        Finish                                 a ready item with a warning still has a result
canceled, user_canceled Fail(user_canceled)                    someone stopped this one task on purpose
canceled, other/none    Requeue now, attempt counted           batch_expired / batch_canceled: never processed
failed,                 Requeue now, attempt counted           the batch ran out of time, not the video's fault
batch_processing_timeout
failed, terminal code   Fail(code, API message)                retrying cannot change the outcome (TERMINAL_CODES,
                                                               or a ``parameter_`` / ``invalid_`` code)
failed, any other code  Requeue after backoff, attempt counted transient (RETRYABLE_CODES) *and* unknown or
or no code                                                     missing codes: the API says clients must tolerate
                                                               new codes, and failed items are not billed, so
                                                               a wrong guess costs little; max_attempts bounds it
======================  =====================================  ==================================================

Any requeue when ``attempts >= max_attempts`` becomes Fail(max_attempts_exceeded) naming the last error.
Backoff is deterministic exponential: ``base * 2**(attempts-1)``, capped at ``max_backoff_seconds``; no jitter is
needed because requeued items are re-packed by one flusher, not retried concurrently by many clients.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from videobatch.domain.items import FailureReason
from videobatch.errors import InvalidInputError

REQUEUE_NOW_FAILURE_CODES: Final[frozenset[str]] = frozenset({"batch_processing_timeout"})
TERMINAL_CANCEL_CODES: Final[frozenset[str]] = frozenset({"user_canceled"})
RETRYABLE_CODES: Final[frozenset[str]] = frozenset(
    {
        "internal_error",
        "internal_server_error",
        "server_error",
        "service_unavailable",
        "rate_limit_exceeded",
        "too_many_requests",
        "processing_timeout",
        "timeout",
        "asset_not_ready",
    }
)
TERMINAL_CODES: Final[frozenset[str]] = frozenset(
    {
        "video_duration_too_long",
        "video_duration_too_short",
        "validation_error",
        "asset_not_found",
        "asset_unavailable",
        "asset_failed",
        "video_not_found",
        "video_file_broken",
        "video_corrupted",
        "unsupported_video_format",
        "video_resolution_too_low",
        "video_resolution_too_high",
        "content_policy_violation",
        "content_moderation",
        "content_moderated",
    }
)
TERMINAL_CODE_PREFIXES: Final[tuple[str, ...]] = ("parameter_", "invalid_")


class Finish(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: Literal["finish"] = "finish"


class Requeue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: Literal["requeue"] = "requeue"
    eligible_at: AwareDatetime
    reason: str  # the API code (or "failed" / "canceled" without one)
    counts_attempt: bool  # every current rule counts it; kept explicit so the handler's write needs no rule of its own


class Fail(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: Literal["fail"] = "fail"
    failure: FailureReason


Decision = Finish | Requeue | Fail
FINAL_ITEM_STATUSES: Final[frozenset[str]] = frozenset({"ready", "failed", "canceled"})


def is_terminal_code(code: str) -> bool:
    return code in TERMINAL_CODES or code.startswith(TERMINAL_CODE_PREFIXES)


class RequeuePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    max_attempts: int = Field(ge=1)
    base_backoff_seconds: float = Field(default=60.0, ge=0, allow_inf_nan=False)
    max_backoff_seconds: float = Field(default=3600.0, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> Self:
        if self.max_backoff_seconds < self.base_backoff_seconds:
            raise ValueError(
                f"max_backoff_seconds {self.max_backoff_seconds} is below base_backoff_seconds "
                f"{self.base_backoff_seconds}"
            )
        return self

    def backoff_seconds(self, attempts: int) -> float:
        """Delay before the next attempt after ``attempts`` failed ones (exponent capped to avoid huge floats)."""
        return min(self.max_backoff_seconds, self.base_backoff_seconds * 2.0 ** min(attempts - 1, 64))

    def decide(
        self,
        *,
        item_status: str,
        error_code: str | None,
        attempts: int,
        now: datetime,
        error_message: str | None = None,
    ) -> Decision:
        """The decision for one item that reached ``ready``, ``failed`` or ``canceled``."""
        if item_status not in FINAL_ITEM_STATUSES:
            raise InvalidInputError(
                f"item status {item_status!r} is not final; decide only on {', '.join(sorted(FINAL_ITEM_STATUSES))}"
            )
        if attempts < 1:
            raise InvalidInputError(f"attempts must count the submission that just ended (>= 1), got {attempts}")
        if item_status == "ready":
            return Finish()
        message = error_message or "no message from TwelveLabs"
        if item_status == "canceled":
            return self._canceled(error_code, message, attempts, now)
        return self._failed(error_code, message, attempts, now)

    def _canceled(self, code: str | None, message: str, attempts: int, now: datetime) -> Decision:
        if code in TERMINAL_CANCEL_CODES:
            return Fail(failure=FailureReason(code=code, message=f"the task was canceled on purpose: {message}"))
        return self._requeue(code or "canceled", message, attempts, eligible_at=now)

    def _failed(self, code: str | None, message: str, attempts: int, now: datetime) -> Decision:
        if code in REQUEUE_NOW_FAILURE_CODES:
            return self._requeue(code, message, attempts, eligible_at=now)
        if code is not None and is_terminal_code(code):
            return Fail(failure=FailureReason(code=code, message=message))
        delay = timedelta(seconds=self.backoff_seconds(attempts))
        return self._requeue(code or "failed", message, attempts, eligible_at=now + delay)

    def _requeue(self, reason: str, message: str, attempts: int, *, eligible_at: datetime) -> Decision:
        if attempts >= self.max_attempts:
            return Fail(
                failure=FailureReason(
                    code="max_attempts_exceeded",
                    message=f"gave up after {attempts} of {self.max_attempts} attempts; last error {reason}: {message}",
                )
            )
        return Requeue(eligible_at=eligible_at, reason=reason, counts_attempt=True)
