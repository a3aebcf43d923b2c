"""What the pipeline stores about items, batches, claims and leases (persisted by ``adapters.dynamodb``).

Every record carries a ``version``: the repository writes ``version + 1`` on each save, conditional on the version
the caller read, so two writers racing on one record can never both win (the loser gets StaleStateError).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from videobatch.domain.items import TERMINAL_STATES, FailureReason, ItemState, Window, custom_id_for
from videobatch.twelvelabs.limits import AnalysisMode

ASSET_QUEUE: Final = "Q#asset_processing"
REGISTERED_QUEUE: Final = "Q#registered"
CLAIMED_QUEUE: Final = "Q#claimed"
SUBMITTED_QUEUE: Final = "Q#submitted"
OPEN_BATCHES_QUEUE: Final = "Q#batch_open"
PENDING_CLAIMS_QUEUE: Final = "Q#claim_pending"


def queued_queue(analysis_mode: str) -> str:
    return f"Q#queued#{analysis_mode}"


def sort_stamp(moment: datetime) -> str:
    """A fixed-width UTC timestamp that sorts lexicographically in time order (ISO with variable fractions does not)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ItemRecord(BaseModel):
    """One uploaded object version on its way through the pipeline (DynamoDB ``ITEM#{item_id}``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def queue_key(self) -> tuple[str, str] | None:
        """(gsi1pk, gsi1sk) of the work queue the item sits in; None for terminal items (sparse index)."""
        stamp = {
            ItemState.REGISTERED: (REGISTERED_QUEUE, self.created_at),
            ItemState.ASSET_PROCESSING: (ASSET_QUEUE, self.asset_created_at or self.updated_at),
            ItemState.QUEUED: (queued_queue(self.analysis_mode), self.eligible_at or self.queued_at),
            ItemState.CLAIMED: (CLAIMED_QUEUE, self.claimed_at),
            ItemState.SUBMITTED: (SUBMITTED_QUEUE, self.submitted_at),
        }.get(self.state)
        if stamp is None:
            return None
        queue, moment = stamp
        return queue, f"{sort_stamp(moment or self.updated_at)}#{self.item_id}"

    def custom_ids(self) -> dict[str, Window]:
        """custom_id -> window for the current attempt."""
        return {custom_id_for(self.item_id, self.attempts, window.index): window for window in self.windows}

    def submitted_to(
        self, batch_id: str, task_ids: Mapping[str, str], *, now: datetime, note: str | None = None
    ) -> ItemRecord:
        """This claimed item recorded as submitted in ``batch_id``, with the task ids of its own custom_ids."""
        update: dict[str, object] = {
            "state": ItemState.SUBMITTED,
            "batch_id": batch_id,
            "task_ids": {cid: task_ids[cid] for cid in self.custom_ids() if cid in task_ids},
            "submitted_at": now,
            "updated_at": now,
        }
        if note is not None:
            update["note"] = note
        return self.model_copy(update=update)

    @property
    def counted_attempts(self) -> int:
        """Submissions that reached TwelveLabs: what max_attempts limits."""
        return max(self.attempts - self.released_attempts, 0)

    def content_seconds(self, *, windows_only: bool) -> float:
        if windows_only:
            return sum(window.duration_seconds for window in self.windows)
        return self.duration_seconds or 0.0


class BatchState(StrEnum):
    OPEN = "open"  # the API batch may still produce results for our items
    CLOSED = "closed"  # every item accounted for


class BatchRecord(BaseModel):
    """A TwelveLabs batch this pipeline created (DynamoDB ``BATCH#{batch_id}``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_id: str
    state: BatchState = BatchState.OPEN
    api_status: str
    analysis_mode: AnalysisMode
    claim_id: str
    created_at: datetime
    expires_at: datetime
    item_ids: tuple[str, ...]
    task_ids: dict[str, str]  # custom_id -> task_id
    content_seconds: float = Field(ge=0)
    version: int = Field(default=0, ge=0)
    closed_at: datetime | None = None
    succeeded_items: int = 0
    failed_items: int = 0
    requeued_items: int = 0


class ClaimState(StrEnum):
    # Items claimed, the batch-create outcome not known yet; with batch_id set: the batch exists and its
    # recording (items submitted, batch record, expiry check) is under way. Pending claims are the saga's log.
    PENDING = "pending"
    CREATED = "created"  # the batch exists and everything about it is recorded (batch_id set)
    RELEASED = "released"  # no batch: items went back to queued


class ClaimRecord(BaseModel):
    """A flush's intent to submit these items in one batch (DynamoDB ``CLAIM#{claim_id}``).

    Written before any item is claimed, so a crash or an unknown create outcome leaves a complete description for
    the reconciler: which items, with which custom_ids (to find the batch on the API), to adopt or release.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    claim_id: str
    state: ClaimState = ClaimState.PENDING
    owner: str
    analysis_mode: AnalysisMode
    created_at: datetime
    item_ids: tuple[str, ...]
    custom_ids: dict[str, str]  # custom_id -> item_id
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
