import pytest

from videobatch.domain.refusals import asset_refusal, rejected_request_indices, request_refusal
from videobatch.errors import BadRequestError, ConflictError, NotFoundError, RequestValidationError, ServerError


@pytest.mark.parametrize(
    ("error", "indices"),
    [
        (BadRequestError("requests.3.video.asset_id: unknown", status_code=400), {3}),
        (BadRequestError("bad", status_code=400, details=[{"field": "requests[0].prompt"}]), {0}),
        (BadRequestError("requests.1.prompt and requests.12.temperature", status_code=400), {1, 12}),
        (BadRequestError("model_name: unknown model", status_code=400), set()),
        (BadRequestError("subrequests.4: not a request path", status_code=400), set()),
        (RequestValidationError("requests.7.custom_id", "duplicate"), {7}),
        (RequestValidationError("defaults.temperature", "out of range"), set()),
        (NotFoundError("requests.2: asset missing", status_code=404), set()),  # only 400s name requests
        (ServerError("requests.2", status_code=500), set()),
        (ValueError("requests.2"), set()),
    ],
)
def test_which_requests_a_refusal_names(error: Exception, indices: set[int]) -> None:
    assert rejected_request_indices(error) == indices


def test_a_named_request_fails_with_the_api_words() -> None:
    failure = request_refusal(BadRequestError("requests.0.prompt: too long", status_code=400, code="parameter_invalid"))
    assert failure.code == "request_rejected"
    assert "requests.0.prompt: too long" in failure.message
    assert "profile" in failure.message
    assert "out of range" in request_refusal(RequestValidationError("defaults.temperature", "out of range")).message
    assert "boom" in request_refusal(ConflictError("boom", status_code=409)).message


@pytest.mark.parametrize(
    ("found", "status", "times_refused", "code"),
    [
        (False, None, 0, "asset_missing"),
        (True, "failed", 0, "asset_failed"),
        (True, "processing", 0, None),  # not ready: back to the queue, a little later
        (True, "processing", 1, None),
        (True, "processing", 2, "asset_not_ready"),  # the third refusal of max 3
        (True, None, 2, "asset_not_ready"),
        (True, "ready", 5, None),  # its asset is fine: another video caused the refusal
    ],
)
def test_what_a_404_or_409_means_for_each_video(
    found: bool, status: str | None, times_refused: int, code: str | None
) -> None:
    failure = asset_refusal("a-1", status, found=found, times_refused=times_refused, max_refusals=3)
    assert (failure.code if failure else None) == code
    if failure is not None:
        assert "a-1" in failure.message
