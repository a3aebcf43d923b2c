"""A stable address for the latest result of a key, and what one result used (for the event and the ledger).

Result files are written once under a versioned address (``domain.results.result_key``). Whoever wants "the
result of videos/kitchen.mp4" without knowing its version reads the pointer at
``domain.results.latest_pointer_key`` instead, a small JSON document (``kind`` ``videobatch.latest-result``) naming
the result's URI, the source version and when that version was registered. The batch checker rewrites it as each
result is stored, before the item is marked done, so a retried check writes the same pointer again.

Rules: a pointer never replaces an object that is not a pointer (a video key could mirror onto the pointer's
address, e.g. a video named ``latest/...`` in an unversioned bucket: that result stays, the pointer is skipped and
logged); and the result of an older version never replaces the pointer to a newer one's (versions analysed out of
order, a backfill of old versions): versions are ordered by when S3 created them (the upload event's time, kept on
the item as ``uploaded_at``; the registration time where it is unknown), to the second, the first result of a second
keeping it. Two results of one key stored at the same moment race, and the later write wins: the pointer then names
one of them, each a complete result of that key.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from videobatch.domain.outcomes import ResultUsage
from videobatch.domain.records import sort_stamp
from videobatch.domain.results import POINTER_KIND, latest_pointer_key
from videobatch.errors import InvalidInputError

if TYPE_CHECKING:
    from videobatch.domain.items import Window
    from videobatch.domain.records import ItemRecord
    from videobatch.services.ports import ObjectStore
    from videobatch.twelvelabs.models import BatchResultItem

logger = logging.getLogger(__name__)
POINTER_SCHEMA_VERSION = "1.0"


def usage_of(windows: dict[str, Window], lines: dict[str, BatchResultItem]) -> ResultUsage:
    """The windows analysed (their content seconds) and the tokens their ready lines report."""
    usage = [line.data.usage for line in lines.values() if line.data is not None]
    return ResultUsage(
        content_seconds=round(sum(windows[cid].duration_seconds for cid in lines if cid in windows), 3),
        windows=len(lines),
        input_tokens=sum(u.input_tokens or 0 for u in usage),
        output_tokens=sum(u.output_tokens for u in usage),
    )


def pointer_document(item: ItemRecord, *, bucket: str, key: str) -> dict[str, Any]:
    return {
        "kind": POINTER_KIND,
        "schema_version": POINTER_SCHEMA_VERSION,
        "item_id": item.item_id,
        "profile": item.profile_name,
        "source": {"bucket": item.bucket, "key": item.key, "version_id": item.version_id},
        "registered_at": sort_stamp(item.created_at),
        "uploaded_at": sort_stamp(item.uploaded_at or item.created_at),
        "result_s3_uri": f"s3://{bucket}/{key}",
    }


def point_latest(objects: ObjectStore, *, bucket: str, results_prefix: str, item: ItemRecord, key: str) -> bool:
    """Point ``latest`` at the result stored at ``key``; False when the rules above leave the pointer as it is."""
    try:
        pointer = latest_pointer_key(results_prefix, item.key, item.result_profile)
    except InvalidInputError as error:  # not even the bounded form fits: the result itself is fine
        logger.warning("no latest pointer for this key", extra={"item_id": item.item_id, "error": str(error)})
        return False
    document = pointer_document(item, bucket=bucket, key=key)
    current = objects.read(bucket, pointer)
    if current is not None:
        previous = _pointer(current)
        if previous is None:
            logger.warning("latest pointer address holds another object", extra={"pointer": pointer})
            return False
        if previous.get("result_s3_uri") == document["result_s3_uri"]:
            return True  # a retried check: already pointing here
        if str(previous.get("uploaded_at", previous.get("registered_at", ""))) >= document["uploaded_at"]:
            # A newer version has it, or one of the same second (S3 events give whole seconds): the first stays.
            logger.info("a newer version of this key has the pointer", extra={"pointer": pointer})
            return False
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
    objects.overwrite(bucket, pointer, body, "application/json")
    return True


def _pointer(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if isinstance(document, dict) and document.get("kind") == POINTER_KIND:
        return document
    return None
