"""The TwelveLabs API's documented numbers (v1.3), as the emulator enforces them.

Deliberately a copy, not an import of the pipeline client's ``videobatch.twelvelabs.limits``: a wrong number in the
client must show up as a disagreement with the emulator, not hide in both. Sizes are decimal, as the docs write
them (200 MB = 200,000,000 bytes).
"""

from __future__ import annotations

import re
from typing import Final

MODEL_NAME: Final = "pegasus1.5"
ANALYSIS_MODES: Final[tuple[str, ...]] = ("general", "time_based_metadata")

MAX_REQUESTS_PER_BATCH: Final = 1_000
MAX_CONTENT_SECONDS_PER_BATCH: Final = 2_000 * 3_600
MAX_ACTIVE_BATCHES: Final = 5
ACTIVE_BATCH_STATUSES: Final[frozenset[str]] = frozenset({"pending", "processing", "canceling"})
TERMINAL_BATCH_STATUSES: Final[frozenset[str]] = frozenset({"completed", "canceled", "expired"})
BATCH_EXPIRY_SECONDS: Final = 24 * 3_600
RESULT_RETENTION_SECONDS: Final = 30 * 24 * 3_600

MIN_WINDOW_SECONDS: Final = 1.0
MAX_WINDOW_SECONDS: Final = 2 * 3_600.0
MAX_VIDEO_SECONDS: Final = 4 * 3_600.0

CUSTOM_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

MIN_TEMPERATURE: Final = 0.0
MAX_TEMPERATURE: Final = 1.0
DEFAULT_TEMPERATURE: Final = 0.2
MAX_TOKENS_RANGE: Final[dict[str, tuple[int, int]]] = {
    "general": (512, 98_304),
    "time_based_metadata": (2_048, 98_304),
}
DEFAULT_MAX_TOKENS: Final[dict[str, int]] = {"general": 4_096, "time_based_metadata": 32_768}

MIN_SEGMENT_SECONDS: Final = 2.0
MAX_SEGMENT_DEFINITIONS: Final = 20
SEGMENT_FIELD_TYPES: Final[frozenset[str]] = frozenset({"string", "boolean", "number", "integer", "array", "timestamp"})
TIMESTAMP_FORMATS: Final[frozenset[str]] = frozenset({"seconds", "hh:mm:ss", "hh:mm:ss.fff"})
REJECTED_JSON_SCHEMA_KEYWORDS: Final[frozenset[str]] = frozenset(
    {"minLength", "maxLength", "additionalProperties", "uniqueItems", "maxItems"}
)

MAX_DIRECT_UPLOAD_BYTES: Final = 200_000_000
MAX_URL_UPLOAD_BYTES: Final = 4_000_000_000
MAX_MULTIPART_UPLOAD_BYTES: Final = 10_000_000_000
MAX_PAGE_LIMIT: Final = 50
MAX_PRESIGNED_URLS_PER_CALL: Final = 50
PRESIGNED_URL_SECONDS: Final = 3_600
UPLOAD_SESSION_SECONDS: Final = 24 * 3_600

# Video requirements: 360x360 to 5184x2160, aspect ratio 1:1 to 2.4:1 in either orientation.
MIN_VIDEO_SIDE_PIXELS: Final = 360
MAX_VIDEO_LONG_SIDE_PIXELS: Final = 5_184
MAX_VIDEO_SHORT_SIDE_PIXELS: Final = 2_160
MAX_VIDEO_ASPECT_RATIO: Final = 2.4
