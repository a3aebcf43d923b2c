"""Runtime settings, read once per cold start from the environment that template.yaml sets.

The environment variable names here are the contract between template.yaml, the local stack and the handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from videobatch.domain.packing import ContentCounting
from videobatch.errors import ConfigurationError
from videobatch.twelvelabs import limits


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    table_name: str = Field(min_length=1)
    event_bus_name: str = Field(min_length=1)
    # The one bucket this stack ingests (and writes results into): events naming any other are refused.
    video_bucket: str = Field(min_length=1)
    # Bounded so that every result address fits S3's 1,024-byte keys (domain/results.py).
    results_prefix: str = Field(default="results/", min_length=1, max_length=512)
    # Bucket of the result files; empty: the bucket of the video (the template's SeparateResultsBucket sets it).
    results_bucket: str = ""
    twelvelabs_base_url: str = "https://api.twelvelabs.io/v1.3"
    # Name or ARN of the Secrets Manager secret holding the API key; the key itself never sits in the environment.
    twelvelabs_api_key_secret: str = Field(min_length=1)
    scheduler_group_name: str = "default"
    scheduler_role_arn: str = ""
    batch_checker_arn: str = ""
    # The flusher, started by the batch checker when it frees a slot (empty: only its schedule runs it).
    flusher_arn: str = ""
    # Name or ARN of the secret holding the webhook signing secret; empty: webhooks are off.
    webhook_secret: str = ""
    max_active_batches: int = Field(default=limits.MAX_ACTIVE_BATCHES, ge=1, le=limits.MAX_ACTIVE_BATCHES)
    reserved_batch_slots: int = Field(default=0, ge=0, le=limits.MAX_ACTIVE_BATCHES - 1)
    max_items_per_batch: int = Field(default=limits.MAX_REQUESTS_PER_BATCH, ge=1, le=limits.MAX_REQUESTS_PER_BATCH)
    max_content_seconds_per_batch: float = Field(
        default=limits.MAX_CONTENT_SECONDS_PER_BATCH, gt=0, le=limits.MAX_CONTENT_SECONDS_PER_BATCH
    )
    # Count only each item's analysis window towards the content-hour limit instead of the whole video.
    # How a video counts towards the 2,000 content hours of a batch (domain.packing: the API does not say); the
    # default is the most cautious rule.
    content_counting: ContentCounting = "per_request"
    max_wait_seconds: float = Field(default=900.0, ge=0)
    max_attempts: int = Field(default=3, ge=1)
    expiry_grace_seconds: float = Field(default=300.0, ge=0)
    # Objects up to this size go to TwelveLabs by presigned URL, larger ones by multipart upload; 0: every object
    # by multipart (an endpoint that cannot reach the bucket: the local stack's S3 against the real API).
    url_upload_max_bytes: int = Field(default=limits.MAX_URL_UPLOAD_BYTES, ge=0, le=limits.MAX_URL_UPLOAD_BYTES)
    presigned_url_ttl_seconds: int = Field(default=6 * 3600, ge=60, le=7 * 24 * 3600)
    flush_lease_seconds: float = Field(default=240.0, gt=0)
    # Item writes of one claim or submission in flight at once (1: one after the other).
    item_write_concurrency: int = Field(default=16, ge=1, le=64)
    asset_timeout_seconds: float = Field(default=6 * 3600.0, gt=0)
    # The ingest queue's URL (ingest only): a multipart upload its invocation could not finish is continued by a
    # message sent here. Empty: the message fails instead and SQS redelivers it after its visibility timeout.
    ingest_queue_url: str = ""
    # A multipart chunk is started only with this much of the invocation left (or twice the slowest chunk so far).
    upload_chunk_reserve_seconds: float = Field(default=5.0, ge=0)
    # after_result: a terminal item's TwelveLabs asset is deleted (the template's DeleteAssets).
    delete_assets: Literal["never", "after_result"] = "never"
    # Where profiles are read from at run time, "ssm:<parameter name>" or "s3://<bucket>/<key>"; empty: the
    # layer's profiles.json (the template's ProfilesParameterName / ProfilesObject). Re-read after max age.
    profiles_source: str = Field(default="", pattern=r"^$|^ssm:/.+|^s3://[^/]+/.+")
    profiles_max_age_seconds: float = Field(default=300.0, ge=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from upper-case environment variables named after the fields."""
        raw = {name: environ[name.upper()] for name in cls.model_fields if name.upper() in environ}
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"invalid settings: {problems}") from exc
