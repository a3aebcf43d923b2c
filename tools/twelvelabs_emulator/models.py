"""The emulator's records: what it stores about assets, uploads, batches and their items, and its run-time knobs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

from twelvelabs_emulator.media import MediaInfo
from twelvelabs_emulator.variants import EXCLUSIVE, Variant

AssetMethod = Literal["direct", "url", "multipart"]
ItemStatus = Literal["queued", "processing", "ready", "failed", "canceled"]
BatchStatus = Literal["pending", "processing", "canceling", "canceled", "completed", "expired"]


class RateLimits(BaseModel):
    """Per-account rate limits, off (None) by default; windows are the UTC minute and the UTC day.

    Requests count on the rate-limited endpoints (POST /assets, POST /assets/multipart-uploads,
    POST /analyze/batches); video seconds count the content of each created batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(default=None, ge=1)
    requests_per_day: int | None = Field(default=None, ge=1)
    video_seconds_per_minute: float | None = Field(default=None, gt=0.0)
    video_seconds_per_day: float | None = Field(default=None, gt=0.0)


class EmulatorSettings(BaseModel):
    """The knobs changeable at run time (``POST /_emulator/settings``): processing model, variants, rate limits."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    item_concurrency: int = Field(default=4, ge=1, le=1_000)
    content_seconds_per_second: float = Field(default=60.0, gt=0.0)
    asset_ready_seconds: float = Field(default=2.0, ge=0.0)
    variants: frozenset[Variant] = frozenset()
    rate_limits: RateLimits = Field(default_factory=RateLimits)

    @model_validator(mode="after")
    def _compatible_variants(self) -> EmulatorSettings:
        for group in EXCLUSIVE:
            if len(group & self.variants) > 1:
                raise ValueError(f"variants {sorted(group)} exclude each other")
        return self

    @field_serializer("variants")
    def _sorted(self, variants: frozenset[Variant]) -> list[str]:
        return sorted(variants)

    def has(self, variant: Variant) -> bool:
        return variant in self.variants


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
    # chunk_index -> how many PUTs of it were stored: a client that resumes properly sends each chunk once.
    puts_received: dict[int, int] = Field(default_factory=dict)
    reported_at: dict[int, datetime] = Field(default_factory=dict)


class ItemRecord(BaseModel):
    task_id: str
    batch_id: str
    custom_id: str | None
    asset_id: str
    asset_filename: str | None
    # As the platform measured it when the batch was created (see the window_overrun variant).
    video_duration_seconds: float
    window_start_seconds: float
    window_end_seconds: float
    # The error this item fails with when its turn comes, without taking a worker: a window over 2 h, or an
    # item-level refusal (item_level_refusals variant).
    fails_with: dict[str, str] | None = None
    # Refused on its own at creation (item_level_refusals): never analysed, adds nothing to the content hours.
    refused: bool = False
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


class WebhookStatus(BaseModel):
    """One endpoint's delivery status, as the batch object's ``webhooks[]`` reports it."""

    url: str
    delivered: bool = False
    attempts: int = 0
    last_error: str | None = None


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
    webhooks: list[WebhookStatus] = Field(default_factory=list)
    notification_queued: bool = False

    @property
    def ended_at(self) -> datetime | None:
        return self.completed_at or self.canceled_at or self.expired_at
