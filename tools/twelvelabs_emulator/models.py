"""The emulator's records: what it stores about assets, uploads, batches and their items."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from twelvelabs_emulator.media import MediaInfo

AssetMethod = Literal["direct", "url", "multipart"]
ItemStatus = Literal["queued", "processing", "ready", "failed", "canceled"]
BatchStatus = Literal["pending", "processing", "canceling", "canceled", "completed", "expired"]


class EmulatorSettings(BaseModel):
    """The processing model's knobs, changeable at run time (``POST /_emulator/settings``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    item_concurrency: int = Field(default=4, ge=1, le=1_000)
    content_seconds_per_second: float = Field(default=60.0, gt=0.0)
    asset_ready_seconds: float = Field(default=2.0, ge=0.0)


class AssetRecord(BaseModel):
    asset_id: str
    method: AssetMethod
    filename: str | None
    created_at: datetime
    user_metadata: dict[str, Any] | None = None
    enable_hls: bool = True
    enable_thumbnail: bool = True
    content_path: Path | None = None
    media: MediaInfo | None = None
    error_message: str | None = None
    # None while a multipart upload is still open: the asset stays ``processing`` until it is assembled.
    ready_at: datetime | None = None


class UploadSession(BaseModel):
    upload_id: str
    asset_id: str
    filename: str
    total_size_bytes: int
    chunk_size_bytes: int
    total_chunks: int
    created_at: datetime
    expires_at: datetime
    updated_at: datetime
    status: Literal["active", "completed", "failed", "expired"] = "active"
    # chunk_index -> (MD5 hex of the bytes PUT, size in bytes): what a proof must match.
    received: dict[int, tuple[str, int]] = Field(default_factory=dict)
    reported_at: dict[int, datetime] = Field(default_factory=dict)


class ItemRecord(BaseModel):
    task_id: str
    batch_id: str
    custom_id: str | None
    asset_id: str
    asset_filename: str | None
    video_duration_seconds: float
    window_start_seconds: float
    window_end_seconds: float
    too_long: bool
    request_params: dict[str, Any]
    created_at: datetime
    status: ItemStatus = "queued"
    finishes_at: datetime | None = None
    completed_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    @property
    def content_seconds(self) -> float:
        return self.window_end_seconds - self.window_start_seconds


class BatchRecord(BaseModel):
    batch_id: str
    analysis_mode: str
    model_name: str
    created_at: datetime
    expires_at: datetime
    items: list[ItemRecord]
    status: BatchStatus = "pending"
    # Processing has been simulated up to this instant.
    advanced_to: datetime
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
