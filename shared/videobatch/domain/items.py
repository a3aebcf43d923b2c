"""An item is one uploaded video moving through the pipeline; this module holds its lifecycle and identifiers.

The lifecycle, drawn once here (``ALLOWED_TRANSITIONS`` below is its table; each arrow is one transition method of
``videobatch.domain.records.ItemRecord``, and both storage adapters refuse a save whose move is not an arrow):

```mermaid
stateDiagram-v2
    [*] --> registered: S3 Object Created (ItemRecord.registered)
    [*] --> failed: rejected upload: not a video, too large, no profile, ... (ItemRecord.rejected)
    registered --> asset_processing: asset created (asset_created)
    registered --> failed: TwelveLabs refused the upload / ingest incomplete (fail)
    registered --> registered: a multipart upload's progress saved (upload_progressed; no move)
    asset_processing --> queued: asset ready, windows planned (asset_ready)
    asset_processing --> failed: asset failed / > 4 h / timed out (fail)
    queued --> claimed: flusher claims, attempts + 1 (claim)
    queued --> failed: unpackable / profile removed (fail)
    claimed --> submitted: batch created (submit)
    claimed --> queued: create refused for sure, or no batch found (release: released_attempts + 1)
    claimed --> failed: the refusal is traced to this video (fail)
    submitted --> done: all windows ready, result written to S3 (finish)
    submitted --> queued: canceled / expired / retryable failure (requeue)
    submitted --> failed: terminal error or max attempts (fail)
    failed --> queued: operator requeue, windows kept (reopen_queued; ItemStore.reopen only)
    failed --> registered: operator requeue, no usable asset (reopen_registered; ItemStore.reopen only)
    done --> [*]
    failed --> [*]
```

The two ``failed -> ...`` arrows are the operator's (``videobatch requeue``), not the pipeline's: they are in
``OPERATOR_TRANSITIONS``, not ``ALLOWED_TRANSITIONS``, so ``done`` and ``failed`` stay terminal for every service
(``check_transition`` refuses them, and so does every store's ``save``); only ``ItemRecord.reopen_*`` builds them and
only ``ItemStore.reopen`` (``check_operator_transition``) stores them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from videobatch.errors import InvalidInputError, InvalidTransitionError
from videobatch.twelvelabs import limits


class ItemState(StrEnum):
    REGISTERED = "registered"  # item written, TwelveLabs asset being created
    ASSET_PROCESSING = "asset_processing"  # asset exists, platform still processing it
    QUEUED = "queued"  # asset ready, waiting for a batch
    CLAIMED = "claimed"  # taken by a flush, the batch-create call is about to happen or in flight
    SUBMITTED = "submitted"  # part of a live batch
    DONE = "done"  # result stored
    FAILED = "failed"  # terminal failure with a FailureReason


ALLOWED_TRANSITIONS: Final[Mapping[ItemState, frozenset[ItemState]]] = {
    ItemState.REGISTERED: frozenset({ItemState.ASSET_PROCESSING, ItemState.FAILED}),
    ItemState.ASSET_PROCESSING: frozenset({ItemState.QUEUED, ItemState.FAILED}),
    # queued -> failed: an item the packer can never fit (or a profile that vanished).
    ItemState.QUEUED: frozenset({ItemState.CLAIMED, ItemState.FAILED}),
    # claimed -> queued: the create call was rejected retryably, or reconciliation found no batch.
    ItemState.CLAIMED: frozenset({ItemState.SUBMITTED, ItemState.QUEUED, ItemState.FAILED}),
    # submitted -> queued: canceled/expired/timed-out or retryable failure, another attempt follows.
    ItemState.SUBMITTED: frozenset({ItemState.DONE, ItemState.QUEUED, ItemState.FAILED}),
    ItemState.DONE: frozenset(),
    ItemState.FAILED: frozenset(),
}

TERMINAL_STATES: Final[frozenset[ItemState]] = frozenset(
    state for state, targets in ALLOWED_TRANSITIONS.items() if not targets
)


def check_transition(source: ItemState, target: ItemState) -> None:
    """Raise InvalidTransitionError unless the lifecycle allows ``source -> target`` (self-moves included)."""
    allowed = ALLOWED_TRANSITIONS[source]
    if target not in allowed:
        raise InvalidTransitionError(source.value, target.value, tuple(sorted(state.value for state in allowed)))


# Saves that keep the state: a registered item records the progress of its multipart upload
# (ItemRecord.upload_progressed) without moving; no other state is ever rewritten in place.
PROGRESS_STATES: Final[frozenset[ItemState]] = frozenset({ItemState.REGISTERED})


def check_save(source: ItemState, target: ItemState) -> None:
    """What a store's ``save`` allows: a lifecycle move, or a progress save of a registered item."""
    if source is target and source in PROGRESS_STATES:
        return
    check_transition(source, target)


# An operator puts a failed item back to work (videobatch requeue): back to the queue when its windows and asset
# are still good, else back to registered for a new asset. Nothing else ever leaves a terminal state.
OPERATOR_TRANSITIONS: Final[Mapping[ItemState, frozenset[ItemState]]] = {
    ItemState.FAILED: frozenset({ItemState.QUEUED, ItemState.REGISTERED}),
}


def check_operator_transition(source: ItemState, target: ItemState) -> None:
    """Raise InvalidTransitionError unless ``source -> target`` is one of the operator's moves."""
    allowed = OPERATOR_TRANSITIONS.get(source, frozenset())
    if target not in allowed:
        raise InvalidTransitionError(source.value, target.value, tuple(sorted(state.value for state in allowed)))


ITEM_ID_LENGTH: Final = 32
_ITEM_ID_PATTERN: Final = re.compile(r"^[0-9a-f]{32}$")
_CUSTOM_ID_PATTERN: Final = re.compile(r"^(?P<item_id>[0-9a-f]{32})-a(?P<attempt>\d{1,9})-w(?P<window>\d{1,3})$")


def item_id_for(bucket: str, key: str, version_id: str | None, profile: str | None = None) -> str:
    """The deterministic id of one object version: 32 lowercase hex characters.

    The three parts are JSON-encoded before hashing so no choice of separators can make two different objects
    collide (``a/b`` + ``c`` vs ``a`` + ``b/c``). S3 names the version of an object written while versioning was
    off either not at all or ``"null"``, depending on the API; all spellings of "no version" give the same id.

    ``profile``: an analysis an operator asked for with a profile of their choice (``videobatch reprocess``), a
    second item of the same object version; its profile is part of its identity (a fourth part, so the ids of the
    items ingest makes, named by their key's profile, stay what they always were).
    """
    version = None if version_id in (None, "", "null") else version_id
    parts: list[str | None] = [bucket, key, version] if profile is None else [bucket, key, version, profile]
    material = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:ITEM_ID_LENGTH]


class CustomId(BaseModel):
    """What a batch request's custom_id encodes: which item, which attempt, which window."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    item_id: str = Field(pattern=_ITEM_ID_PATTERN.pattern)
    attempt: int = Field(ge=0, le=999_999_999)
    window_index: int = Field(ge=0, le=999)

    def __str__(self) -> str:
        return f"{self.item_id}-a{self.attempt}-w{self.window_index}"


def custom_id_for(item_id: str, attempt: int, window_index: int) -> str:
    """``<item_id>-a<attempt>-w<window>``: at most 49 characters of ``[0-9a-z-]``, unique per request ever sent.

    The attempt is part of the id so results of an older, superseded submission can be told apart.
    """
    problems = []
    if not _ITEM_ID_PATTERN.match(item_id):
        problems.append(f"item_id {item_id!r} is not 32 lowercase hex characters")
    if not 0 <= attempt <= 999_999_999:
        problems.append(f"attempt {attempt} is outside 0..999999999")
    if not 0 <= window_index <= 999:
        problems.append(f"window_index {window_index} is outside 0..999")
    if problems:
        raise InvalidInputError("cannot build custom_id: " + "; ".join(problems))
    value = f"{item_id}-a{attempt}-w{window_index}"
    assert limits.CUSTOM_ID_PATTERN.match(value)  # guaranteed by the checks above
    return value


def parse_custom_id(value: str) -> CustomId:
    """Invert custom_id_for; a custom_id this pipeline did not write raises InvalidInputError."""
    match = _CUSTOM_ID_PATTERN.match(value)
    if match is None:
        raise InvalidInputError(f"custom_id {value!r} is not <32 hex>-a<attempt>-w<window> as written by this pipeline")
    return CustomId(item_id=match["item_id"], attempt=int(match["attempt"]), window_index=int(match["window"]))


class Window(BaseModel):
    """One analysis window of a video, in seconds from the start of the video."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    index: int = Field(ge=0)
    start_seconds: float = Field(ge=0, allow_inf_nan=False)
    end_seconds: float = Field(gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end_seconds <= self.start_seconds:
            raise ValueError(f"end_seconds {self.end_seconds} must be after start_seconds {self.start_seconds}")
        return self

    @property
    def duration_seconds(self) -> float:
        return self.end_seconds - self.start_seconds


# Failures caused by what was uploaded (the uploader fixes them: not a video, too long, under no profile, ...);
# every other code is the pipeline's or the platform's, which is what pages someone (ItemsFailedPipeline).
USER_FAILURE_CODES: Final[frozenset[str]] = frozenset(
    {
        "empty_object",
        "not_a_video_extension",
        "not_a_video_content",
        "too_large",
        "no_profile",
        "video_too_short",
        "video_too_long",
        "object_missing",
        "source_deleted",
        "result_key_too_long",
        "asset_failed",
        "video_duration_too_long",
        "video_duration_too_short",
        "video_file_broken",
        "video_corrupted",
        "unsupported_video_format",
        "video_resolution_too_low",
        "video_resolution_too_high",
        "content_policy_violation",
        "content_moderation",
        "content_moderated",
        # Not the upload's fault, but no fault to page about either: an operator chose it (cancel-batch --fail).
        "canceled_by_operator",
    }
)
FailureKind = Literal["user", "pipeline"]


class FailureReason(BaseModel):
    """Why an item ended in ``failed``: a stable machine code and a message that tells a person what to do."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    code: str = Field(min_length=1, max_length=128)
    message: str = Field(min_length=1)
    retryable: bool = False

    @property
    def kind(self) -> FailureKind:
        """``user``: the upload itself cannot be analysed; ``pipeline``: everything else (the alarm's concern)."""
        return "user" if self.code in USER_FAILURE_CODES else "pipeline"
