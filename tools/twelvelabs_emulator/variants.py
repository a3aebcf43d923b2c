"""Variants: plausible answers of the real API on points its documentation leaves open.

The emulator's default follows the documentation and, where it is silent, the most likely reading. Each variant
switches one undocumented point to another plausible behaviour, so the pipeline can be tested against every answer
it may meet. Select any combination: ``videobatch emulator --variant NAME`` (repeatable), ``POST /_emulator/settings
{"variants": [...]}`` or ``EmulatorSettings(variants=frozenset({...}))``. docs/emulator.md gives each one's
assumption and source.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Variant(StrEnum):
    INDEX_FREE_ERRORS = "index_free_errors"
    ITEM_LEVEL_REFUSALS = "item_level_refusals"
    CONTENT_PER_REQUEST = "content_per_request"
    ACTIVE_LIMIT_400 = "active_limit_400"
    ACTIVE_LIMIT_409 = "active_limit_409"
    NEW_ENUM_VALUES = "new_enum_values"
    READY_WITH_WARNING = "ready_with_warning"
    WINDOW_OVERRUN = "window_overrun"
    START_OFFSET = "start_offset"
    RATELIMIT_HEADERS_ONLY = "ratelimit_headers_only"
    RESULTS_NOISE = "results_noise"


DESCRIPTIONS: Final[dict[Variant, str]] = {
    Variant.INDEX_FREE_ERRORS: "400/422 batch-create errors name fields without a requests.N index",
    Variant.ITEM_LEVEL_REFUSALS: (
        "a missing or not-ready asset, a window past the video's end or a video over 4 h fails that item alone "
        "(results) instead of refusing the whole batch"
    ),
    Variant.CONTENT_PER_REQUEST: "content hours count each request with its video's full duration, not its window",
    Variant.ACTIVE_LIMIT_400: "the sixth active batch is refused with 400 parameter_invalid instead of 429",
    Variant.ACTIVE_LIMIT_409: "the sixth active batch is refused with 409 too_many_requests instead of 429",
    Variant.NEW_ENUM_VALUES: (
        "new enum values appear: batch status 'validating' (for pending), item status 'scheduled' (for queued), "
        "finish_reason 'end_turn' / 'max_tokens' (for stop / length)"
    ),
    Variant.READY_WITH_WARNING: "ready items carry an error marking a partial result",
    Variant.WINDOW_OVERRUN: (
        "the platform measures each video 0.5 s longer than its probed duration: a window without end_time on a "
        "2 h video exceeds 2 h and fails video_duration_too_long"
    ),
    Variant.START_OFFSET: (
        "a video whose first frame has a non-zero timestamp takes absolute start_time/end_time and reports "
        "absolute segment times"
    ),
    Variant.RATELIMIT_HEADERS_ONLY: "rate-limit 429s carry the X-Ratelimit-* headers but no Retry-After",
    Variant.RESULTS_NOISE: (
        "results bodies carry blank lines, an extra line without custom_id and a truncated last line"
    ),
}

EXCLUSIVE: Final[tuple[frozenset[Variant], ...]] = (frozenset({Variant.ACTIVE_LIMIT_400, Variant.ACTIVE_LIMIT_409}),)

# How much longer than the probe the platform measures a video under WINDOW_OVERRUN.
WINDOW_OVERRUN_SECONDS: Final = 0.5
# What a ready item's error says under READY_WITH_WARNING, in the words the SDK documents for the incomplete
# results warning (AnalyzeTaskError.message); such warnings carry no code. {what} names the segment definition.
PARTIAL_RESULT_MESSAGE: Final = (
    "partial result: some output{what} could not be recovered during analysis; returned results may be incomplete."
)
# NEW_ENUM_VALUES: the value each known one is shown as.
NEW_BATCH_STATUS: Final[dict[str, str]] = {"pending": "validating"}
NEW_ITEM_STATUS: Final[dict[str, str]] = {"queued": "scheduled"}
NEW_FINISH_REASON: Final[dict[str, str]] = {"stop": "end_turn", "length": "max_tokens"}
