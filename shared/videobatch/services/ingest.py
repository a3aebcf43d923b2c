"""Ingest: one S3 "Object Created" event becomes one item whose TwelveLabs asset is being created.

Idempotent by construction: the item id is derived from bucket, key and version, and the item is created only if
absent. A redelivered event finds the item and stops, unless it is still ``registered`` (the previous attempt
crashed or failed transiently between writing the item and recording the asset): then the asset is created now.
That window can leave an orphan asset on TwelveLabs (created, but the crash came before its id was stored); it costs
storage only, is never analysed, and is accepted rather than paying a second round trip on every upload.

A multipart upload (over 4 GB) may need more than one invocation: its session is stored with the item
(``services.multipart``), and when the run's time is up the event is sent to the ingest queue again
(``continuations``), so the next invocation continues from the first unconfirmed chunk. Without a queue the message
fails (``UploadIncompleteError``) and SQS's redelivery continues it instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
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
from videobatch.errors import (
    BadRequestError,
    ConfigurationError,
    InvalidInputError,
    RejectedUploadError,
    UploadIncompleteError,
)
from videobatch.services.lifecycle import ItemWriter
from videobatch.services.multipart import MultipartUploader
from videobatch.services.ports import (
    ItemStore,
    MetricsSink,
    ObjectInfo,
    ObjectRef,
    ObjectStore,
    TwelveLabsAssets,
    UploadQueue,
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
    UPLOAD_CONTINUED = "upload_continued"  # a multipart upload handed to the next invocation (still registered)


class IngestResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    outcome: IngestOutcome
    item_id: str
    state: ItemState | None = None
    reason: str | None = None


class _NoMetrics:
    def add_metric(self, name: str, unit: str, value: float) -> None:
        pass


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
        metrics: MetricsSink | None = None,
        remaining_seconds: Callable[[], float] = lambda: math.inf,
        continuations: UploadQueue | None = None,
    ) -> None:
        """``remaining_seconds``: what is left of the invocation (a multipart upload stops in time);
        ``continuations``: the ingest queue, where an unfinished multipart upload's event is sent again."""
        self._settings = settings
        self._clock = clock
        self._items = items
        self._writer = writer
        self._objects = objects
        self._assets = assets
        self._profiles = profiles
        self._metrics: MetricsSink = metrics or _NoMetrics()
        self._continuations = continuations
        self._multipart = MultipartUploader(
            settings=settings,
            clock=clock,
            writer=writer,
            objects=objects,
            assets=assets,
            metrics=self._metrics,
            remaining_seconds=remaining_seconds,
        )

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
                return self._resume(existing, event)
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
            return self._reject(rejected_id, ref, rejected, event, pinned=pinned)
        item_id = item_id_for(bucket, ref.key, version_id, pinned)
        new = self._new_item(item_id, ref, plan, profile, detail.object.etag, pinned=pinned, uploaded_at=event.time)
        item, created = self._writer.create(new)
        if not created:
            return self._resume(item, event)
        return self._create_asset(item, event)

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
            key=ref.key,
            size_bytes=info.size_bytes,
            head_bytes=head,
            results_prefix=self._settings.results_prefix,
            url_upload_max_bytes=self._settings.url_upload_max_bytes,
        )

    def _profile(self, key: str, pinned: str | None) -> Profile:
        """The key's profile, or the one an operator pinned (reprocess); a pinned one removed meanwhile fails it."""
        if pinned is None:
            return self._profiles.for_key(key)
        try:
            return self._profiles.by_name(pinned)
        except ConfigurationError as error:
            raise RejectedUploadError("profile_missing", str(error)) from error

    def _resume(self, item: ItemRecord, event: ObjectCreatedEvent) -> IngestResult:
        if item.state is ItemState.REGISTERED:
            logger.info("resuming registered item", extra={"item_id": item.item_id})
            return self._create_asset(item, event)
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

    def _create_asset(self, item: ItemRecord, event: ObjectCreatedEvent) -> IngestResult:
        ref = ObjectRef(bucket=item.bucket, key=item.key, version_id=item.version_id)
        try:
            uploaded, asset_id = self._upload(ref, item)
        except BadRequestError as error:  # the API refused this video for good (e.g. an unreadable URL)
            failure = FailureReason(code="asset_rejected", message=f"TwelveLabs refused the upload: {error.message}")
            # A multipart upload may have saved progress meanwhile: fail the item as stored now.
            return self._fail_registered(self._items.get(item.item_id) or item, failure)
        if uploaded is None:  # another delivery of the event moved the item while this one uploaded
            return IngestResult(outcome=IngestOutcome.DUPLICATE, item_id=item.item_id)
        if asset_id is None:
            return self._continue_later(uploaded, event)
        item = uploaded
        processing = self._writer.save(item.asset_created(asset_id, now=self._clock.now()), item)
        if processing is None:
            # A concurrent delivery of the same event won the race; the asset just created is an orphan.
            logger.warning("asset created by a losing ingest", extra={"item_id": item.item_id, "asset_id": asset_id})
            return IngestResult(outcome=IngestOutcome.DUPLICATE, item_id=item.item_id)
        logger.info("asset created", extra={"item_id": item.item_id, "asset_id": asset_id})
        return IngestResult(outcome=IngestOutcome.ASSET_CREATED, item_id=item.item_id, state=processing.state)

    def _upload(self, ref: ObjectRef, item: ItemRecord) -> tuple[ItemRecord | None, str | None]:
        """(the item as stored now, its asset id); no asset id yet: a multipart upload to continue later; no item:
        someone else moved it meanwhile."""
        filename = ref.key.rsplit("/", 1)[-1]
        metadata = {"item_id": item.item_id, "bucket": ref.bucket, "key": ref.key}
        if item.upload_method == UploadMethod.MULTIPART:
            progress = self._multipart.upload(item, ref, filename=filename, metadata=metadata)
            return progress.item, progress.asset_id
        url = self._objects.presigned_get_url(ref, self._settings.presigned_url_ttl_seconds)
        return item, self._assets.create_asset_from_url(url, filename=filename, user_metadata=metadata).id

    def _continue_later(self, item: ItemRecord, event: ObjectCreatedEvent) -> IngestResult:
        """The invocation's time is up: the same event to the ingest queue, so the next run continues the upload
        (it finds the item registered with its session, ``_resume``)."""
        session = item.upload_session
        progress = "no session" if session is None else f"{session.confirmed_chunks}/{session.total_chunks} chunks"
        if self._continuations is None:
            raise UploadIncompleteError(
                f"multipart upload of {item.key} stopped at {progress} (time budget); no ingest queue is configured, "
                "so the message is retried and its redelivery continues the upload"
            )
        self._continuations.send([event.model_dump(mode="json", by_alias=True, exclude_none=True)])
        self._metrics.add_metric(name="UploadsContinued", unit="Count", value=1)
        logger.info("multipart upload continues in the next invocation", extra={"item_id": item.item_id})
        return IngestResult(
            outcome=IngestOutcome.UPLOAD_CONTINUED, item_id=item.item_id, state=item.state, reason=progress
        )

    def _reject(
        self,
        item_id: str,
        ref: ObjectRef,
        rejected: RejectedUploadError,
        event: ObjectCreatedEvent,
        *,
        pinned: str | None,
    ) -> IngestResult:
        obj = event.detail.object
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
            return self._resume(stored, event)
        return IngestResult(outcome=IngestOutcome.REJECTED, item_id=item_id, state=stored.state, reason=failure.code)

    def _fail_registered(self, item: ItemRecord, failure: FailureReason) -> IngestResult:
        stored = self._writer.fail(item, failure, stage="asset")
        if stored is None:
            return IngestResult(outcome=IngestOutcome.DUPLICATE, item_id=item.item_id)
        return IngestResult(
            outcome=IngestOutcome.REJECTED, item_id=item.item_id, state=stored.state, reason=failure.code
        )
