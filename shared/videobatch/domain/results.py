"""Where a video's result goes and what the result file says: pure rules, no I/O.

Address: the video's key mirrored under the results prefix, plus the version id when the bucket is versioned, so
two versions of one key never share (or fight over) a result file:

    <ResultsPrefix><key>.version-<version_id>.json     (<ResultsPrefix><key>.json for an unversioned object)

S3 keys hold at most 1,024 bytes. A video whose mirrored address would be longer (its own key may already use most
of them) gets a bounded one instead, named by the SHA-256 of its key; the document's ``source.key`` holds the full
key, so the result can still be told apart and found by listing the folder:

    <ResultsPrefix>_long-keys/<sha256 hex of key>.version-<version_id>.json

Only a results prefix or version id so long that even that does not fit fails the item (``result_key_too_long``).

An operator's reprocess (``videobatch reprocess --analysis-profile P``) analyses the same object version again
with profile ``P``; its result carries the profile in its address, so every analysis stays addressable:

    <ResultsPrefix><key>.version-<version_id>.profile-<P>.json

The latest result of a key has a stable address too, a small pointer document rewritten as results arrive
(``latest_pointer_key``; the reprocess results of profile ``P`` have their own ``.profile-<P>`` pointer):

    <ResultsPrefix>latest/<key>.json     -> {"result_s3_uri": ..., "source": {...}, ...}

bounded like the results (``<ResultsPrefix>latest/_long-keys/<sha256 hex of key>.json``).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Final

from videobatch.clock import rfc3339
from videobatch.errors import InvalidInputError
from videobatch.twelvelabs import limits

if TYPE_CHECKING:
    from videobatch.domain.items import Window
    from videobatch.domain.records import BatchRecord, ItemRecord
    from videobatch.domain.windows import MergedResult
    from videobatch.twelvelabs.models import BatchResultItem

RESULT_SCHEMA_VERSION: Final = "1.0"
MAX_S3_KEY_BYTES: Final = 1024
LONG_KEYS_FOLDER: Final = "_long-keys/"
LATEST_FOLDER: Final = "latest/"
POINTER_KIND: Final = "videobatch.latest-result"


class ResultKeyTooLongError(InvalidInputError):
    """Not even the bounded address of a result fits S3's key limit (an absurd prefix or version id)."""


def result_key(results_prefix: str, key: str, version_id: str | None, profile: str | None = None) -> str:
    """Where the result of (key, version) goes; ``profile`` only for a pinned profile (ItemRecord.result_profile)."""
    suffix = f".version-{version_id}" if version_id and version_id != "null" else ""
    suffix += f".profile-{profile}.json" if profile else ".json"
    return _bounded(results_prefix, key, suffix)


def latest_pointer_key(results_prefix: str, key: str, profile: str | None = None) -> str:
    """The stable address of the latest result of ``key`` (of a pinned ``profile``): a pointer document."""
    suffix = f".profile-{profile}.json" if profile else ".json"
    return _bounded(f"{results_prefix}{LATEST_FOLDER}", key, suffix)


def _bounded(results_prefix: str, key: str, suffix: str) -> str:
    mirrored = f"{results_prefix}{key}{suffix}"
    if _fits(mirrored):
        return mirrored
    bounded = f"{results_prefix}{LONG_KEYS_FOLDER}{hashlib.sha256(key.encode('utf-8')).hexdigest()}{suffix}"
    if _fits(bounded):
        return bounded
    raise ResultKeyTooLongError(
        f"the result address {bounded[:80]}... is {len(bounded.encode('utf-8'))} bytes, over S3's "
        f"{MAX_S3_KEY_BYTES}-byte key limit even in its bounded form: shorten ResultsPrefix"
    )


def _fits(key: str) -> bool:
    return len(key.encode("utf-8")) <= MAX_S3_KEY_BYTES


def result_document(
    item: ItemRecord,
    record: BatchRecord,
    windows: dict[str, Window],
    lines: dict[str, BatchResultItem],
    merged: MergedResult,
) -> bytes:
    """Deterministic JSON (sorted keys, only stored facts, no "written at") so a rewrite yields identical bytes."""
    ordered = sorted(lines.items(), key=lambda pair: windows[pair[0]].index)
    usage = [line.data.usage for _, line in ordered if line.data is not None]
    document = {
        "schema_version": RESULT_SCHEMA_VERSION,
        "item_id": item.item_id,
        "source": {"bucket": item.bucket, "key": item.key, "version_id": item.version_id, "etag": item.etag},
        "profile": item.profile_name,
        "analysis_mode": item.analysis_mode,
        "model": limits.MODEL_NAME,
        "batch_id": record.batch_id,
        "attempt": item.attempts,
        "video_duration_seconds": item.duration_seconds,
        "windows": [
            {
                **windows[custom_id].model_dump(),
                "custom_id": custom_id,
                "task_id": line.task_id,
                "generation_id": line.data.generation_id if line.data else None,
                "finish_reason": line.data.finish_reason if line.data else None,
            }
            for custom_id, line in ordered
        ],
        "usage": {
            "output_tokens": sum(u.output_tokens for u in usage),
            "input_tokens": sum(u.input_tokens or 0 for u in usage),
        },
        "timings": {
            "registered_at": rfc3339(item.created_at),
            "queued_at": rfc3339(item.queued_at) if item.queued_at else None,
            "submitted_at": rfc3339(item.submitted_at) if item.submitted_at else None,
            "batch_created_at": rfc3339(record.created_at),
        },
        # A ready window may come with an error: the API marks a partial result so (a segmentation cut short).
        "warnings": [
            {"window": windows[custom_id].index, "code": line.warning.code, "message": line.warning.message}
            for custom_id, line in ordered
            if line.warning is not None
        ],
        "result": {
            "media_type": merged.media_type,
            "truncated": merged.truncated,
            "unparsable_window_indexes": list(merged.unparsable_window_indexes),
            "body": json.loads(merged.body) if merged.media_type == "application/json" else merged.body,
        },
    }
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
