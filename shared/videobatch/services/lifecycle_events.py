"""S3 "Object Deleted": a video deleted before it was submitted is not analysed (its item fails ``source_deleted``).

S3 sends the event to EventBridge when an object version is deleted (``deletion-type`` "Permanently Deleted", the
event names that version; in an unversioned bucket, the object) or hidden by a delete marker ("Delete Marker
Created", the event names the marker: every version of the key is meant, the latest and the older ones still
waiting). The deletion rule puts it on the ingest queue beside the uploads, so it gets the same retries and
dead-letter queue.

Which items: those of the deleted versions, and their reprocess items (one per profile, ``item_id_for(...,
profile)``). Each still ``registered``, ``asset_processing`` or ``queued`` fails ``source_deleted`` (conditionally,
like every write: one that moved on meanwhile is left alone). An item already ``claimed`` or ``submitted`` keeps
going and gets its result: TwelveLabs has the video already, and the batch is paid for either way. Done and failed
items are history. A deletion handled before its upload's "Object Created" (SQS does not keep order) finds no item
and does nothing; the upload then finds its version gone and fails ``object_missing`` (or, behind a delete marker
whose version is still readable, is analysed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from videobatch.clock import Clock
from videobatch.config import Settings
from videobatch.domain.items import FailureReason, ItemState, item_id_for
from videobatch.domain.profiles import ProfileSet
from videobatch.domain.uploads import event_key_candidates
from videobatch.errors import InvalidInputError
from videobatch.services.ingest import ObjectCreatedEvent, S3Bucket, parse_object_created
from videobatch.services.lifecycle import ItemWriter
from videobatch.services.ports import ItemStore, ObjectLister

logger = logging.getLogger(__name__)

NOT_SUBMITTED: Final = frozenset({ItemState.REGISTERED, ItemState.ASSET_PROCESSING, ItemState.QUEUED})
DELETE_MARKER_CREATED: Final = "Delete Marker Created"


class _AwsModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)


class DeletedObject(_AwsModel):
    key: str = Field(min_length=1)
    version_id: str | None = Field(default=None, alias="version-id")


class ObjectDeletedDetail(_AwsModel):
    bucket: S3Bucket
    object: DeletedObject
    deletion_type: str | None = Field(default=None, alias="deletion-type")
    reason: str | None = None


class ObjectDeletedEvent(_AwsModel):
    source: Literal["aws.s3"]
    detail_type: Literal["Object Deleted"] = Field(alias="detail-type")
    time: AwareDatetime | None = None
    detail: ObjectDeletedDetail


def parse_s3_event(message: str | Mapping[str, Any]) -> ObjectCreatedEvent | ObjectDeletedEvent:
    """An ingest queue message: "Object Deleted", else (as before) "Object Created" or InvalidInputError."""
    try:
        if isinstance(message, str):
            return ObjectDeletedEvent.model_validate_json(message)
        return ObjectDeletedEvent.model_validate(message)
    except ValidationError:
        return parse_object_created(message)


class DeletionResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    key: str
    items_failed: int = 0  # not submitted yet: failed source_deleted
    items_kept: int = 0  # claimed or submitted: they get their results


class ObjectDeletedService:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        writer: ItemWriter,
        lister: ObjectLister,
        profiles: ProfileSet,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._writer = writer
        self._lister = lister
        self._profiles = profiles

    def handle(self, event: ObjectDeletedEvent) -> DeletionResult:
        detail = event.detail
        bucket = detail.bucket.name
        if bucket != self._settings.video_bucket:
            raise InvalidInputError(
                f"the event names bucket {bucket!r}; this stack ingests only {self._settings.video_bucket!r}"
            )
        keys = event_key_candidates(detail.object.key)
        versions: set[tuple[str, str | None]] = set()
        for key in keys:
            if detail.deletion_type == DELETE_MARKER_CREATED:
                # The marker hides every version of the key: each still-waiting item of any of them is meant.
                listed = self._lister.iter_versions(bucket, key)
                versions |= {(key, v.version_id) for v in listed if v.key == key and not v.delete_marker}
            else:
                versions.add((key, detail.object.version_id))
        names: list[str | None] = [None, *(profile.name for profile in self._profiles.profiles)]
        ids = [item_id_for(bucket, key, version, name) for key, version in sorted(versions, key=str) for name in names]
        failed = kept = 0
        for item in self._items.get_many(ids).values():
            if item.state in NOT_SUBMITTED:
                failure = FailureReason(
                    code="source_deleted",
                    message=f"s3://{bucket}/{item.key} was deleted before it was submitted for analysis",
                )
                failed += self._writer.fail(item, failure) is not None
            elif not item.terminal:
                kept += 1
        logger.info("object deleted", extra={"key": keys[0], "failed": failed, "kept": kept})
        return DeletionResult(key=keys[0], items_failed=failed, items_kept=kept)
