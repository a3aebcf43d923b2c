import pytest

from videobatch import errors


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (422, errors.UnprocessableEntityError),
        (429, errors.RateLimitError),
        (500, errors.ServerError),
        (503, errors.ServerError),
        (504, errors.ServerError),
        (418, errors.APIStatusError),
    ],
)
def test_api_error_class_by_status(status: int, cls: type[errors.APIStatusError]) -> None:
    assert errors.api_error_class(status) is cls


def test_api_status_error_carries_code_message_and_retry_after() -> None:
    err = errors.RateLimitError("slow down", status_code=429, code="too_many_requests", retry_after_seconds=3.0)
    assert isinstance(err, errors.TwelveLabsError)
    assert (err.code, err.message, err.retry_after_seconds) == ("too_many_requests", "slow down", 3.0)
    assert "429" in str(err)


def test_request_validation_error_names_field_and_rule() -> None:
    err = errors.RequestValidationError("requests.3.custom_id", "must match [A-Za-z0-9_-]{1,64}")
    assert isinstance(err, errors.InvalidInputError)
    assert str(err) == "requests.3.custom_id: must match [A-Za-z0-9_-]{1,64}"
