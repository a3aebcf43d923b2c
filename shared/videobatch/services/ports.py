"""The ports the services talk through, as Protocols. The AWS adapters (``videobatch.adapters``), their in-memory
twins (``videobatch.adapters.memory``, proven equal by one contract suite) and the TwelveLabs client satisfy them
structurally; ``Runtime`` is typed on these, never on a concrete adapter."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from datetime import date

    from videobatch.domain.control import PipelineControl
    from videobatch.domain.events import OutgoingEvent
    from videobatch.domain.outcomes import DayTotals, Outcome, OutcomeState
    from videobatch.domain.records import BatchProgress, BatchRecord, ClaimRecord, ItemRecord
    from videobatch.twelvelabs.models import (
        Asset,
        Batch,
        BatchCreated,
        BatchCreateRequest,
        BatchResultItem,
        BatchStatus,
        ChunkReport,
        CompletedChunk,
        MultipartUpload,
        Page,
        PresignedUrls,
        Task,
    )


class ObjectRef(BaseModel):
    """One version of one S3 object."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    bucket: str
    key: str
    version_id: str | None = None


class ObjectInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    size_bytes: int
    content_type: str | None = None
    etag: str | None = None


class ListedVersion(BaseModel):
    """One entry of a bucket listing by version (ListObjectVersions): an object version or a delete marker."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    key: str
    version_id: str | None = None  # None: the object of an unversioned bucket ("null" in S3's answers)
    is_latest: bool = True
    delete_marker: bool = False
    size_bytes: int = 0
    etag: str | None = None
    last_modified: datetime | None = None  # when S3 created the version (None where the store does not say)


class ObjectLister(Protocol):
    """Enumerating a bucket (backfill, reprocess, deletions): every version and delete marker under a prefix, by key
    and newest first within a key, page by page."""

    def iter_versions(self, bucket: str, prefix: str) -> Iterator[ListedVersion]: ...


class UploadQueue(Protocol):
    """The ingest queue, for events the ops CLI sends (domain.upload_events); returns how many were sent."""

    def send(self, events: Sequence[Mapping[str, Any]]) -> int: ...


class ItemStore(Protocol):
    def create(self, item: ItemRecord) -> tuple[ItemRecord, bool]: ...
    def get(self, item_id: str) -> ItemRecord | None: ...
    def get_many(self, item_ids: Sequence[str]) -> dict[str, ItemRecord]: ...
    def save(self, new: ItemRecord, expected: ItemRecord) -> ItemRecord: ...
    # The operator's moves only (failed -> queued | registered); save refuses them, reopen refuses everything else.
    def reopen(self, new: ItemRecord, expected: ItemRecord) -> ItemRecord: ...
    def iter_queue(
        self, queue: str, *, until: datetime | None = None, page_size: int = 100
    ) -> Iterator[ItemRecord]: ...


class BatchStore(Protocol):
    """A batch's facts (written once) and its progress (what checks change), stored apart."""

    def create(self, batch: BatchRecord, progress: BatchProgress) -> BatchRecord: ...
    def get(self, batch_id: str) -> BatchRecord | None: ...
    def get_progress(self, batch_id: str) -> BatchProgress | None: ...
    def save_progress(self, new: BatchProgress, expected: BatchProgress) -> BatchProgress: ...
    def iter_open(self, *, page_size: int = 100) -> Iterator[BatchProgress]: ...


class ClaimStore(Protocol):
    def create(self, claim: ClaimRecord) -> ClaimRecord: ...
    def get(self, claim_id: str) -> ClaimRecord | None: ...
    def save(self, new: ClaimRecord, expected: ClaimRecord) -> ClaimRecord: ...
    def iter_pending(self, *, page_size: int = 100) -> Iterator[ClaimRecord]: ...


class LeaseInfo(BaseModel):
    """Who holds a lease and until when (for the sweeper's report)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str
    owner: str
    expires_at: datetime


class LeaseStore(Protocol):
    def acquire(self, name: str, owner: str, *, now: datetime, duration_seconds: float) -> bool: ...
    def release(self, name: str, owner: str) -> bool: ...
    def inspect(self, name: str) -> LeaseInfo | None: ...


class ObjectStore(ObjectLister, Protocol):
    def head(self, ref: ObjectRef) -> ObjectInfo: ...
    def read_range(self, ref: ObjectRef, start_byte: int, length_bytes: int) -> bytes: ...
    def iter_chunks(self, ref: ObjectRef, chunk_size_bytes: int) -> Iterator[bytes]: ...
    def presigned_get_url(self, ref: ObjectRef, expires_seconds: int) -> str: ...
    def write_once(self, bucket: str, key: str, body: bytes, content_type: str) -> bool: ...
    # The latest-result pointers (services.result_pointers): read one back (None: absent), and overwrite it.
    def read(self, bucket: str, key: str) -> bytes | None: ...
    def overwrite(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...


class EventPublisher(Protocol):
    def publish(self, events: Sequence[OutgoingEvent]) -> None: ...


class MetricsSink(Protocol):
    """What services need of Powertools Metrics (which satisfies it): EMF metrics flushed by the handler."""

    def add_metric(self, name: str, unit: str, value: float) -> None: ...


class OutcomeLedger(Protocol):
    """Outcomes of items (done / failed) journaled and counted per day (``domain.outcomes``)."""

    def record(self, outcomes: Sequence[Outcome]) -> None: ...
    # An operator's requeue: the failure no longer counts as failed, and leaves the journal.
    def retract(self, outcome: Outcome) -> None: ...
    # The totals of these UTC days (a day nothing happened on: zeros), in the order asked.
    def days(self, days: Sequence[date]) -> list[DayTotals]: ...
    # One day's journal of one state, newest first; ``before``: continue after this sort key (Outcome.sort_key).
    def iter_outcomes(
        self, state: OutcomeState, day: date, *, before: str | None = None, page_size: int = 100
    ) -> Iterator[Outcome]: ...


class ControlStore(Protocol):
    """The pipeline's control record (``domain.control``): paused or not."""

    def load(self) -> PipelineControl: ...
    # Conditional on the version read (StaleStateError when someone else changed it first).
    def save(self, new: PipelineControl, expected: PipelineControl) -> PipelineControl: ...


class TwelveLabsAssetCleanup(Protocol):
    """Deleting assets (DeleteAssets=after_result, orphans): the client's delete, and listing for the sweep."""

    def delete_asset(self, asset_id: str) -> None: ...
    def iter_assets(self, *, page_limit: int | None = None) -> Iterator[Asset]: ...


class TwelveLabsAssets(Protocol):
    """The asset side of ``TwelveLabsClient``."""

    def create_asset_from_url(
        self, url: str, *, filename: str | None = None, user_metadata: Mapping[str, Any] | None = None
    ) -> Asset: ...
    def create_multipart_upload(
        self, *, filename: str, total_size: int, user_metadata: Mapping[str, Any] | None = None
    ) -> MultipartUpload: ...
    def upload_chunks(self, upload: MultipartUpload, chunks: Iterable[bytes]) -> list[CompletedChunk]: ...
    def report_completed_chunks(self, upload_id: str, completed_chunks: Sequence[CompletedChunk]) -> ChunkReport: ...
    def request_presigned_urls(self, upload_id: str, *, start: int, count: int) -> PresignedUrls: ...
    def upload_chunk(
        self, url: str, chunk: bytes, *, chunk_index: int, upload_headers: Mapping[str, str] | None = None
    ) -> CompletedChunk: ...
    def list_assets(
        self, *, page: int = 1, page_limit: int | None = None, asset_ids: Sequence[str] | None = None
    ) -> Page[Asset]: ...


class ExpiryScheduler(Protocol):
    def schedule_batch_check(self, batch_id: str, at: datetime) -> bool: ...
    def cancel_batch_check(self, batch_id: str) -> bool: ...


class TwelveLabsBatches(Protocol):
    """The batch side of ``TwelveLabsClient``."""

    def create_batch(self, request: BatchCreateRequest, *, max_wait_seconds: float | None = None) -> BatchCreated: ...
    def retrieve_batch(self, batch_id: str) -> Batch: ...
    def cancel_batch(self, batch_id: str) -> Batch: ...
    def iter_batches(
        self, *, page_limit: int | None = None, status: Sequence[BatchStatus] | None = None
    ) -> Iterator[Batch]: ...
    def stream_batch_results(self, batch_id: str) -> AbstractContextManager[Iterator[BatchResultItem]]: ...
    def retrieve_task(self, task_id: str) -> Task: ...


class TwelveLabsFlushApi(TwelveLabsBatches, TwelveLabsAssets, Protocol):
    """What the flusher needs: batches, and assets to trace a refused create to its videos."""


class TwelveLabsApi(TwelveLabsFlushApi, TwelveLabsAssetCleanup, Protocol):
    """All of ``TwelveLabsClient`` the pipeline uses: what the runtime holds (and closes)."""

    def close(self) -> None: ...


class FunctionInvoker(Protocol):
    """Starts another of the stack's functions at once, asynchronously (Lambda's Event invocation)."""

    def invoke_async(self, function: str, payload: Mapping[str, Any]) -> None: ...


class ReplayGuard(Protocol):
    """Remembers webhook signatures: True the first time one is seen, False for a replay."""

    def first_seen(self, signature: str, *, now: datetime, remember_seconds: float) -> bool: ...


class SecretValue(Protocol):
    """A secret read through a cache (``get``) or fresh (``refresh``), as the API key provider does."""

    def get(self) -> str: ...
    def refresh(self) -> str: ...
