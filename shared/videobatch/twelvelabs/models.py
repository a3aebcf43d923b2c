"""Wire models of the TwelveLabs API v1.3 (the subset this project uses).

Request models are strict (``extra="forbid"``): a typo in a field name fails here, not as a 400 from the API.
Response models ignore unknown fields because the API adds fields over time and a Lambda must keep working. For
the same reason statuses and finish reasons are open enums: typed ``str``, with the documented values as
``KNOWN_*`` constants (and ``Known*`` literals), so a value the API adds is carried, never a parse failure of the
whole batch, page or results line.
Every model defers building its validator to first use, which keeps the cold-start import cheap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Generic, Literal, TypeAlias, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field

from videobatch.twelvelabs.limits import AnalysisMode

KnownBatchStatus = Literal["pending", "processing", "canceling", "canceled", "completed", "expired"]
KnownItemStatus = Literal["queued", "processing", "ready", "failed", "canceled"]
KnownTaskStatus = Literal["queued", "pending", "processing", "ready", "failed", "canceled"]
KnownAssetStatus = Literal["processing", "ready", "failed"]
KnownFinishReason = Literal["stop", "length"]
KNOWN_BATCH_STATUSES: Final[frozenset[str]] = frozenset(get_args(KnownBatchStatus))
KNOWN_ITEM_STATUSES: Final[frozenset[str]] = frozenset(get_args(KnownItemStatus))
KNOWN_TASK_STATUSES: Final[frozenset[str]] = frozenset(get_args(KnownTaskStatus))
KNOWN_ASSET_STATUSES: Final[frozenset[str]] = frozenset(get_args(KnownAssetStatus))
KNOWN_FINISH_REASONS: Final[frozenset[str]] = frozenset(get_args(KnownFinishReason))
# Open enums (see the module docstring): any string the API sends.
BatchStatus: TypeAlias = str
ItemStatus: TypeAlias = str
TaskStatus: TypeAlias = str
AssetStatus: TypeAlias = str
FinishReason: TypeAlias = str
AssetType = Literal["image", "video", "audio", "document"]
UploadType = Literal["video", "audio", "image"]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True, populate_by_name=True)


# --- batch requests -------------------------------------------------------------------------------------------


class VideoContext(RequestModel):
    type: Literal["asset_id"] = "asset_id"
    asset_id: str = Field(min_length=1)


class MediaSource(RequestModel):
    name: str
    media_type: str = "image"
    url: str | None = None
    asset_id: str | None = None
    base64_string: str | None = None


class Prompt(RequestModel):
    input_text: str = Field(min_length=1)
    media_sources: list[MediaSource] | None = None


class TimeRange(RequestModel):
    start_time: float
    end_time: float


class SegmentFieldItems(RequestModel):
    type: str
    fields: list[dict[str, Any]] | None = None


class SegmentField(RequestModel):
    name: str = Field(min_length=1)
    # A plain string, not a Literal: validation names the allowed types and explains why time_array is refused.
    type: str
    description: str
    format: str | None = None
    enum: list[str] | None = None
    items: SegmentFieldItems | None = None


class SegmentDefinition(RequestModel):
    id: str = Field(min_length=1)
    description: str
    fields: list[SegmentField] | None = None
    media_sources: list[MediaSource] | None = None
    time_ranges: list[TimeRange] | None = None


class JsonSchemaFormat(RequestModel):
    type: Literal["json_schema"] = "json_schema"
    json_schema: dict[str, Any]


class SegmentDefinitionsFormat(RequestModel):
    type: Literal["segment_definitions"] = "segment_definitions"
    segment_definitions: list[SegmentDefinition]
    segment_time_format: str | None = None


ResponseFormat = Annotated[JsonSchemaFormat | SegmentDefinitionsFormat, Field(discriminator="type")]


class AnalysisOptions(RequestModel):
    """The optional per-item analysis settings; the same shape serves as the batch's ``defaults``."""

    prompt: Prompt | None = None
    response_format: ResponseFormat | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    min_segment_duration: float | None = None
    max_segment_duration: float | None = None
    start_time: float | None = None
    end_time: float | None = None


OPTION_FIELDS: tuple[str, ...] = tuple(AnalysisOptions.model_fields)


class BatchItemRequest(AnalysisOptions):
    video: VideoContext
    custom_id: str | None = None


class BatchCreateRequest(RequestModel):
    # A plain string so that validation can say which model batches accept instead of a generic literal error.
    model_name: str = "pegasus1.5"
    analysis_mode: AnalysisMode
    requests: list[BatchItemRequest]
    defaults: AnalysisOptions | None = None


class CompletedChunk(RequestModel):
    chunk_index: int = Field(ge=1)
    proof: str = Field(min_length=1)
    proof_type: Literal["etag"] = "etag"
    chunk_size: int = Field(ge=1)


# --- responses ------------------------------------------------------------------------------------------------


class PageInfo(ResponseModel):
    page: int | None = None
    limit_per_page: int | None = None
    total_page: int | None = None
    total_results: int | None = None


ItemT = TypeVar("ItemT", bound=BaseModel)


class Page(ResponseModel, Generic[ItemT]):
    data: list[ItemT] = Field(default_factory=list)
    page_info: PageInfo | None = None


class CreatedBatchItem(ResponseModel):
    task_id: str
    custom_id: str | None = None


class BatchCreated(ResponseModel):
    batch_id: str
    status: BatchStatus
    total_items: int
    created_at: datetime
    expires_at: datetime
    items: list[CreatedBatchItem]


class WebhookDelivery(ResponseModel):
    url: str
    delivered: bool
    attempts: int
    last_error: str | None = None


class Batch(ResponseModel):
    batch_id: str
    analysis_mode: AnalysisMode
    model_name: str
    status: BatchStatus
    total_items: int
    created_at: datetime
    expires_at: datetime
    queued_items: int = 0
    processing_items: int = 0
    ready_items: int = 0
    failed_items: int = 0
    canceled_items: int = 0
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    webhooks: list[WebhookDelivery] | None = None


class TokenUsage(ResponseModel):
    output_tokens: int
    input_tokens: int | None = None


class GeneratedText(ResponseModel):
    generation_id: str
    # The model output as a string; in time_based_metadata mode it is itself JSON.
    data: str
    finish_reason: FinishReason
    usage: TokenUsage

    @property
    def known_finish_reason(self) -> KnownFinishReason | None:
        """``stop`` or ``length``; None for a value the API added (read it from ``finish_reason``)."""
        if self.finish_reason == "stop":
            return "stop"
        if self.finish_reason == "length":
            return "length"
        return None


class ItemError(ResponseModel):
    code: str | None = None
    message: str


class BatchResultItem(ResponseModel):
    """One results line. A line that carries a task id but does not fit this model is still yielded: then
    ``parse_error`` says why, ``status`` is the line's raw status (``""`` if it had none) and ``data`` / ``error``
    are None. A ``ready`` line may carry an ``error``: a partial result (``warning``)."""

    task_id: str
    custom_id: str | None = None
    status: ItemStatus
    data: GeneratedText | None = None
    error: ItemError | None = None
    parse_error: str | None = None

    @property
    def parsed(self) -> bool:
        return self.parse_error is None

    @property
    def warning(self) -> ItemError | None:
        """The error of a ``ready`` line: the result is partial, as the error says."""
        return self.error if self.status == "ready" else None


class TaskVideoSource(ResponseModel):
    type: str | None = None
    url: str | None = None
    asset_id: str | None = None


class Task(ResponseModel):
    task_id: str
    custom_id: str | None = None
    batch_id: str | None = None
    status: TaskStatus
    created_at: datetime
    completed_at: datetime | None = None
    video_source: TaskVideoSource | None = None
    # Echo of the request; kept loose because the API reports it in a shape that differs from the request.
    request_params: dict[str, Any] | None = None
    result: GeneratedText | None = None
    error: ItemError | None = None


class AssetError(ResponseModel):
    message: str


class TechnicalMetadata(ResponseModel):
    video_fps: float | None = None
    video_width: int | None = None
    video_height: int | None = None
    video_codec: str | None = None
    video_duration_seconds: float | None = None
    has_audio: bool | None = None
    file_size_bytes: int | None = None
    file_mime_type: str | None = None


class Asset(ResponseModel):
    id: str = Field(alias="_id")
    method: str | None = None
    status: AssetStatus | None = None
    filename: str | None = None
    file_type: str | None = None
    created_at: datetime | None = None
    user_metadata: dict[str, Any] | None = None
    duration: float | None = None
    size: int | None = None
    technical_metadata: TechnicalMetadata | None = None
    error: AssetError | None = None


class PresignedUrl(ResponseModel):
    chunk_index: int
    url: str
    expires_at: datetime | None = None


class MultipartUpload(ResponseModel):
    upload_id: str
    asset_id: str
    upload_urls: list[PresignedUrl] = Field(default_factory=list)
    upload_headers: dict[str, str] | None = None
    chunk_size: int
    total_chunks: int
    expires_at: datetime | None = None


class ChunkReport(ResponseModel):
    url: str | None = None
    asset_id: str | None = None
    processed_chunks: int | None = None
    duplicate_chunks: int | None = None
    total_completed: int | None = None


class PresignedUrls(ResponseModel):
    upload_id: str | None = None
    start_index: int | None = None
    count: int | None = None
    upload_urls: list[PresignedUrl] = Field(default_factory=list)
    generated_at: datetime | None = None
    expires_at: datetime | None = None


class ChunkInfo(ResponseModel):
    index: int | None = None
    status: str | None = None
    uploaded_at: datetime | None = None
    error: str | None = None


class MultipartUploadStatus(ResponseModel):
    upload_id: str | None = None
    status: str | None = None
    uploaded_chunks: list[ChunkInfo] = Field(default_factory=list)
    chunks_completed: int | None = None
    chunks_failed: int | None = None
    chunks_pending: int | None = None
    total_size: int | None = None
    uploaded_size: int | None = None
    page_info: PageInfo | None = None
