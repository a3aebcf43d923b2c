from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from videobatch.domain.items import FailureReason
from videobatch.domain.policy import Decision, Fail, Finish, Requeue, RequeuePolicy, is_terminal_code
from videobatch.errors import InvalidInputError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RequeuePolicy(max_attempts=3, base_backoff_seconds=60, max_backoff_seconds=200)


def requeue(reason: str, after_seconds: float = 0) -> Requeue:
    return Requeue(eligible_at=NOW + timedelta(seconds=after_seconds), reason=reason, counts_attempt=True)


def fail(code: str, message: str) -> Fail:
    return Fail(failure=FailureReason(code=code, message=message))


def gave_up(attempts: int, reason: str) -> Fail:
    return fail("max_attempts_exceeded", f"gave up after {attempts} of 3 attempts; last error {reason}: {MSG}")


MSG = "the API said so"
EXCEEDED = "max_attempts_exceeded"


@pytest.mark.parametrize(
    ("status", "code", "attempts", "expected"),
    [
        # ready always finishes, even with a warning code and on the last attempt
        ("ready", None, 1, Finish()),
        ("ready", "partial_result", 3, Finish()),
        # canceled: never processed, requeue now
        ("canceled", "batch_expired", 1, requeue("batch_expired")),
        ("canceled", "batch_canceled", 2, requeue("batch_canceled")),
        ("canceled", None, 1, requeue("canceled")),
        ("canceled", "something_new", 1, requeue("something_new")),
        ("canceled", "batch_expired", 3, gave_up(3, "batch_expired")),
        ("canceled", "user_canceled", 1, fail("user_canceled", f"the task was canceled on purpose: {MSG}")),
        # the batch ran out of time: requeue now
        ("failed", "batch_processing_timeout", 1, requeue("batch_processing_timeout")),
        ("failed", "batch_processing_timeout", 3, gave_up(3, "batch_processing_timeout")),
        # retryable: exponential backoff, capped
        ("failed", "internal_error", 1, requeue("internal_error", 60)),
        ("failed", "service_unavailable", 2, requeue("service_unavailable", 120)),
        ("failed", "rate_limit_exceeded", 1, requeue("rate_limit_exceeded", 60)),
        ("failed", "processing_timeout", 1, requeue("processing_timeout", 60)),
        ("failed", None, 1, requeue("failed", 60)),
        ("failed", "brand_new_code", 2, requeue("brand_new_code", 120)),
        ("failed", "internal_error", 3, gave_up(3, "internal_error")),
        ("failed", None, 4, gave_up(4, "failed")),
        # terminal: fail with the API's own code and message, on any attempt
        ("failed", "video_duration_too_long", 1, fail("video_duration_too_long", MSG)),
        ("failed", "asset_unavailable", 1, fail("asset_unavailable", MSG)),
        ("failed", "video_file_broken", 2, fail("video_file_broken", MSG)),
        ("failed", "content_policy_violation", 1, fail("content_policy_violation", MSG)),
        ("failed", "parameter_invalid", 1, fail("parameter_invalid", MSG)),
        ("failed", "invalid_response_format", 1, fail("invalid_response_format", MSG)),
        ("failed", "validation_error", 3, fail("validation_error", MSG)),
    ],
)  # fmt: skip
def test_decide(status: str, code: str | None, attempts: int, expected: Decision) -> None:
    assert POLICY.decide(item_status=status, error_code=code, attempts=attempts, now=NOW, error_message=MSG) == expected


def test_missing_message_is_named() -> None:
    decision = POLICY.decide(item_status="failed", error_code="video_file_broken", attempts=1, now=NOW)
    assert decision == fail("video_file_broken", "no message from TwelveLabs")


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 60), (2, 120), (3, 200), (10, 200), (10_000, 200)])
def test_backoff_is_exponential_and_capped(attempts: int, seconds: float) -> None:
    assert POLICY.backoff_seconds(attempts) == seconds


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"item_status": "processing", "attempts": 1}, "'processing' is not final"),
        ({"item_status": "queued", "attempts": 1}, "'queued' is not final"),
        ({"item_status": "failed", "attempts": 0}, "got 0"),
    ],
)
def test_decide_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        POLICY.decide(error_code=None, now=NOW, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "greater than or equal to 1"),
        ({"max_attempts": 1, "base_backoff_seconds": 10, "max_backoff_seconds": 5}, "below base_backoff_seconds"),
        ({"max_attempts": 1, "base_backoff_seconds": -1}, "greater than or equal to 0"),
    ],
)
def test_policy_rejects_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RequeuePolicy.model_validate(kwargs)


@pytest.mark.parametrize(
    ("code", "terminal"),
    [("parameter_unknown", True), ("invalid_x", True), ("video_duration_too_long", True), ("internal_error", False),
     ("batch_expired", False), ("xyz", False)],
)  # fmt: skip
def test_is_terminal_code(code: str, terminal: bool) -> None:
    assert is_terminal_code(code) is terminal


def test_single_attempt_policy_never_requeues() -> None:
    once = RequeuePolicy(max_attempts=1)
    decision = once.decide(item_status="canceled", error_code="batch_expired", attempts=1, now=NOW)
    assert isinstance(decision, Fail)
    assert decision.failure.code == EXCEEDED
