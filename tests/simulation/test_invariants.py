"""The invariant checker can fail: synthetic histories with each kind of violation are counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from videobatch.domain.items import ItemState, custom_id_for
from videobatch_tools.simulate.invariants import (
    InvariantChecker,
    ItemWrite,
    Limits,
    ObservedBatch,
    ObservedRequest,
)

T0 = datetime(2026, 1, 5, tzinfo=UTC)
ITEM = "a" * 32
OTHER = "b" * 32
S = ItemState


def checker(max_active: int = 4, max_items: int = 10, max_content_seconds: float = 7200.0) -> InvariantChecker:
    return InvariantChecker(Limits(max_active=max_active, max_items=max_items, max_content_seconds=max_content_seconds))


def create(item_id: str = ITEM, at: datetime = T0, state: ItemState = S.REGISTERED) -> ItemWrite:
    return ItemWrite(item_id, "create", None, None, 1, state, at)


def save(
    version: int, source: ItemState, target: ItemState, item_id: str = ITEM, at: datetime = T0, new: int | None = None
) -> ItemWrite:
    return ItemWrite(item_id, "save", version, source, version + 1 if new is None else new, target, at)


def request(
    item_id: str,
    attempt: int,
    window: int,
    status: str = "queued",
    seconds: float = 60.0,
    ended_hours: float | None = None,
) -> ObservedRequest:
    ended = None if ended_hours is None else T0 + timedelta(hours=ended_hours)
    return ObservedRequest(custom_id_for(item_id, attempt, window), status, seconds, ended)


def batch(batch_id: str, start_hours: float, end_hours: float | None, *requests: ObservedRequest) -> ObservedBatch:
    end = None if end_hours is None else T0 + timedelta(hours=end_hours)
    return ObservedBatch(batch_id, T0 + timedelta(hours=start_hours), end, requests)


def full_lifecycle(c: InvariantChecker, item_id: str = ITEM) -> None:
    c.record_write(create(item_id))
    for version, (source, target) in enumerate(
        [(S.REGISTERED, S.ASSET_PROCESSING), (S.ASSET_PROCESSING, S.QUEUED), (S.QUEUED, S.CLAIMED)], start=1
    ):
        c.record_write(save(version, source, target, item_id))
    c.record_write(save(4, S.CLAIMED, S.SUBMITTED, item_id))
    c.record_write(save(5, S.SUBMITTED, S.DONE, item_id))


def test_a_clean_history_has_no_violation() -> None:
    c = checker()
    c.record_upload(ITEM, T0)
    full_lifecycle(c)
    c.observe_batches([batch("b1", 0, 1, request(ITEM, 1, 0, "ready"))])
    c.check_progress(T0 + timedelta(days=10))
    c.verify_stored([(ITEM, 6, S.DONE)])
    counts = c.counts()
    assert counts["done"] == 1
    assert not c.violations


def test_a_write_based_on_an_older_version_is_a_stale_overwrite() -> None:
    c = checker()
    c.record_write(create())
    c.record_write(save(1, S.REGISTERED, S.ASSET_PROCESSING))
    c.record_write(save(2, S.ASSET_PROCESSING, S.QUEUED))
    # A writer that read version 2 (asset_processing) wins anyway and writes version 3 again.
    c.record_write(save(2, S.ASSET_PROCESSING, S.FAILED))
    assert c.counts()["stale_overwrite"] == 1


def test_a_version_gap_and_a_forbidden_transition_are_stale_overwrites() -> None:
    c = checker()
    c.record_write(create())
    c.record_write(save(1, S.REGISTERED, S.ASSET_PROCESSING, new=3))  # skipped a version
    c.record_write(create(item_id=OTHER))
    c.record_write(save(1, S.REGISTERED, S.DONE, item_id=OTHER))  # registered -> done is not allowed
    assert c.counts()["stale_overwrite"] == 2


def test_rewriting_a_terminal_item_is_a_stale_overwrite_but_a_same_state_note_is_not() -> None:
    c = checker()
    c.record_write(create())
    c.record_write(save(1, S.REGISTERED, S.REGISTERED))  # a note on a live item
    c.record_write(save(2, S.REGISTERED, S.FAILED))
    assert c.counts()["stale_overwrite"] == 0
    c.record_write(save(3, S.FAILED, S.FAILED))
    assert c.counts()["stale_overwrite"] == 1


def test_a_stored_version_nobody_wrote_is_a_stale_overwrite() -> None:
    c = checker()
    c.record_write(create())
    c.verify_stored([(ITEM, 2, S.ASSET_PROCESSING)])
    assert c.counts()["stale_overwrite"] == 1


def test_an_item_window_in_two_overlapping_active_batches_is_double_submitted() -> None:
    c = checker()
    c.observe_batches([batch("b1", 0, None, request(ITEM, 1, 0))])
    c.observe_batches([batch("b2", 2, None, request(ITEM, 2, 0))])
    assert c.counts()["double_submitted"] == 1


def test_an_item_resubmitted_after_its_batch_ended_is_not_double_submitted() -> None:
    c = checker()
    c.observe_batches([batch("b1", 0, 24, request(ITEM, 1, 0, "canceled"))])
    c.observe_batches([batch("b2", 24, None, request(ITEM, 2, 0))])
    assert c.counts()["double_submitted"] == 0


def test_a_retry_of_a_request_that_failed_inside_a_running_batch_is_not_double_submitted() -> None:
    c = checker()
    # b1 keeps running other work for hours; this item's request failed (retryably) after 1 h and is retried.
    c.observe_batches([batch("b1", 0, None, request(ITEM, 1, 0, "failed", ended_hours=1))])
    c.observe_batches([batch("b2", 2, None, request(ITEM, 2, 0))])
    assert c.counts()["double_submitted"] == 0
    # Resubmitted while the first request was still processing: both live at once.
    c.observe_batches([batch("b3", 0, None, request(OTHER, 1, 0, "processing"))])
    c.observe_batches([batch("b4", 2, None, request(OTHER, 2, 0, "failed", ended_hours=3))])
    assert c.counts()["double_submitted"] == 1


def test_an_item_analysed_to_ready_twice_is_double_submitted() -> None:
    c = checker()
    c.observe_batches([batch("b1", 0, 1, request(ITEM, 1, 0, "ready"), request(ITEM, 1, 1, "ready"))])
    c.observe_batches([batch("b2", 3, 4, request(ITEM, 2, 0, "ready"), request(ITEM, 2, 1, "ready"))])
    assert c.counts()["double_submitted"] == 1


def test_a_retry_after_a_partial_failure_is_not_analysed_twice() -> None:
    c = checker()
    c.observe_batches([batch("b1", 0, 1, request(ITEM, 1, 0, "ready"), request(ITEM, 1, 1, "failed"))])
    c.observe_batches([batch("b2", 3, 4, request(ITEM, 2, 0, "ready"), request(ITEM, 2, 1, "ready"))])
    assert c.counts()["double_submitted"] == 0


def test_too_many_active_batches_too_many_items_and_too_much_content_are_limit_violations() -> None:
    c = checker(max_active=2, max_items=2, max_content_seconds=100.0)
    c.observe_batches([batch("b1", 0, None, request(ITEM, 1, 0)), batch("b2", 1, None, request(OTHER, 1, 0))])
    assert c.counts()["limit_violation"] == 0
    c.observe_batches([batch("b3", 2, None, request("c" * 32, 1, 0))])
    c.observe_batches([batch("b4", 30, None, *(request("d" * 32, 1, w) for w in range(3)))])
    c.observe_batches([batch("b5", 31, None, request("e" * 32, 1, 0, seconds=500.0))])
    assert {v.subject.split(":")[0] for v in c.violations} == {"active", "items", "content"}
    # b3, b4 and b5 are over the active cap (b1..b3 never ended); b4 is over both the items and the content limit.
    assert c.counts()["limit_violation"] == 6


def test_an_upload_without_an_item_and_a_stuck_item_are_lost() -> None:
    c = checker()
    c.record_upload(ITEM, T0)
    c.check_progress(T0 + timedelta(hours=1))
    assert c.counts()["lost"] == 0
    c.check_progress(T0 + timedelta(hours=3))
    assert c.counts()["lost"] == 1
    c.record_write(create(item_id=OTHER))
    c.record_write(save(1, S.REGISTERED, S.REGISTERED, item_id=OTHER, at=T0 + timedelta(days=2)))  # no progress
    c.check_progress(T0 + timedelta(days=3, hours=1))
    assert c.counts()["lost"] == 2
    assert c.counts()["pending"] == 1


def queued(c: InvariantChecker, item_id: str = ITEM, at: datetime = T0) -> None:
    c.record_write(create(item_id, at=at))
    c.record_write(save(1, S.REGISTERED, S.ASSET_PROCESSING, item_id=item_id, at=at))
    c.record_write(save(2, S.ASSET_PROCESSING, S.QUEUED, item_id=item_id, at=at))


def hold_every_slot(c: InvariantChecker, max_active: int, *, until_hours: float | None) -> None:
    c.observe_batches([batch(f"held{n}", 0, until_hours, request("f" * 32, 1, n)) for n in range(max_active)])


def test_a_queued_item_waiting_while_every_slot_is_held_is_overload_not_lost() -> None:
    c = checker(max_active=2)
    hold_every_slot(c, 2, until_hours=None)
    queued(c)
    for hours in range(0, 24 * 5, 6):  # five days behind batches that never end
        c.check_progress(T0 + timedelta(hours=hours))
    assert c.counts()["lost"] == 0
    c.observe_batches([batch("held0", 0, 120, request("f" * 32, 1, 0))])  # a slot frees, nobody takes the item
    c.check_progress(T0 + timedelta(hours=121))
    c.check_progress(T0 + timedelta(hours=126, minutes=59))
    assert c.counts()["lost"] == 0  # 5 h 59 min of stall time (the last batch was created 5 days ago)
    c.check_progress(T0 + timedelta(hours=127, minutes=1))
    assert c.counts()["lost"] == 1
    assert "stalled" in c.violations[0].detail


def test_a_queued_item_with_free_slots_and_no_batch_created_is_lost_after_the_idle_bound() -> None:
    c = checker(max_active=2)
    queued(c)
    c.check_progress(T0)
    c.check_progress(T0 + timedelta(hours=5))
    assert c.counts()["lost"] == 0
    c.check_progress(T0 + timedelta(hours=6, minutes=1))
    assert c.counts()["lost"] == 1


def test_a_backlog_that_waits_days_while_batches_keep_going_out_is_not_lost() -> None:
    c = checker(max_active=2)
    queued(c)
    for minutes in range(0, 4 * 24 * 60, 30):  # four days; a small batch of others every 30 min, slots free
        at = minutes / 60
        c.observe_batches([batch(f"b{minutes}", at, at + 0.1, request("c" * 32, minutes, 0, status="ready"))])
        c.check_progress(T0 + timedelta(minutes=minutes + 10))
    assert c.counts()["lost"] == 0
    c.check_progress(T0 + timedelta(days=4, hours=7, minutes=1))  # then nothing for 7 h: 1 h grace + 6 h stall
    assert c.counts()["lost"] == 1


def test_the_idle_clock_restarts_when_a_queued_item_moves_and_comes_back() -> None:
    c = checker(max_active=2)
    queued(c)
    c.check_progress(T0)
    c.check_progress(T0 + timedelta(hours=5))
    c.record_write(save(3, S.QUEUED, S.CLAIMED, at=T0 + timedelta(hours=5)))
    c.record_write(save(4, S.CLAIMED, S.QUEUED, at=T0 + timedelta(hours=5, minutes=1)))  # a retryable rejection
    c.check_progress(T0 + timedelta(hours=10))
    assert c.counts()["lost"] == 0  # the first queueing's entry is stale; this one has waited 5 h
    c.check_progress(T0 + timedelta(hours=11, minutes=2))
    assert c.counts()["lost"] == 1


def test_a_claimed_item_is_held_to_the_wall_clock_bound_whatever_the_slots() -> None:
    c = checker(max_active=1)
    hold_every_slot(c, 1, until_hours=None)
    queued(c)
    c.record_write(save(3, S.QUEUED, S.CLAIMED))
    c.check_progress(T0 + timedelta(days=2))
    assert c.counts()["lost"] == 0
    c.check_progress(T0 + timedelta(days=3, minutes=1))
    assert c.counts()["lost"] == 1
    assert "claimed unchanged" in c.violations[0].detail


def test_a_failed_item_without_a_code_and_message_counts_as_lost() -> None:
    c = checker()
    c.record_write(create())
    c.record_write(save(1, S.REGISTERED, S.FAILED))
    assert c.counts()["lost"] == 1
    assert c.counts()["failed"] == 1


def test_the_final_line_and_the_exit_status_follow_the_counts() -> None:
    from collections import Counter

    from videobatch_tools.simulate.runner import SimulationConfig, SimulationResult

    counts = Counter({"done": 7, "failed": 2, "pending": 1})
    result = SimulationResult(SimulationConfig(seed=4, days=2), 10, counts, Counter(), 1, 1.0, 1.0)
    assert result.final_line() == (
        "simulate: seed=4 days=2 videos=10 done=7 failed=2 pending=1 lost=0 double_submitted=0 "
        "limit_violations=0 stale_overwrites=0 hostile_harm=0"
    )
    assert result.ok
    assert not result.settled
    result.counts["stale_overwrite"] = 1
    assert not result.ok
    assert "stale_overwrites=1" in result.final_line()
    result.counts["stale_overwrite"] = 0
    result.counts["hostile_harm"] = 1
    assert not result.ok
    assert result.final_line().endswith("hostile_harm=1")


def failed_write(version: int, source: ItemState, code: str, item_id: str = ITEM) -> ItemWrite:
    return ItemWrite(item_id, "save", version, source, version + 1, S.FAILED, T0, code, f"{code}: why")


def test_a_hostile_upload_settling_as_expected_counts_nothing() -> None:
    c = checker()
    c.expect(ITEM, S.DONE)
    c.expect(OTHER, S.FAILED, "result_conflict")
    full_lifecycle(c)
    c.record_write(create(OTHER))
    c.record_write(failed_write(1, S.REGISTERED, "result_conflict", OTHER))
    c.check_expected()
    assert c.counts()["hostile_harm"] == 0


def test_a_hostile_upload_failing_with_another_reason_is_harm() -> None:
    c = checker()
    c.expect(ITEM, S.FAILED, "not_a_video_extension")
    c.record_write(create(ITEM))
    c.record_write(failed_write(1, S.REGISTERED, "object_missing"))
    c.check_expected()
    assert c.counts()["hostile_harm"] == 1
    assert "object_missing" in c.violations[0].detail


def test_a_hostile_upload_expected_done_that_failed_is_harm() -> None:
    c = checker()
    c.expect(ITEM, S.DONE)
    c.record_write(create(ITEM))
    c.record_write(failed_write(1, S.REGISTERED, "result_key_too_long"))
    c.check_expected()
    assert c.counts()["hostile_harm"] == 1


def test_an_unsettled_hostile_upload_is_pending_not_harm() -> None:
    c = checker()
    c.expect(ITEM, S.DONE)
    c.record_write(create(ITEM))
    c.check_expected()
    assert c.counts()["hostile_harm"] == 0
    assert c.counts()["pending"] == 1


def test_an_item_that_must_not_exist_is_harm_when_written() -> None:
    c = checker()
    c.forbid(OTHER)
    full_lifecycle(c)
    assert c.counts()["hostile_harm"] == 0
    c.record_write(create(OTHER))
    assert c.counts()["hostile_harm"] == 1


def test_a_hostile_upload_failed_by_the_runs_own_injected_fault_is_not_harm() -> None:
    c = checker()
    c.expect(ITEM, S.DONE, tolerated=frozenset({"validation_error"}))
    c.expect(OTHER, S.DONE, tolerated=frozenset({"validation_error"}))
    c.record_write(create(ITEM))
    c.record_write(failed_write(1, S.REGISTERED, "validation_error"))
    c.record_write(create(OTHER))
    c.record_write(failed_write(1, S.REGISTERED, "result_key_too_long", OTHER))
    c.check_expected()
    assert [v.subject for v in c.violations] == [OTHER]


def test_quiet_only_once_every_upload_is_an_item_and_every_item_is_terminal() -> None:
    c = checker()
    assert c.quiet()  # nothing uploaded yet
    c.record_upload(ITEM, T0)
    assert not c.quiet()  # uploaded, no item yet
    c.record_write(create())
    assert not c.quiet()  # an item still on its way
    c.record_write(save(1, S.REGISTERED, S.ASSET_PROCESSING))
    assert not c.quiet()
    c.record_write(ItemWrite(ITEM, "save", 2, S.ASSET_PROCESSING, 3, S.FAILED, T0, "not_a_video", "refused"))
    assert c.quiet()
    assert not c.violations
    c.record_upload(OTHER, T0 + timedelta(hours=1))
    assert not c.quiet()
