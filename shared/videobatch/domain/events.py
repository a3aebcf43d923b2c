"""Outgoing EventBridge events: what the pipeline tells the rest of the account.

Contract (documented for consumers in events/README.md):

- ``source`` is always ``videobatch``; ``detail-type`` is one of ``Item Succeeded``, ``Item Failed``,
  ``Batch Submitted``, ``Batch Finished``.
- Every detail carries ``schema_version`` (``"1.0"``). Adding an optional field keeps 1.x; removing or renaming a
  field, or changing its meaning, bumps the major version. Consumers should ignore fields they do not know.
- Times are RFC 3339 UTC, durations are seconds (``*_seconds``), sizes are counts of requests or items.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypedDict

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from videobatch.errors import InvalidInputError
from videobatch.twelvelabs.limits import AnalysisMode

if TYPE_CHECKING:
    from videobatch.domain.items import FailureReason
    from videobatch.domain.outcomes import ResultUsage
    from videobatch.domain.records import ItemRecord
    from videobatch.domain.windows import MergedResult

SOURCE: Final = "videobatch"
SCHEMA_VERSION: Final = "1.0"
_S3_URI: Final = r"^s3://[^/]+/.+$"
FailureStage = Literal["ingest", "asset", "packing", "submission", "analysis"]


class _Detail(BaseModel):
    # Producers are strict (extra="forbid") so a typo never ships; consumers should parse leniently.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    DETAIL_TYPE: ClassVar[str]

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    occurred_at: AwareDatetime


class _ItemDetail(_Detail):
    item_id: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    version_id: str | None = None
    profile: str | None = None
    attempts: int = Field(ge=0)  # submissions to TwelveLabs so far
    registered_at: AwareDatetime | None = None  # when the upload became an item


class ItemSucceeded(_ItemDetail):
    DETAIL_TYPE: ClassVar[str] = "Item Succeeded"

    analysis_mode: AnalysisMode
    result_s3_uri: str = Field(pattern=_S3_URI)
    result_media_type: Literal["text/plain", "application/json"]
    batch_id: str = Field(min_length=1)
    task_ids: tuple[str, ...] = Field(min_length=1)  # one per analysis window
    window_count: int = Field(ge=1)
    video_duration_seconds: float = Field(gt=0)
    truncated: bool  # some window stopped at max_tokens: raise max_tokens in the profile
    submitted_at: AwareDatetime
    # Ready windows the API marked as partial (its error message per window); the result file has the details.
    warnings: tuple[str, ...] = ()
    # Usage (optional, 1.x): the analysed windows' content seconds and the tokens TwelveLabs reported for them.
    content_seconds: float | None = Field(default=None, ge=0)
    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)


class ItemFailed(_ItemDetail):
    DETAIL_TYPE: ClassVar[str] = "Item Failed"

    stage: FailureStage
    failure_code: str = Field(min_length=1)
    failure_message: str = Field(min_length=1, max_length=4_000)
    batch_id: str | None = None
    task_ids: tuple[str, ...] = ()


class BatchSubmitted(_Detail):
    DETAIL_TYPE: ClassVar[str] = "Batch Submitted"

    batch_id: str = Field(min_length=1)
    analysis_mode: AnalysisMode
    item_count: int = Field(ge=1)  # videos
    request_count: int = Field(ge=1)  # windows: what counts towards the 1,000-request limit
    content_seconds: float = Field(gt=0)  # what counts towards the content-hour limit
    fill_ratio: float = Field(ge=0, le=1)
    trigger: Literal["full", "max_wait"]
    oldest_queued_at: AwareDatetime
    oldest_wait_seconds: float = Field(ge=0)
    expires_at: AwareDatetime


class BatchFinished(_Detail):
    DETAIL_TYPE: ClassVar[str] = "Batch Finished"

    batch_id: str = Field(min_length=1)
    analysis_mode: AnalysisMode
    status: Literal["completed", "canceled", "expired"]
    request_count: int = Field(ge=0)
    ready_requests: int = Field(ge=0)
    failed_requests: int = Field(ge=0)
    canceled_requests: int = Field(ge=0)
    items_succeeded: int = Field(ge=0)
    items_failed: int = Field(ge=0)
    items_requeued: int = Field(ge=0)
    submitted_at: AwareDatetime
    duration_seconds: float = Field(ge=0)  # submitted_at to occurred_at


class _ItemFields(TypedDict):
    item_id: str
    bucket: str
    key: str
    version_id: str | None
    profile: str | None
    attempts: int
    registered_at: datetime


def _item_fields(item: ItemRecord) -> _ItemFields:
    """What every item event says of its item (a TypedDict, so the models' field checks still apply)."""
    return _ItemFields(
        item_id=item.item_id,
        bucket=item.bucket,
        key=item.key,
        version_id=item.version_id,
        profile=item.profile_name,
        attempts=item.counted_attempts,  # submissions that reached TwelveLabs (released ones did not)
        registered_at=item.created_at,
    )


def item_failed_event(item: ItemRecord, failure: FailureReason, stage: FailureStage, *, now: datetime) -> ItemFailed:
    return ItemFailed(
        **_item_fields(item),
        occurred_at=now,
        stage=stage,
        failure_code=failure.code,
        failure_message=failure.message[:4000],
        batch_id=item.batch_id,
        task_ids=tuple(item.task_ids.values()),
    )


def item_succeeded_event(
    item: ItemRecord,
    merged: MergedResult,
    uri: str,
    *,
    now: datetime,
    warnings: tuple[str, ...] = (),
    usage: ResultUsage | None = None,
) -> ItemSucceeded:
    usage_fields: dict[str, Any] = {}
    if usage is not None:
        usage_fields = {
            "content_seconds": usage.content_seconds,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
        }
    return ItemSucceeded(
        **usage_fields,
        **_item_fields(item),
        occurred_at=now,
        analysis_mode=item.analysis_mode,
        result_s3_uri=uri,
        result_media_type=merged.media_type,
        batch_id=item.batch_id or "",
        task_ids=tuple(item.task_ids.values()),
        window_count=merged.window_count,
        video_duration_seconds=item.duration_seconds or 0.0,
        truncated=merged.truncated,
        submitted_at=item.submitted_at or item.updated_at,
        warnings=warnings,
    )


OutgoingEvent = ItemSucceeded | ItemFailed | BatchSubmitted | BatchFinished
EVENT_TYPES: Final[dict[str, type[OutgoingEvent]]] = {
    cls.DETAIL_TYPE: cls for cls in (ItemSucceeded, ItemFailed, BatchSubmitted, BatchFinished)
}


def to_put_events_entry(event: OutgoingEvent, bus_name: str) -> dict[str, Any]:
    """The boto3 ``put_events`` entry for one event; item events name the S3 object as their resource."""
    entry: dict[str, Any] = {
        "Source": SOURCE,
        "DetailType": event.DETAIL_TYPE,
        "Detail": event.model_dump_json(),
        "EventBusName": bus_name,
        "Time": event.occurred_at,
        "Resources": [],
    }
    if isinstance(event, _ItemDetail):
        entry["Resources"] = [f"arn:aws:s3:::{event.bucket}/{event.key}"]
    return entry


class EventEnvelope(BaseModel):
    """The EventBridge envelope as a rule target receives it."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)

    version: str
    id: str
    detail_type: str = Field(alias="detail-type")
    source: Literal["videobatch"]
    account: str
    time: AwareDatetime
    region: str
    resources: list[str]
    detail: dict[str, Any]


def parse_event(envelope: Mapping[str, Any]) -> OutgoingEvent:
    """Parse a delivered event back into its detail model (consumers' tests, the sample check)."""
    parsed = EventEnvelope.model_validate(envelope)
    event_type = EVENT_TYPES.get(parsed.detail_type)
    if event_type is None:
        raise InvalidInputError(
            f"detail-type {parsed.detail_type!r} is not a videobatch event; expected one of {', '.join(EVENT_TYPES)}"
        )
    return event_type.model_validate(parsed.detail)
