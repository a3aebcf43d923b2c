"""The project's one exception tree, and the isolation rule that sorts its errors.

Every boundary (HTTP to TwelveLabs, AWS calls, event parsing, profile loading) translates what it sees into
these classes exactly once, so callers catch by meaning, never by transport detail.

    VideoBatchError
    ├── ConfigurationError            invalid profile or setting (found at load/deploy time)
    ├── InvalidInputError             input that crossed a boundary and broke a rule
    │   ├── RequestValidationError    a TwelveLabs request that the API would reject (names field and rule)
    │   └── RejectedUploadError       an uploaded object that cannot be analysed (not a video, too large, ...)
    ├── StaleStateError               a conditional write lost against newer state
    ├── InvalidTransitionError        an item state change the lifecycle forbids (a bug)
    └── TwelveLabsError               anything that went wrong talking to TwelveLabs
        ├── TransportError            no request reached the API (connect failure): safe to retry
        ├── OutcomeUnknownError       the request may have taken effect (timeout / drop / 5xx after sending)
        ├── DeadlineExceededError     the caller's time budget ran out before a definitive answer
        └── APIStatusError            the API answered with an error status
            ├── BadRequestError           400
            ├── AuthenticationError       401
            ├── PermissionDeniedError     403
            ├── NotFoundError             404
            ├── ConflictError             409
            ├── UnprocessableEntityError  422
            ├── RateLimitError            429
            └── ServerError               5xx
"""

from __future__ import annotations

from typing import Any

# Isolation (docs/reliability.md): an error belongs to the pipeline when nothing about one item or one batch could
# avoid it (AWS or TwelveLabs down, throttled, refusing our key, a time budget spent): the run stops, is counted
# and logged, and the next run retries. Every other error of this tree belongs to the item or batch being
# handled: that one fails (or is skipped this run) with the reason, and the run goes on with the others. An
# exception outside this tree (botocore's, a bug's) is the pipeline's too.


class VideoBatchError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigurationError(VideoBatchError):
    """A profile or setting is invalid; raised when it is loaded, before any video is touched."""


class InvalidInputError(VideoBatchError):
    """Input that crossed a boundary broke a rule."""


class RequestValidationError(InvalidInputError):
    """A TwelveLabs request that the API would reject, caught before sending.

    ``field`` is a dotted path such as ``requests.3.custom_id``; ``rule`` says what it broke.
    """

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class RejectedUploadError(InvalidInputError):
    """An uploaded object that cannot be analysed; ``reason`` is a stable machine code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class UploadIncompleteError(VideoBatchError):
    """A multipart upload stopped at its invocation's time budget with no queue to continue on: the message fails
    and SQS's redelivery continues the stored session."""


class StaleStateError(VideoBatchError):
    """A conditional write found newer state than it expected; the writer must not overwrite it."""


class TwelveLabsError(VideoBatchError):
    """Something went wrong talking to the TwelveLabs API."""


class TransportError(TwelveLabsError):
    """The request never reached the API (connection refused, DNS); it had no effect and may be retried."""


class OutcomeUnknownError(TwelveLabsError):
    """The request was sent but no definitive answer came back: it may or may not have taken effect.

    For batch creation this must be reconciled (look for the batch by its items' custom_ids), never retried blindly.
    """


class DeadlineExceededError(TwelveLabsError):
    """The caller's time budget ran out before a definitive answer."""

    def __init__(self, message: str, last_error: Exception | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error


class APIStatusError(TwelveLabsError):
    """The API answered with an error status; carries its code, message and Retry-After."""

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        retry_after_seconds: float | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(f"{status_code} {code or 'error'}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.retry_after_seconds = retry_after_seconds
        self.details = details


class BadRequestError(APIStatusError):
    status_code = 400


class AuthenticationError(APIStatusError):
    status_code = 401


class PermissionDeniedError(APIStatusError):
    status_code = 403


class NotFoundError(APIStatusError):
    status_code = 404


class ConflictError(APIStatusError):
    status_code = 409


class UnprocessableEntityError(APIStatusError):
    status_code = 422


class RateLimitError(APIStatusError):
    status_code = 429


class ServerError(APIStatusError):
    status_code = 500


_BY_STATUS: dict[int, type[APIStatusError]] = {
    cls.status_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        UnprocessableEntityError,
        RateLimitError,
    )
}


def api_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status (5xx share ServerError)."""
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIStatusError)


class InvalidTransitionError(VideoBatchError):
    """Code asked for an item state change the lifecycle does not allow: a bug, never retried.

    Distinct from StaleStateError (someone else moved the item first, a normal race): this one means the
    caller's own idea of the lifecycle is wrong.
    """

    def __init__(self, source: str, target: str, allowed: tuple[str, ...]) -> None:
        allowed_text = ", ".join(allowed) or "nothing (terminal state)"
        super().__init__(f"illegal item transition {source} -> {target}; {source} may only move to {allowed_text}")
        self.source = source
        self.target = target
        self.allowed = allowed


PIPELINE_FAULTS: tuple[type[VideoBatchError], ...] = (
    TransportError,
    OutcomeUnknownError,
    DeadlineExceededError,
    AuthenticationError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ConfigurationError,
)


def is_pipeline_fault(error: BaseException) -> bool:
    """True when ``error`` stops the run (see the rule at the top); False when it belongs to one item or batch."""
    return not isinstance(error, VideoBatchError) or isinstance(error, PIPELINE_FAULTS)
