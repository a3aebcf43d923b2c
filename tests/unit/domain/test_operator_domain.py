"""The domain rules the operators' tools add: the operator-only transitions, the identity and result address of a
reprocess (profile pinned), the latest-result pointer's address, and day totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from videobatch.domain.items import (
    ALLOWED_TRANSITIONS,
    OPERATOR_TRANSITIONS,
    TERMINAL_STATES,
    FailureReason,
    ItemState,
    check_operator_transition,
    check_transition,
    item_id_for,
)
from videobatch.domain.outcomes import DayTotals, Outcome, ResultUsage
from videobatch.domain.records import ItemRecord, UploadedObject
from videobatch.domain.results import MAX_S3_KEY_BYTES, latest_pointer_key, result_key
from videobatch.errors import InvalidInputError, InvalidTransitionError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_done_and_failed_stay_terminal_for_the_pipeline() -> None:
    assert {ItemState.DONE, ItemState.FAILED} == TERMINAL_STATES
    for target in ItemState:
        with pytest.raises(InvalidTransitionError):
            check_transition(ItemState.FAILED, target)
        with pytest.raises(InvalidTransitionError):
            check_transition(ItemState.DONE, target)


def test_the_operator_moves_are_exactly_failed_to_queued_or_registered() -> None:
    assert {ItemState.FAILED: frozenset({ItemState.QUEUED, ItemState.REGISTERED})} == OPERATOR_TRANSITIONS
    check_operator_transition(ItemState.FAILED, ItemState.QUEUED)
    check_operator_transition(ItemState.FAILED, ItemState.REGISTERED)
    for source in ItemState:
        for target in ItemState:
            if target in OPERATOR_TRANSITIONS.get(source, frozenset()):
                assert target not in ALLOWED_TRANSITIONS[source]  # never a pipeline move as well
                continue
            with pytest.raises(InvalidTransitionError):
                check_operator_transition(source, target)


def test_a_pinned_profile_is_part_of_the_identity_and_the_default_ids_stay() -> None:
    plain = item_id_for("b", "k.mp4", "v1")
    assert plain == item_id_for("b", "k.mp4", "v1", None)
    assert item_id_for("b", "k.mp4", "v1", "chapters") not in {plain, item_id_for("b", "k.mp4", "v1", "summary")}
    upload = UploadedObject(bucket="b", key="k.mp4", version_id="v1", size_bytes=1, pinned_profile="chapters")
    item = ItemRecord.registered(upload, profile_name="chapters", analysis_mode="general", upload_method="url", now=T0)
    assert (item.item_id, item.profile_pinned, item.result_profile) == (
        item_id_for("b", "k.mp4", "v1", "chapters"),
        True,
        "chapters",
    )
    normal = ItemRecord.registered(
        UploadedObject(bucket="b", key="k.mp4", version_id="v1", size_bytes=1),
        profile_name="summary",
        analysis_mode="general",
        upload_method="url",
        now=T0,
    )
    assert (normal.item_id, normal.result_profile) == (plain, None)


def test_result_addresses_carry_a_pinned_profile_and_stay_bounded() -> None:
    assert result_key("results/", "a/b.mp4", "v1") == "results/a/b.mp4.version-v1.json"
    assert result_key("results/", "a/b.mp4", "v1", "chapters") == "results/a/b.mp4.version-v1.profile-chapters.json"
    assert result_key("results/", "a/b.mp4", None, "chapters") == "results/a/b.mp4.profile-chapters.json"
    assert latest_pointer_key("results/", "a/b.mp4") == "results/latest/a/b.mp4.json"
    assert latest_pointer_key("results/", "a/b.mp4", "chapters") == "results/latest/a/b.mp4.profile-chapters.json"
    long = "x/" + "é" * 505  # 1,012 bytes: fits S3 as a key, not mirrored under a prefix
    bounded = latest_pointer_key("results/", long, "chapters")
    assert bounded.startswith("results/latest/_long-keys/")
    assert bounded.endswith(".profile-chapters.json")
    assert len(bounded.encode()) <= MAX_S3_KEY_BYTES
    assert result_key("results/", long, "v1", "chapters").startswith("results/_long-keys/")


def test_an_upload_refused_at_ingest_cannot_be_reopened() -> None:
    upload = UploadedObject(bucket="b", key="k.mp4", version_id="v1", size_bytes=1)
    failed = ItemRecord.rejected(upload, FailureReason(code="not_a_video_content", message="no"), now=T0)
    with pytest.raises(InvalidInputError, match="refused at ingest"):
        failed.reopen_registered("again", now=T0)  # no profile, no upload method: uploading again is the fix


def test_day_totals_of_outcomes() -> None:
    usage = ResultUsage(content_seconds=7200.5, windows=2, input_tokens=10, output_tokens=3)
    done = Outcome(item_id="a" * 32, bucket="b", key="k", state="done", finished_at=T0, usage=usage)
    failed = done.model_copy(
        update={"item_id": "c" * 32, "state": "failed", "usage": None, "failure_kind": "user", "failure_code": "x"}
    )
    later = done.model_copy(update={"item_id": "d" * 32, "finished_at": T0 + timedelta(minutes=17)})
    totals = DayTotals.of_outcomes(T0.date(), [done, failed, later])
    assert (totals.done, totals.failed, totals.failed_user, totals.failed_pipeline) == (2, 1, 1, 0)
    assert (totals.content_seconds, totals.windows, totals.input_tokens, totals.output_tokens) == (14401.0, 4, 20, 6)
    assert (totals.done_slots, totals.failed_slots) == ({0: 1, 3: 1}, {0: 1})
