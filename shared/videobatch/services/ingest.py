"""Ingest: one S3 "Object Created" event becomes one item whose TwelveLabs asset is being created.

Idempotent by construction: the item id is derived from bucket, key and version, and the item is created only if
absent. A redelivered event finds the item and stops, unless it is still ``registered`` (the previous attempt
crashed or failed transiently between writing the item and recording the asset): then the asset is created now.
That window can leave an orphan asset on TwelveLabs (created, but the crash came before its id was stored); it costs
storage only, is never analysed, and is accepted rather than paying a second round trip on every upload.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from videobatch.clock import Clock
from videobatch.config import Settings
from videobatch.domain.items import FailureReason, ItemState, item_id_for
from videobatch.domain.profiles import PROFILE_NAME_PATTERN, Profile, ProfileSet
from videobatch.domain.records import ItemRecord, UploadedObject
from videobatch.domain.uploads import (
    HEAD_BYTES_NEEDED,
    UploadDecision,
    UploadMethod,
    UploadPlan,
    event_key_candidates,
    inspect_upload,
)
from videobatch.errors import BadRequestError, ConfigurationError, InvalidInputError, RejectedUploadError
from videobatch.services.lifecycle import ItemWriter
from videobatch.services.ports import (
    ItemStore,
    ObjectInfo,
    ObjectRef,
    ObjectStore,
    TwelveLabsAssets,
)

logger = logging.getLogger(__name__)


class _AwsModel(BaseModel):
    # AWS adds fields over time; only what we read is checked.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)


class S3Bucket(_AwsModel):
    name: str = Field(min_length=1)


class S3Object(_AwsModel):
    key: str = Field(min_length=1)
    size: int = Field(default=0, ge=0)
    etag: str | None = None
    version_id: str | None = Field(default=None, alias="version-id")


class OperatorDirective(_AwsModel):
    """What the ops CLI adds to the events it sends (``domain.upload_events``); S3 never sends it."""

    # videobatch reprocess: analyse with this profile, as an item of its own (item_id_for(..., profile)).
    profile: str | None = Field(default=None, pattern=PROFILE_NAME_PATTERN)


class ObjectCreatedDetail(_AwsModel):
    bucket: S3Bucket
    object: S3Object
    videobatch: OperatorDirective | None = None


class ObjectCreatedEvent(_AwsModel):
    """The EventBridge event S3 sends for a new object (delivered to the ingest queue as the message body)."""

    source: Literal["aws.s3"]
    detail_type: Literal["Object Created"] = Field(alias="detail-type")
    time: AwareDatetime | None = None
    detail: ObjectCreatedDetail


def parse_object_created(message: str | Mapping[str, Any]) -> ObjectCreatedEvent:
    """Parse the SQS body; anything else raises InvalidInputError naming the problem (the message then retries
    and ends in the dead-letter queue, never silently dropped)."""
    try:
        if isinstance(message, str):
            return ObjectCreatedEvent.model_validate_json(message)
        return ObjectCreatedEvent.model_validate(message)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:5])
        raise InvalidInputError(f"not an S3 Object Created event: {problems}") from error


class IngestOutcome(StrEnum):
    IGNORED = "ignored"  # not an upload (our results, folder markers)
    DUPLICATE = "duplicate"  # the item exists and is past registration
    REJECTED = "rejected"  # a failed item records why the upload cannot be analysed
    ASSET_CREATED = "asset_created"  # the item waits for its asset in asset_processing


class IngestResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    outcome: IngestOutcome
    item_id: str
    state: ItemState | None = None
    reason: str | None = None


class IngestService:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        items: ItemStore,
        writer: ItemWriter,
        objects: ObjectStore,
        assets: TwelveLabsAssets,
        profiles: ProfileSet,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._items = items
        self._writer = writer
        self._objects = objects
        self._assets = assets
        self._profiles = profiles

    def handle(self, event: ObjectCreatedEvent) -> IngestResult:
        detail = event.detail
        bucket, version_id = detail.bucket.name, detail.object.version_id
        if bucket != self._settings.video_bucket:
            # Analysing it would write its result into a bucket this stack does not own; the message goes to the
            # dead-letter queue (and its alarm) with this reason.
            raise InvalidInputError(
                f"the event names bucket {bucket!r}; this stack ingests only {self._settings.video_bucket!r}"
            )
        pinned = detail.videobatch.profile if detail.videobatch is not None else None
        candidates = event_key_candidates(detail.object.key)
        for key in candidates:
            existing = self._items.get(item_id_for(bucket, key, version_id, pinned))
            if existing is not None:
                return self._resume(existing)
        ref = ObjectRef(bucket=bucket, key=candidates[0], version_id=version_id)
        try:
            ref, info = self._locate(bucket, candidates, version_id)
            plan = self._inspect(ref, info)
            if plan.decision is UploadDecision.IGNORE:
                logger.info("ignored upload", extra={"key": ref.key, "reason": plan.ignore_reason})
                item_id = item_id_for(bucket, ref.key, version_id, pinned)
                return IngestResult(outcome=IngestOutcome.IGNORED, item_id=item_id, reason=str(plan.ignore_reason))
            profile = self._profile(ref.key, pinned)
        except RejectedUploadError as rejected:
            rejected_id = item_id_for(bucket, ref.key, version_id, pinned)
            return self._reject(rejected_id, ref, rejected, detail.object, pinned=pinned)
        item_id = item_id_for(bucket, ref.key, version_id, pinned)
        new = self._new_item(item_id, ref, plan, profile, detail.object.etag, pinned=pinned, uploaded_at=event.time)
        item, created = self._writer.create(new)
        if not created:
            return self._resume(item)
        return self._create_asset(item)

    def _locate(self, bucket: str, keys: tuple[str, ...], version_id: str | None) -> tuple[ObjectRef, ObjectInfo]:
        """The first candidate key that exists (the decoded one, else the key as delivered); object_missing if
        none does."""
        for index, key in enumerate(keys):
            ref = ObjectRef(bucket=bucket, key=key, version_id=version_id)
            try:
                return ref, self._objects.head(ref)
            except RejectedUploadError:
                if index == len(keys) - 1:
                    raise
        raise AssertionError("event_key_candidates returns at least one key")

    def _inspect(self, ref: ObjectRef, info: ObjectInfo) -> UploadPlan:
        head = self._objects.read_range(ref, 0, HEAD_BYTES_NEEDED) if info.size_bytes else b""
        return inspect_upload(
            key=ref.key, size_bytes=info.size_bytes, head_bytes=head, results_prefix=self._settings.results_prefix
        )

    def _profile(self, key: str, pinned: str | None) -> Profile:
        """The key's profile, or the one an operator pinned (reprocess); a pinned one removed meanwhile fails it."""
        if pinned is None:
            return self._profiles.for_key(key)
        try:
            return self._profiles.by_name(pinned)
        except ConfigurationError as error:
            raise RejectedUploadError("profile_missing", str(error)) from error

    def _resume(self, item: ItemRecord) -> IngestResult:
        if item.state is ItemState.REGISTERED:
            logger.info("resuming registered item", extra={"item_id": item.item_id})
            return self._create_asset(item)
        return IngestResult(outcome=IngestOutcome.DUPLICATE, item_id=item.item_id, state=item.state)

    def _new_item(
        self,
        item_id: str,
        ref: ObjectRef,
        plan: UploadPlan,
        profile: Profile,
        etag: str | None,
        *,
        pinned: str | None,
        uploaded_at: datetime | None,
    ) -> ItemRecord:
        upload = UploadedObject(
            bucket=ref.bucket,
            key=ref.key,
            version_id=ref.version_id,
            etag=etag,
            size_bytes=plan.size_bytes,
            pinned_profile=pinned,
        )
        assert upload.item_id == item_id
        return ItemRecord.registered(
            upload,
            profile_name=profile.name,
            analysis_mode=profile.analysis_mode,
            upload_method=None if plan.method is None else plan.method.value,
            now=self._clock.now(),
            uploaded_at=uploaded_at,
        )

    def _create_asset(self, item: ItemRecord) -> IngestResult:
        ref = ObjectRef(bucket=item.bucket, key=item.key, version_id=item.version_id)
        try:
            asset_id = self._upload(ref, item)
        except BadRequestError as error:  # the API refused this video for good (e.g. an unreadable URL)
            failure = FailureReason(code="asset_rejected", message=f"TwelveLabs refused the upload: {error.message}")
            return self._fail_registered(item, failure)
        processing = self._writer.save(item.asset_created(asset_id, now=self._clock.now()), item)
        if processing is None:
            # A concurrent delivery of the same event won the race; the asset just created is an orphan.
            logger.warning("asset created by a losing ingest", extra={"item_id": item.item_id, "asset_id": asset_id})
            return IngestResult(outcome=IngestOutcome.DUPLICATE, item_id=item.item_id)
        logger.info("asset created", extra={"item_id": item.item_id, "asset_id": asset_id})
        return IngestResult(outcome=IngestOutcome.ASSET_CREATED, item_id=item.item_id, state=processing.state)

    def _upload(self, ref: ObjectRef, item: ItemRecord) -> str:
        filename = ref.key.rsplit("/", 1)[-1]
        metadata = {"item_id": item.item_id, "bucket": ref.bucket, "key": ref.key}
        if item.upload_method == UploadMethod.MULTIPART:
            session = self._assets.create_multipart_upload(
                filename=filename, total_size=item.size_bytes, user_metadata=metadata
            )
            proofs = self._assets.upload_chunks(session, self._objects.iter_chunks(ref, session.chunk_size))
            self._assets.report_completed_chunks(session.upload_id, proofs)
            return session.asset_id
        url = self._objects.presigned_get_url(ref, self._settings.presigned_url_ttl_seconds)
        return self._assets.create_asset_from_url(url, filename=filename, user_metadata=metadata).id

    def _reject(
        self, item_id: str, ref: ObjectRef, rejected: RejectedUploadError, obj: S3Object, *, pinned: str | None
    ) -> IngestResult:
        failure = FailureReason(code=rejected.reason, message=rejected.message)
        upload = UploadedObject(
            bucket=ref.bucket,
            key=ref.key,
            version_id=ref.version_id,
            etag=obj.etag,
            size_bytes=obj.size,
            pinned_profile=pinned,
        )
        item = ItemRecord.rejected(upload, failure, now=self._clock.now())
        stored, created = self._writer.reject(item)
        if not created:
            return self._resume(stored)
        return IngestResult(outcome=IngestOutcome.REJECTED, item_id=item_id, state=stored.state, reason=failure.code)

    def _fail_registered(self, item: ItemRecord, failure: FailureReason) -> IngestResult:
        stored = self._writer.fail(item, failure, stage="asset")
        if stored is None:
            return IngestResult(outcome=IngestOutcome.DUPLICATE, item_id=item.item_id)
        return IngestResult(
            outcome=IngestOutcome.REJECTED, item_id=item.item_id, state=stored.state, reason=failure.code
        )
