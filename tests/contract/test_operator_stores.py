"""The operators' ports, the same rules on DynamoDB (moto) and in memory: the operator's reopen of failed items,
the outcome ledger (day totals, 5-minute slots, the journal), the control record and the latest-result pointers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from videobatch.domain.control import PipelineControl
from videobatch.domain.items import FailureReason, ItemState
from videobatch.domain.outcomes import Outcome, ResultUsage, slot_of, throughput
from videobatch.domain.records import ItemRecord, queued_queue
from videobatch.errors import InvalidInputError, InvalidTransitionError, StaleStateError

from .conftest import BUCKET, Backend
from .test_stores import T0, queued_at, registered

FAILURE = FailureReason(code="max_attempts_exceeded", message="gave up after 3 attempts")


def failed_from_queue(backend: Backend, n: int) -> ItemRecord:
    item = queued_at(backend, n, T0)
    claimed = backend.items.save(item.claim("c1", now=T0), item)
    submitted = backend.items.save(claimed.submit("b1", {}, now=T0), claimed)
    return backend.items.save(submitted.fail(FAILURE, now=T0), submitted)


# --- reopen: the operator's transitions ------------------------------------------------------------------------


def test_save_refuses_the_operators_moves_and_reopen_stores_them(backend: Backend) -> None:
    failed = failed_from_queue(backend, 0)
    reopened = failed.reopen_queued("requeued by ops", now=T0 + timedelta(hours=1))
    with pytest.raises(InvalidTransitionError, match="failed -> queued"):
        backend.items.save(reopened, failed)
    stored = backend.items.reopen(reopened, failed)
    assert (stored.state, stored.version) == (ItemState.QUEUED, failed.version + 1)
    assert (stored.failure, stored.batch_id, stored.finished_at, stored.task_ids) == (None, None, None, {})
    assert backend.items.get(failed.item_id) == stored
    # Back in the queue, in the place of its requeue time, and the flusher's next claim uses a new attempt number.
    assert [item.item_id for item in backend.items.iter_queue(queued_queue("general"))] == [failed.item_id]
    assert stored.custom_ids(attempt=stored.next_attempt) != failed.custom_ids()


def test_reopen_refuses_every_other_move(backend: Backend) -> None:
    item = queued_at(backend, 0, T0)
    with pytest.raises(InvalidTransitionError):
        backend.items.reopen(item.claim("c1", now=T0), item)  # a pipeline move is save's, not reopen's
    claimed = backend.items.save(item.claim("c1", now=T0), item)
    submitted = backend.items.save(claimed.submit("b1", {}, now=T0), claimed)
    done = backend.items.save(submitted.finish("results/x.json", now=T0), submitted)
    with pytest.raises(InvalidTransitionError, match="done -> queued"):
        backend.items.reopen(done.model_copy(update={"state": ItemState.QUEUED}), done)
    assert backend.items.get(done.item_id) == done


def test_a_stale_reopen_loses(backend: Backend) -> None:
    failed = failed_from_queue(backend, 0)
    first = backend.items.reopen(failed.reopen_queued("one", now=T0), failed)
    with pytest.raises(StaleStateError):
        backend.items.reopen(failed.reopen_queued("two", now=T0), failed)
    assert backend.items.get(failed.item_id) == first


def test_reopen_to_registered_clears_the_asset_and_enters_the_registered_queue(backend: Backend) -> None:
    stored, _ = backend.items.create(registered(3))
    processing = backend.items.save(stored.asset_created("as3", now=T0), stored)
    timed_out = processing.fail(FailureReason(code="asset_timeout", message="slow"), now=T0)
    failed = backend.items.save(timed_out, processing)
    later = T0 + timedelta(days=2)
    with pytest.raises(InvalidInputError, match="no asset and windows"):
        failed.reopen_queued("x", now=later)
    reopened = backend.items.reopen(failed.reopen_registered("new asset", now=later, reset_attempts=True), failed)
    assert (reopened.state, reopened.asset_id, reopened.created_at) == (ItemState.REGISTERED, None, later)
    # The sweeper's ingest timeout counts from the requeue, not from the first upload two days ago.
    assert list(backend.items.iter_queue("Q#registered", until=later - timedelta(seconds=1))) == []


def test_reset_attempts_forgives_them_without_reusing_custom_ids(backend: Backend) -> None:
    failed = failed_from_queue(backend, 0)
    assert failed.counted_attempts == 1
    kept = failed.reopen_queued("keep", now=T0)
    reset = failed.reopen_queued("reset", now=T0, reset_attempts=True)
    assert (kept.counted_attempts, reset.counted_attempts) == (1, 0)
    assert reset.attempts == failed.attempts  # the next claim is attempt 2: its custom_ids were never sent
    stored = backend.items.reopen(reset, failed)
    assert backend.items.get(stored.item_id).forgiven_attempts == 1  # type: ignore[union-attr]


# --- the outcome ledger ----------------------------------------------------------------------------------------


def outcome(n: int, state: str, at: datetime, **changes: object) -> Outcome:
    base = Outcome(
        item_id=f"{n:032x}",
        bucket=BUCKET,
        key=f"videos/{n}.mp4",
        state=state,  # type: ignore[arg-type]
        finished_at=at,
        failure_code="max_attempts_exceeded" if state == "failed" else None,
        failure_kind="pipeline" if state == "failed" else None,
        usage=ResultUsage(content_seconds=12.5, windows=1, input_tokens=1000, output_tokens=50)
        if state == "done"
        else None,
    )
    return base.model_copy(update=changes)


def test_a_large_write_of_long_keys_is_journalled_whole_and_in_order(backend: Backend) -> None:
    """More outcomes than one journal chunk holds, keys of 1,000 bytes (past the byte bound before the count one),
    two runs written at the same time (interleaved finish times), one retracted from the middle of a chunk."""
    day = T0.date()
    long_key = "k/" + "x" * 990
    first = [outcome(n, "failed", T0 + timedelta(seconds=2 * n), key=f"{long_key}{n:04d}") for n in range(450)]
    second = [outcome(1000 + n, "failed", T0 + timedelta(seconds=2 * n + 1)) for n in range(30)]
    backend.ledger.record(first)
    backend.ledger.record(second)
    backend.ledger.retract(first[200])
    listed = list(backend.ledger.iter_outcomes("failed", day))
    expected = sorted([*first, *second], key=lambda o: o.sort_key, reverse=True)
    expected.remove(first[200])
    assert listed == expected


def test_day_totals_add_up_across_writes_and_days(backend: Backend) -> None:
    day = T0.date()
    backend.ledger.record([outcome(1, "done", T0), outcome(2, "done", T0 + timedelta(minutes=7))])
    backend.ledger.record([outcome(3, "failed", T0 + timedelta(minutes=8))])
    backend.ledger.record([outcome(4, "failed", T0, failure_code="not_a_video_content", failure_kind="user")])
    backend.ledger.record([outcome(5, "done", T0 + timedelta(days=1, seconds=1))])
    first, second, empty = backend.ledger.days([day, day + timedelta(days=1), date(2020, 1, 1)])
    assert (first.done, first.failed, first.failed_user, first.failed_pipeline) == (2, 2, 1, 1)
    assert (first.content_seconds, first.windows, first.input_tokens, first.output_tokens) == (25.0, 2, 2000, 100)
    assert first.done_slots == {0: 1, 1: 1}
    assert first.failed_slots == {0: 1, 1: 1}
    assert (second.done, second.failed, second.done_slots) == (1, 0, {0: 1})
    assert (empty.day, empty.done, empty.failed) == (date(2020, 1, 1), 0, 0)


def test_throughput_reads_the_slots_of_the_window(backend: Backend) -> None:
    now = T0 + timedelta(hours=3)
    backend.ledger.record([outcome(n, "done", now - timedelta(minutes=10 * n)) for n in range(10)])
    totals = {day.day: day for day in backend.ledger.days([now.date()])}
    last_hour = throughput(totals, now=now, window_seconds=3600)
    assert (last_hour.done, last_hour.failed) == (7, 0)  # 0..60 minutes ago: whole slots, so 60 is in
    assert throughput(totals, now=now, window_seconds=86_400).done == 10
    assert slot_of(datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC)) == 287


def test_the_journal_lists_newest_first_and_retract_takes_a_failure_back(backend: Backend) -> None:
    day = T0.date()
    failures = [outcome(n, "failed", T0 + timedelta(minutes=n)) for n in range(5)]
    backend.ledger.record(failures)
    backend.ledger.record(failures[:1])  # written twice (a retried run): still one entry, but counted twice
    listed = list(backend.ledger.iter_outcomes("failed", day, page_size=2))
    assert [o.item_id for o in listed] == [f"{n:032x}" for n in (4, 3, 2, 1, 0)]
    assert listed[0] == failures[4]
    after = list(backend.ledger.iter_outcomes("failed", day, before=failures[2].sort_key))
    assert [o.item_id for o in after] == [f"{n:032x}" for n in (1, 0)]
    assert list(backend.ledger.iter_outcomes("done", day)) == []
    backend.ledger.retract(failures[3])
    assert [o.item_id for o in backend.ledger.iter_outcomes("failed", day)] == [f"{n:032x}" for n in (4, 2, 1, 0)]
    (totals,) = backend.ledger.days([day])
    assert (totals.failed, totals.failed_pipeline) == (5, 5)
    assert sum(totals.failed_slots.values()) == 6  # the throughput that happened stays


# --- the control record ----------------------------------------------------------------------------------------


def test_the_control_record_starts_unpaused_and_saves_conditionally(backend: Backend) -> None:
    initial = backend.control.load()
    assert (initial.paused, initial.version) == (False, 0)
    paused = backend.control.save(initial.pause("maintenance", by="ops", now=T0), initial)
    assert backend.control.load() == paused
    assert (paused.paused, paused.reason, paused.version) == (True, "maintenance", 1)
    with pytest.raises(StaleStateError):
        backend.control.save(initial.pause("again", by="other", now=T0), initial)  # a second first pause
    resumed = backend.control.save(paused.resume(by="ops", now=T0), paused)
    with pytest.raises(StaleStateError):
        backend.control.save(paused.resume(by="late", now=T0), paused)
    assert backend.control.load() == resumed == PipelineControl(changed_by="ops", changed_at=T0, version=2)


# --- pointers: read back and overwrite -------------------------------------------------------------------------


def test_objects_read_back_and_overwrite(backend: Backend) -> None:
    assert backend.objects.read(BUCKET, "results/latest/a.json") is None
    backend.objects.overwrite(BUCKET, "results/latest/a.json", b"one", "application/json")
    backend.objects.overwrite(BUCKET, "results/latest/a.json", b"two", "application/json")
    assert backend.objects.read(BUCKET, "results/latest/a.json") == b"two"
    with pytest.raises(InvalidInputError, match="1024-byte limit"):
        backend.objects.overwrite(BUCKET, "x" * 1025, b"", "application/json")


# --- listing by version, the upload queue ------------------------------------------------------------------------


def test_versions_are_listed_by_key_latest_first_under_the_prefix(backend: Backend) -> None:
    first = backend.upload("old/a.mp4", b"one")
    second = backend.upload("old/a.mp4", b"two!")
    other = backend.upload("old/b.mp4", b"b")
    backend.upload("new/c.mp4", b"c")
    listed = list(backend.objects.iter_versions(BUCKET, "old/"))
    assert [(v.key, v.version_id, v.is_latest, v.size_bytes) for v in listed] == [
        ("old/a.mp4", second.version_id, True, 4),
        ("old/a.mp4", first.version_id, False, 3),
        ("old/b.mp4", other.version_id, True, 1),
    ]
    assert all(not v.delete_marker for v in listed)
    assert list(backend.objects.iter_versions(BUCKET, "none/")) == []


def test_the_upload_queue_takes_any_number_of_events_in_order(backend: Backend) -> None:
    events = [{"detail-type": "Object Created", "n": n} for n in range(23)]  # three SendMessageBatch calls
    assert backend.uploads.send(events) == 23
    assert backend.uploads.send([]) == 0
    assert sorted(backend.uploaded(), key=lambda e: e["n"]) == events  # SQS standard queues keep no strict order
