import pytest

from videobatch import errors
from videobatch.twelvelabs.retry import RetryDecision, RetryPolicy, StopReason


def policy(random_value: float = 0.0, **overrides: float) -> RetryPolicy:
    return RetryPolicy(random_source=lambda: random_value, **overrides)  # type: ignore[arg-type]


def rate_limited(retry_after: float | None = None) -> errors.RateLimitError:
    return errors.RateLimitError("slow down", status_code=429, retry_after_seconds=retry_after)


SERVER = errors.ServerError("boom", status_code=503)
TRANSPORT = errors.TransportError("connection refused")
UNKNOWN = errors.OutcomeUnknownError("read timeout")


@pytest.mark.parametrize(
    ("error", "idempotent", "expected"),
    [
        (TRANSPORT, True, RetryDecision(retry=True, delay_seconds=0.5)),
        (TRANSPORT, False, RetryDecision(retry=True, delay_seconds=0.5)),
        (rate_limited(), False, RetryDecision(retry=True, delay_seconds=0.5)),
        (SERVER, True, RetryDecision(retry=True, delay_seconds=0.5)),
        (SERVER, False, RetryDecision(retry=False, stop_reason=StopReason.UNSAFE_TO_REPEAT)),
        (UNKNOWN, True, RetryDecision(retry=True, delay_seconds=0.5)),
        (UNKNOWN, False, RetryDecision(retry=False, stop_reason=StopReason.UNSAFE_TO_REPEAT)),
        (errors.BadRequestError("bad", status_code=400), True, RetryDecision(False, 0.0, StopReason.NOT_RETRYABLE)),
        (errors.NotFoundError("gone", status_code=404), True, RetryDecision(False, 0.0, StopReason.NOT_RETRYABLE)),
        (errors.ConflictError("busy", status_code=409), True, RetryDecision(False, 0.0, StopReason.NOT_RETRYABLE)),
        (ValueError("a bug"), True, RetryDecision(retry=False, stop_reason=StopReason.NOT_RETRYABLE)),
    ],
)
def test_which_errors_are_retried(error: Exception, idempotent: bool, expected: RetryDecision) -> None:
    assert policy().decide(attempt=1, error=error, remaining_seconds=60, idempotent=idempotent) == expected


@pytest.mark.parametrize(
    ("attempt", "random_value", "expected_delay"),
    [
        (1, 0.0, 0.5),
        (2, 0.0, 1.0),
        (3, 0.0, 2.0),
        (3, 1.0, 1.5),  # jitter takes away up to a quarter
        (3, 0.5, 1.75),
        (9, 0.0, 10.0),  # capped
    ],
)
def test_backoff_is_exponential_jittered_and_capped(attempt: int, random_value: float, expected_delay: float) -> None:
    decision = policy(random_value, max_attempts=10).decide(
        attempt=attempt, error=TRANSPORT, remaining_seconds=60, idempotent=True
    )
    assert decision.retry
    assert decision.delay_seconds == pytest.approx(expected_delay)


@pytest.mark.parametrize(
    ("retry_after", "remaining", "expected"),
    [
        (3.0, 60.0, RetryDecision(retry=True, delay_seconds=3.0)),  # longer than backoff: honoured
        (0.1, 60.0, RetryDecision(retry=True, delay_seconds=0.5)),  # shorter: backoff still applies
        (30.0, 10.0, RetryDecision(False, 30.0, StopReason.BUDGET_EXHAUSTED)),  # does not fit: stop
        (10.0, 10.0, RetryDecision(False, 10.0, StopReason.BUDGET_EXHAUSTED)),  # nothing left for the attempt
    ],
)
def test_retry_after_is_a_floor_and_must_fit_the_budget(
    retry_after: float, remaining: float, expected: RetryDecision
) -> None:
    decision = policy().decide(
        attempt=1, error=rate_limited(retry_after), remaining_seconds=remaining, idempotent=False
    )
    assert decision == expected


def test_backoff_that_does_not_fit_the_budget_stops() -> None:
    decision = policy().decide(attempt=1, error=TRANSPORT, remaining_seconds=0.2, idempotent=True)
    assert decision.stop_reason is StopReason.BUDGET_EXHAUSTED


def test_attempts_run_out() -> None:
    decision = policy(max_attempts=3).decide(attempt=3, error=TRANSPORT, remaining_seconds=60, idempotent=True)
    assert decision == RetryDecision(retry=False, stop_reason=StopReason.ATTEMPTS_EXHAUSTED)


@pytest.mark.parametrize(("field", "value"), [("max_attempts", 0), ("jitter_ratio", 1.5)])
def test_policy_rejects_nonsense_settings(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]
