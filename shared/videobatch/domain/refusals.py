"""Which videos made TwelveLabs refuse a batch create, so they fail with a reason instead of blocking the queue.

A create is atomic: one bad request refuses the whole batch. Putting every item back would pack the same oldest
items into the same batch next round, refused again, for ever. So a definitive refusal is traced to its videos:

- a 400 names the offending requests in its message or details (``requests.3.video.asset_id: ...``), as does
  our own pre-send validation (``RequestValidationError.field``): those videos fail with the API's words;
- a 404 (an asset that does not exist) or 409 (an asset not ready) names no request: the flusher looks the
  batch's assets up and ``asset_refusal`` decides per video.

Videos not blamed go back to the queue; a refusal that blames nobody (e.g. a bad model name) changes nothing here
and shows as the flusher's stop reason, the oldest-queued alarm and the logs.
"""

from __future__ import annotations

import json
import re
from typing import Final

from videobatch.domain.items import FailureReason
from videobatch.errors import APIStatusError, BadRequestError, RequestValidationError

_REQUEST_INDEX: Final = re.compile(r"\brequests(?:\.|\[)(\d+)")


def rejected_request_indices(error: Exception) -> frozenset[int]:
    """Indexes of ``requests`` that a 400 (or our pre-send validation) names; empty when it names none."""
    if isinstance(error, RequestValidationError):
        texts = [error.field]
    elif isinstance(error, BadRequestError):
        texts = [error.message, json.dumps(error.details, default=str)] if error.details else [error.message]
    else:
        return frozenset()
    return frozenset(int(index) for text in texts for index in _REQUEST_INDEX.findall(text))


def request_refusal(error: Exception) -> FailureReason:
    """The failure of a video whose request the create named."""
    detail = error.message if isinstance(error, APIStatusError) else str(error)
    return FailureReason(
        code="request_rejected",
        message=f"TwelveLabs refused this video's analysis request: {detail} (check the profile for this prefix)",
    )


def asset_refusal(
    asset_id: str | None, asset_status: str | None, *, found: bool, times_refused: int, max_refusals: int
) -> FailureReason | None:
    """Whether a video fails after a 404/409 create refusal; None: it goes back to the queue.

    ``times_refused``: how many of its submissions ended refused before this one (a not-ready asset is retried
    a bounded number of times).
    """
    if not found:
        return FailureReason(
            code="asset_missing",
            message=f"TwelveLabs no longer has the asset {asset_id} of this video (deleted outside the pipeline?); "
            "upload the video again to analyse it",
        )
    if asset_status == "failed":
        return FailureReason(code="asset_failed", message=f"TwelveLabs reports the asset {asset_id} as failed")
    if asset_status != "ready" and times_refused + 1 >= max_refusals:
        return FailureReason(
            code="asset_not_ready",
            message=f"TwelveLabs refused the batch {times_refused + 1} times because the asset {asset_id} "
            f"was {asset_status or 'not ready'}; upload the video again",
        )
    return None
