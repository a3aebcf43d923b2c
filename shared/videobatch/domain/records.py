"""What the pipeline stores about items, batches and claims (persisted by ``adapters.dynamodb``/``adapters.memory``).

Every record carries a ``version``: the repository writes ``version + 1`` on each save, conditional on the version
the caller read, so two writers racing on one record can never both win (the loser gets StaleStateError).

An item changes state only through its transition methods (``claim``, ``submit``, ``release``, ``requeue``,
``finish``, ``fail``, ...; the diagram is in ``domain.items``): each checks the move against the lifecycle and sets or
clears exactly the fields of the new state, so no caller assembles a state change field by field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any, Final, Self, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from videobatch.domain.items import (
    TERMINAL_STATES,
    FailureReason,
    ItemState,
    Window,
    check_operator_transition,
    check_transition,
    custom_id_for,
    item_id_for,
)
from videobatch.domain.packing import ContentCounting, content_seconds
from videobatch.domain.uploads import MultipartUploadSession
from videobatch.errors import InvalidInputError
from videobatch.twelvelabs.limits import AnalysisMode

NOTE_LIMIT: Final = 1000

# Work queues (the sparse index gsi1). States that follow one another without anyone listing them apart share a
# queue and its key, so the move between them is no index write: registered and asset_processing wait in INTAKE by
# their creation, claimed and submitted in INFLIGHT by their claim. Readers filter by state.
INTAKE_QUEUE: Final = "Q#intake"
INFLIGHT_QUEUE: Final = "Q#inflight"
OPEN_BATCHES_QUEUE: Final = "Q#batch_open"
PENDING_CLAIMS_QUEUE: Final = "Q#claim_pending"


def queued_queue(analysis_mode: str) -> str:
    return f"Q#queued#{analysis_mode}"


def sort_stamp(moment: datetime) -> str:
    """A fixed-width UTC timestamp that sorts lexicographically in time order (ISO with variable fractions does not)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class UploadIdentity(TypedDict):
    item_id: str
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size_bytes: int


class UploadedObject(BaseModel):
    """The S3 object version an item stands for; its id follows from bucket, key and version."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size_bytes: int = Field(ge=0)
    # Set for an operator's reprocess: the profile is chosen, not derived from the key, and part of the item id.
    pinned_profile: str | None = None

    @property
    def item_id(self) -> str:
        return item_id_for(self.bucket, self.key, self.version_id, self.pinned_profile)

    def identity(self) -> UploadIdentity:
        return UploadIdentity(
            item_id=self.item_id,
            bucket=self.bucket,
            key=self.key,
            version_id=self.version_id,
            etag=self.etag,
            size_bytes=self.size_bytes,
        )


class ItemRecord(BaseModel):
    """One uploaded object version on its way through the pipeline (DynamoDB ``ITEM#{item_id}``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    item_id: str
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size_bytes: int = Field(ge=0)
    profile_name: str | None = None  # None only for uploads rejected before a profile applied
    analysis_mode: AnalysisMode = "general"
    state: ItemState
    version: int = Field(default=0, ge=0)  # 0: never stored
    created_at: datetime
    updated_at: datetime
    attempts: int = Field(default=0, ge=0)  # batch submissions so far; part of every custom_id
    # Attempt numbers spent on claims the reconciler released without a batch. They stay spent (a custom_id is
    # never reused, so a late batch of a released claim can never pass for a newer one) but do not count towards
    # max_attempts: nothing was analysed.
    released_attempts: int = Field(default=0, ge=0)
    # Creates refused with this video's request alone in them (an unattributed refusal bisected down to it): it is
    # packed alone from then on, and fails request_rejected once max_attempts such refusals are reached.
    refusals_alone: int = Field(default=0, ge=0)
    upload_method: str | None = None
    asset_id: str | None = None
    asset_created_at: datetime | None = None
    duration_seconds: float | None = None
    windows: tuple[Window, ...] = ()
    queued_at: datetime | None = None  # first time the item became queued: max_wait counts from here
    eligible_at: datetime | None = None  # not to be packed before this (requeue backoff)
    claim_id: str | None = None
    claimed_at: datetime | None = None
    batch_id: str | None = None
    submitted_at: datetime | None = None
    task_ids: dict[str, str] = Field(default_factory=dict)  # custom_id -> task_id of the current submission
    result_key: str | None = None
    failure: FailureReason | None = None
    finished_at: datetime | None = None
    note: str | None = None  # why a repair or a requeue last moved the item, for the person looking at it
    # Attempt numbers an operator forgave (videobatch requeue --reset-attempts): spent like released ones (a
    # custom_id is never reused) and, like them, not counted towards max_attempts.
    forgiven_attempts: int = Field(default=0, ge=0)
    # True for an operator's reprocess (videobatch reprocess): profile_name was chosen, not derived from the key;
    # it is part of the item id (item_id_for(..., profile)) and of the result's address (domain.results).
    profile_pinned: bool = False
    # When S3 says the object version was created (the event's time): which version of a key is the latest.
    uploaded_at: datetime | None = None
    # A multipart upload under way (registered only): what the next ingest invocation continues from.
    upload_session: MultipartUploadSession | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def queue_key(self) -> tuple[str, str] | None:
        """(gsi1pk, gsi1sk) of the work queue the item sits in; None for terminal items (sparse index)."""
        stamp = {
            ItemState.REGISTERED: (INTAKE_QUEUE, self.created_at),
            ItemState.ASSET_PROCESSING: (INTAKE_QUEUE, self.created_at),
            ItemState.QUEUED: (queued_queue(self.analysis_mode), self.eligible_at or self.queued_at),
            ItemState.CLAIMED: (INFLIGHT_QUEUE, self.claimed_at),
            ItemState.SUBMITTED: (INFLIGHT_QUEUE, self.claimed_at),
        }.get(self.state)
        if stamp is None:
            return None
        queue, moment = stamp
        return queue, f"{sort_stamp(moment or self.updated_at)}#{self.item_id}"

    def custom_ids(self, *, attempt: int | None = None) -> dict[str, Window]:
        """custom_id -> window for the current attempt (or for ``attempt``)."""
        number = self.attempts if attempt is None else attempt
        return {custom_id_for(self.item_id, number, window.index): window for window in self.windows}

    @property
    def next_attempt(self) -> int:
        """The attempt a claim of this item sends (a claimed item carries its own already)."""
        return self.attempts if self.state is ItemState.CLAIMED else self.attempts + 1

    # --- construction -------------------------------------------------------------------------------------

    @classmethod
    def registered(
        cls,
        upload: UploadedObject,
        *,
        profile_name: str,
        analysis_mode: AnalysisMode,
        upload_method: str | None,
        now: datetime,
        uploaded_at: datetime | None = None,
    ) -> ItemRecord:
        """A new upload about to get its TwelveLabs asset."""
        return cls(
            uploaded_at=uploaded_at,
            **upload.identity(),
            profile_name=profile_name,
            analysis_mode=analysis_mode,
            state=ItemState.REGISTERED,
            created_at=now,
            updated_at=now,
            upload_method=upload_method,
            profile_pinned=upload.pinned_profile is not None,
        )

    @classmethod
    def rejected(cls, upload: UploadedObject, failure: FailureReason, *, now: datetime) -> ItemRecord:
        """An upload that cannot be analysed, born ``failed`` so its reason can be looked up like any other."""
        return cls(
            **upload.identity(),
            profile_name=upload.pinned_profile,
            state=ItemState.FAILED,
            created_at=now,
            updated_at=now,
            failure=failure,
            finished_at=now,
            profile_pinned=upload.pinned_profile is not None,
        )

    # --- transitions (one per arrow of the lifecycle) --------------------------------------------------------

    def _move(self, target: ItemState, now: datetime, **fields: Any) -> ItemRecord:
        check_transition(self.state, target)
        if isinstance(fields.get("note"), str):
            fields["note"] = fields["note"][:NOTE_LIMIT]
        return self.model_copy(update={"state": target, "updated_at": now, **fields})

    def upload_progressed(self, session: MultipartUploadSession, *, now: datetime) -> ItemRecord:
        """registered, still: its multipart upload started, confirmed more chunks or was restarted (no move; the
        stores allow this one same-state save, ``domain.items.check_save``)."""
        if self.state is not ItemState.REGISTERED:
            raise InvalidInputError(f"item {self.item_id} is {self.state.value}: only a registered item uploads")
        return self.model_copy(update={"upload_session": session, "updated_at": now})

    def asset_created(self, asset_id: str, *, now: datetime) -> ItemRecord:
        """registered -> asset_processing: TwelveLabs has the video and is processing it (an upload session, done
        with, is dropped)."""
        return self._move(ItemState.ASSET_PROCESSING, now, asset_id=asset_id, asset_created_at=now, upload_session=None)

    def asset_ready(self, duration_seconds: float, windows: Sequence[Window], *, now: datetime) -> ItemRecord:
        """asset_processing -> queued: the asset is ready and the analysis windows are planned."""
        return self._move(
            ItemState.QUEUED,
            now,
            duration_seconds=duration_seconds,
            windows=tuple(windows),
            queued_at=now,
            eligible_at=now,
        )

    def claim(self, claim_id: str, *, now: datetime) -> ItemRecord:
        """queued -> claimed by a flush: one more attempt, which the custom_ids of this submission carry."""
        return self._move(ItemState.CLAIMED, now, claim_id=claim_id, claimed_at=now, attempts=self.attempts + 1)

    def submit(
        self, batch_id: str, task_ids: Mapping[str, str], *, now: datetime, note: str | None = None
    ) -> ItemRecord:
        """claimed -> submitted in ``batch_id``, with the task ids of its own custom_ids."""
        fields: dict[str, Any] = {
            "batch_id": batch_id,
            "task_ids": {cid: task_ids[cid] for cid in self.custom_ids() if cid in task_ids},
            "submitted_at": now,
        }
        if note is not None:
            fields["note"] = note
        return self._move(ItemState.SUBMITTED, now, **fields)

    def release(self, note: str, *, now: datetime, eligible_at: datetime | None = None) -> ItemRecord:
        """claimed -> queued, no batch was made: back in its old place (or at ``eligible_at``). The attempt number
        stays spent (a custom_id is never reused) but does not count towards max_attempts."""
        return self._move(
            ItemState.QUEUED,
            now,
            released_attempts=self.released_attempts + 1,
            claim_id=None,
            claimed_at=None,
            note=note,
            eligible_at=eligible_at or self.eligible_at,
        )

    def refused_alone(self, note: str, *, now: datetime, eligible_at: datetime) -> ItemRecord:
        """claimed -> queued after a create holding only this video was refused: a release that counts it."""
        return self.release(note, now=now, eligible_at=eligible_at).model_copy(
            update={"refusals_alone": self.refusals_alone + 1}
        )

    def requeue(self, note: str, *, now: datetime, eligible_at: datetime) -> ItemRecord:
        """submitted -> queued for another attempt (the batch canceled, expired or failed the item retryably)."""
        return self._move(
            ItemState.QUEUED,
            now,
            eligible_at=eligible_at,
            batch_id=None,
            task_ids={},
            claim_id=None,
            claimed_at=None,
            submitted_at=None,
            note=note,
        )

    def finish(self, result_key: str, *, now: datetime) -> ItemRecord:
        """submitted -> done: every window is ready and the result file is in S3."""
        return self._move(ItemState.DONE, now, result_key=result_key, finished_at=now)

    def fail(self, failure: FailureReason, *, now: datetime) -> ItemRecord:
        """Any live state -> failed, with the reason (the batch and task ids stay for the person looking)."""
        return self._move(ItemState.FAILED, now, failure=failure, finished_at=now)

    # --- the operator's moves (domain.items.OPERATOR_TRANSITIONS; stored only by ItemStore.reopen) -------------

    def reopen_queued(self, note: str, *, now: datetime, reset_attempts: bool = False) -> ItemRecord:
        """failed -> queued, an operator's requeue: its asset and windows are still good, so it waits for a batch
        again (the wait counted from now). The attempt counter is never lowered (a custom_id is never reused);
        ``reset_attempts`` forgives the counted ones instead."""
        if self.asset_id is None or not self.windows or self.duration_seconds is None:
            raise InvalidInputError(f"item {self.item_id} has no asset and windows to queue: reopen it as registered")
        return self._reopen(ItemState.QUEUED, note, now, reset_attempts, queued_at=now, eligible_at=now)

    def reopen_registered(self, note: str, *, now: datetime, reset_attempts: bool = False) -> ItemRecord:
        """failed -> registered, an operator's requeue of an item without a usable asset (never created, failed or
        deleted): ingest creates a new one when the upload's event is delivered again."""
        if self.profile_name is None or self.upload_method is None:
            raise InvalidInputError(f"item {self.item_id} was refused at ingest ({self.failure}): upload it again")
        return self._reopen(
            ItemState.REGISTERED,
            note,
            now,
            reset_attempts,
            created_at=now,  # the sweeper's ingest timeout counts from here, not from the first upload
            asset_id=None,
            asset_created_at=None,
            upload_session=None,
            duration_seconds=None,
            windows=(),
            queued_at=None,
            eligible_at=None,
        )

    def _reopen(self, target: ItemState, note: str, now: datetime, reset_attempts: bool, **fields: Any) -> ItemRecord:
        check_operator_transition(self.state, target)
        forgiven = self.attempts - self.released_attempts if reset_attempts else self.forgiven_attempts
        cleared: dict[str, Any] = {
            "failure": None,
            "finished_at": None,
            "result_key": None,
            "claim_id": None,
            "claimed_at": None,
            "batch_id": None,
            "submitted_at": None,
            "task_ids": {},
        }
        update = {**cleared, **fields, "forgiven_attempts": max(forgiven, 0), "note": note[:NOTE_LIMIT]}
        return self.model_copy(update={"state": target, "updated_at": now, **update})

    @property
    def result_profile(self) -> str | None:
        """The profile that is part of the result's address: only a pinned one (reprocess) is."""
        return self.profile_name if self.profile_pinned else None

    @property
    def counted_attempts(self) -> int:
        """Submissions that reached TwelveLabs: what max_attempts limits."""
        return max(self.attempts - self.released_attempts - self.forgiven_attempts, 0)

    def content_seconds(self, counting: ContentCounting) -> float:
        """What this video counts towards a batch's content limit (``domain.packing.content_seconds``)."""
        return content_seconds(self.duration_seconds or 0.0, self.windows, counting)


class BatchState(StrEnum):
    OPEN = "open"  # the API batch may still produce results for our items
    CLOSED = "closed"  # every item accounted for


class BatchRecord(BaseModel):
    """A TwelveLabs batch this pipeline created: the facts, written once (DynamoDB ``BATCH#{batch_id}`` / ``BATCH``).

    What a check changes lives apart in ``BatchProgress``, so polling never rewrites (or reads) the item list of a
    1,000-item batch just to note that nothing moved.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    batch_id: str
    analysis_mode: AnalysisMode
    claim_id: str
    created_at: datetime
    expires_at: datetime
    item_ids: tuple[str, ...]  # the order BatchProgress.settled refers to
    windows: tuple[int, ...]  # per item: its requests in the batch
    attempts: tuple[int, ...]  # per item: the attempt its requests carry
    content_seconds: float = Field(ge=0)
    version: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _aligned(self) -> Self:
        if not len(self.item_ids) == len(self.attempts) == len(self.windows):
            raise ValueError("item_ids, attempts and windows must have one entry per item")
        return self

    @property
    def request_count(self) -> int:
        return sum(self.windows)

    @cached_property
    def positions(self) -> dict[str, tuple[int, int, int]]:
        """custom_id -> (item index, attempt, window count) of every request of the batch."""
        return {
            custom_id_for(item_id, attempt, window): (index, attempt, count)
            for index, (item_id, attempt, count) in enumerate(
                zip(self.item_ids, self.attempts, self.windows, strict=True)
            )
            for window in range(count)
        }

    def progress(self, api_status: str) -> BatchProgress:
        """The progress record a new batch starts with."""
        return BatchProgress(
            batch_id=self.batch_id,
            api_status=api_status,
            analysis_mode=self.analysis_mode,
            created_at=self.created_at,
            expires_at=self.expires_at,
            item_count=len(self.item_ids),
            request_count=self.request_count,
        )


class BatchProgress(BaseModel):
    """What checking a batch changes (DynamoDB ``BATCH#{batch_id}`` / ``PROGRESS``, a few hundred bytes); while the
    batch is open it is the batch's entry in the open-batches index.

    ``settled`` is a bitmap over ``BatchRecord.item_ids``: bit *i* set once item *i* is no longer submitted to this
    batch (done, failed, requeued, or found moved on). A check reads only items whose results became final and
    whose bit is clear, and the batch closes when every bit is set and the API batch is terminal.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    batch_id: str
    state: BatchState = BatchState.OPEN
    api_status: str
    analysis_mode: AnalysisMode
    created_at: datetime
    expires_at: datetime
    item_count: int = Field(ge=0)
    request_count: int = Field(ge=0)
    finished_seen: int = Field(default=0, ge=0)  # the API's ready + failed + canceled at the last change
    settled: str = ""  # hex of the bitmap, bit i = byte i // 8, mask 1 << (i % 8)
    version: int = Field(default=0, ge=0)
    closed_at: datetime | None = None
    succeeded_items: int = 0
    failed_items: int = 0
    requeued_items: int = 0

    def is_settled(self, index: int) -> bool:
        raw = bytes.fromhex(self.settled)
        return index // 8 < len(raw) and bool(raw[index // 8] & (1 << (index % 8)))

    @property
    def settled_count(self) -> int:
        return sum(bin(byte).count("1") for byte in bytes.fromhex(self.settled))

    @property
    def all_settled(self) -> bool:
        return self.settled_count >= self.item_count

    def observed(
        self,
        api_status: str,
        finished: int,
        *,
        settled: Iterable[int] = (),
        succeeded: int = 0,
        failed: int = 0,
        requeued: int = 0,
    ) -> BatchProgress:
        """What a check saw (the API's status and finished count) and what it settled (item indexes, counts)."""
        raw = bytearray(bytes.fromhex(self.settled).ljust((self.item_count + 7) // 8, b"\0"))
        for index in settled:
            raw[index // 8] |= 1 << (index % 8)
        return self.model_copy(
            update={
                "api_status": api_status,
                "finished_seen": finished,
                "settled": raw.hex(),
                "succeeded_items": self.succeeded_items + succeeded,
                "failed_items": self.failed_items + failed,
                "requeued_items": self.requeued_items + requeued,
            }
        )

    def closed(self, *, now: datetime) -> BatchProgress:
        """open -> closed: the API batch is terminal and none of its items is still submitted to it."""
        return self.model_copy(update={"state": BatchState.CLOSED, "closed_at": now})

    def reopened(self) -> BatchProgress:
        """closed -> open, every bit cleared: an item turned out to be still submitted to it (a race), so the
        checker must look at all of them again."""
        return self.model_copy(update={"state": BatchState.OPEN, "closed_at": None, "settled": ""})


class ClaimState(StrEnum):
    # Items claimed, the batch-create outcome not known yet; with batch_id set: the batch exists and its
    # recording (items submitted, batch record, expiry check) is under way. Pending claims are the saga's log.
    PENDING = "pending"
    CREATED = "created"  # the batch exists and everything about it is recorded (batch_id set)
    RELEASED = "released"  # no batch: items went back to queued


class ClaimRecord(BaseModel):
    """A flush's intent to submit these items in one batch (DynamoDB ``CLAIM#{claim_id}``).

    Written before any item is claimed, so a crash or an unknown create outcome leaves a complete description for
    the reconciler: which items, with which custom_ids (to find the batch on the API), to adopt or release. The
    custom_ids are not stored: each item's attempt and window count determine them (a third of the record's size).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    claim_id: str
    state: ClaimState = ClaimState.PENDING
    owner: str
    analysis_mode: AnalysisMode
    created_at: datetime
    item_ids: tuple[str, ...]
    attempts: tuple[int, ...]  # per item: the attempt number its custom_ids carry
    windows: tuple[int, ...]  # per item: its requests (analysis windows)
    content_seconds: float = Field(ge=0)
    batch_id: str | None = None
    note: str | None = None  # why it was released or left pending
    version: int = Field(default=0, ge=0)
    # The owner sends the create only before this moment (its lease end): after it, plus a settle margin, the
    # reconciler may conclude from the API's batch list that no batch was created. None: created_at + lease.
    create_deadline_at: datetime | None = None
    # How the flusher planned the batch, so whoever finishes the saga can publish the same Batch Submitted.
    trigger: str | None = None
    fill_ratio: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _aligned(self) -> Self:
        if not len(self.item_ids) == len(self.attempts) == len(self.windows):
            raise ValueError("item_ids, attempts and windows must have one entry per item")
        return self

    @cached_property
    def custom_ids(self) -> dict[str, str]:
        """custom_id -> item_id of every request this claim sends."""
        return {
            custom_id_for(item_id, attempt, window): item_id
            for item_id, attempt, count in zip(self.item_ids, self.attempts, self.windows, strict=True)
            for window in range(count)
        }

    def narrowed(self, held: Sequence[str], content_seconds: float) -> ClaimRecord:
        """The claim limited to the items ``held`` (claim order kept)."""
        keep = [i for i, item_id in enumerate(self.item_ids) if item_id in set(held)]
        return self.model_copy(
            update={
                "item_ids": tuple(self.item_ids[i] for i in keep),
                "attempts": tuple(self.attempts[i] for i in keep),
                "windows": tuple(self.windows[i] for i in keep),
                "content_seconds": content_seconds,
            }
        )

    def noting_batch(self, batch_id: str) -> ClaimRecord:
        """Saga step 4: still pending, but the batch exists and its recording is under way."""
        return self.model_copy(update={"batch_id": batch_id, "note": f"batch {batch_id} created; recording"})

    def recorded(self) -> ClaimRecord:
        """pending -> created: everything about its batch is recorded."""
        return self.model_copy(update={"state": ClaimState.CREATED, "note": f"batch {self.batch_id} recorded"})

    def released(self, note: str) -> ClaimRecord:
        """pending -> released: no batch holds its items, which went back to the queue."""
        return self.model_copy(update={"state": ClaimState.RELEASED, "note": note[:NOTE_LIMIT]})

    def noted(self, note: str) -> ClaimRecord:
        """Still pending, with why (e.g. the create's outcome is unknown)."""
        return self.model_copy(update={"note": note[:NOTE_LIMIT]})
