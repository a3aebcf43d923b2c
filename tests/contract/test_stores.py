"""Items, batches, claims and leases: the same rules on DynamoDB (moto) and in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from videobatch.domain.items import FailureReason, ItemState, Window
from videobatch.domain.records import (
    INFLIGHT_QUEUE,
    INTAKE_QUEUE,
    BatchRecord,
    BatchState,
    ClaimRecord,
    ClaimState,
    ItemRecord,
    UploadedObject,
    queued_queue,
)
from videobatch.domain.uploads import MultipartUploadSession
from videobatch.errors import InvalidInputError, InvalidTransitionError, StaleStateError

from .conftest import Backend

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = (Window(index=0, start_seconds=0, end_seconds=12.5),)


def registered(n: int = 0, **changes: Any) -> ItemRecord:
    upload = UploadedObject(bucket="uploads", key=f"videos/{n}.mp4", version_id=f"v{n}", size_bytes=1234)
    item = ItemRecord.registered(upload, profile_name="summary", analysis_mode="general", upload_method="url", now=T0)
    return item.model_copy(update=changes)


def queued_at(backend: Backend, n: int, at: datetime) -> ItemRecord:
    """An item walked the legal way to ``queued`` with ``at`` as its place in the queue."""
    stored, _ = backend.items.create(registered(n))
    processing = backend.items.save(stored.asset_created(f"asset{n}", now=T0), stored)
    return backend.items.save(processing.asset_ready(12.5, WINDOW, now=at), processing)


def test_create_is_idempotent_and_returns_what_is_stored(backend: Backend) -> None:
    first, created = backend.items.create(registered())
    again, created_again = backend.items.create(registered(etag="other"))
    assert (created, created_again) == (True, False)
    assert first.version == 1
    assert again == first


def test_round_trip_keeps_every_field(backend: Backend) -> None:
    item = registered(etag="e", task_ids={"x": "y"}).model_copy(
        update={"duration_seconds": 7200.125, "windows": WINDOW, "note": "ünïcode ✓"}
    )
    stored, _ = backend.items.create(item)
    assert backend.items.get(item.item_id) == stored
    assert backend.items.get("f" * 32) is None


def test_save_increments_the_version_and_a_stale_writer_loses(backend: Backend) -> None:
    stored, _ = backend.items.create(registered())
    moved = backend.items.save(stored.asset_created("as1", now=T0), stored)
    assert moved.version == 2
    with pytest.raises(StaleStateError):
        backend.items.save(stored.fail(FailureReason(code="x", message="late"), now=T0), stored)
    assert backend.items.get(stored.item_id) == moved


def test_a_move_the_lifecycle_forbids_is_refused_and_writes_nothing(backend: Backend) -> None:
    stored, _ = backend.items.create(registered())
    with pytest.raises(InvalidTransitionError, match="registered -> submitted"):
        backend.items.save(stored.model_copy(update={"state": ItemState.SUBMITTED}), stored)
    done = backend.items.save(stored.fail(FailureReason(code="x", message="gone"), now=T0), stored)
    with pytest.raises(InvalidTransitionError, match="terminal"):
        backend.items.save(done.model_copy(update={"state": ItemState.QUEUED}), done)
    assert backend.items.get(stored.item_id) == done


def test_saves_are_pinned_to_the_claim_and_batch_the_writer_saw(backend: Backend) -> None:
    item = queued_at(backend, 0, T0)
    claimed = backend.items.save(item.claim("c1", now=T0), item)
    impostor = claimed.model_copy(update={"claim_id": "c2"})  # a writer of another claim with a matching version
    with pytest.raises(StaleStateError):
        backend.items.save(impostor.submit("b2", {}, now=T0), impostor)
    submitted = backend.items.save(claimed.submit("b1", {}, now=T0), claimed)
    impostor = submitted.model_copy(update={"batch_id": "b2"})  # a checker of another batch, same version
    with pytest.raises(StaleStateError):
        backend.items.save(impostor.finish("k", now=T0), impostor)
    assert backend.items.save(submitted.finish("k", now=T0), submitted).state is ItemState.DONE


def test_queues_list_oldest_first_across_pages_and_respect_until(backend: Backend) -> None:
    minutes = [30, 10, 20, 50, 40]
    for n, offset in enumerate(minutes):
        queued_at(backend, n, T0 + timedelta(minutes=offset))
    ids = [item.key for item in backend.items.iter_queue(queued_queue("general"), page_size=2)]
    assert ids == [f"videos/{n}.mp4" for n in (1, 2, 0, 4, 3)]
    early = [item.key for item in backend.items.iter_queue(queued_queue("general"), until=T0 + timedelta(minutes=20))]
    assert early == ["videos/1.mp4", "videos/2.mp4"]  # until is inclusive
    assert list(backend.items.iter_queue(queued_queue("time_based_metadata"))) == []


def test_pages_are_read_from_the_index_as_it_is_when_each_is_reached(backend: Backend) -> None:
    """A reader pages a queue while a writer moves items: an item claimed before its page is read is not listed
    (each page continues after the last key returned, as a Query with ExclusiveStartKey does)."""
    items = [queued_at(backend, n, T0 + timedelta(minutes=n)) for n in range(6)]
    pages = backend.items.iter_queue(queued_queue("general"), page_size=2)
    seen = [next(pages).key, next(pages).key]
    backend.items.save(items[3].claim("c1", now=T0), items[3])  # on the next page, not read yet
    seen += [item.key for item in pages]
    assert seen == [f"videos/{n}.mp4" for n in (0, 1, 2, 4, 5)]


def test_terminal_items_leave_the_queues(backend: Backend) -> None:
    stored, _ = backend.items.create(registered())
    assert [(item.item_id, item.state) for item in backend.items.iter_queue(INTAKE_QUEUE)] == [
        (stored.item_id, ItemState.REGISTERED)
    ]
    processing = backend.items.save(stored.asset_created("as1", now=T0), stored)
    listed = [(item.item_id, item.state) for item in backend.items.iter_queue(INTAKE_QUEUE)]
    assert listed == [(stored.item_id, ItemState.ASSET_PROCESSING)]  # same queue, current record
    backend.items.save(processing.fail(FailureReason(code="asset_failed", message="broken"), now=T0), processing)
    assert list(backend.items.iter_queue(INTAKE_QUEUE)) == []
    assert backend.items.get(stored.item_id).state is ItemState.FAILED  # type: ignore[union-attr]


def test_batch_membership_and_get_many(backend: Backend) -> None:
    ids = []
    for n in range(3):
        claimed = backend.items.save((item := queued_at(backend, n, T0)).claim("c1", now=T0), item)
        backend.items.save(claimed.submit("b1", {}, now=T0), claimed)
        ids.append(claimed.item_id)
    other = queued_at(backend, 9, T0)
    # Claimed and submitted share the in-flight queue; same claimed_at: the item id breaks the tie.
    assert [item.item_id for item in backend.items.iter_queue(INFLIGHT_QUEUE, page_size=2)] == sorted(ids)
    found = backend.items.get_many([*ids, "f" * 32, ids[0], other.item_id])
    assert set(found) == {*ids, other.item_id}


def test_get_many_reads_more_than_one_request_holds(backend: Backend) -> None:
    ids = [backend.items.create(registered(n))[0].item_id for n in range(130)]  # BatchGetItem takes 100 keys
    assert set(backend.items.get_many(ids)) == set(ids)


def make_batch(**changes: Any) -> BatchRecord:
    base = BatchRecord(
        batch_id="b" * 24,
        analysis_mode="general",
        claim_id="c1",
        created_at=T0,
        expires_at=T0 + timedelta(hours=24),
        item_ids=("a" * 32, "b" * 32),
        windows=(1, 2),
        attempts=(1, 3),
        content_seconds=12.5,
    )
    return base.model_copy(update=changes)


def test_batch_facts_are_written_once_and_progress_apart(backend: Backend) -> None:
    batch = make_batch()
    stored = backend.batches.create(batch, batch.progress("pending"))
    assert backend.batches.create(batch, batch.progress("processing")) == stored  # a retried recording
    with pytest.raises(StaleStateError):
        backend.batches.create(make_batch(claim_id="other"), batch.progress("pending"))
    assert backend.batches.get(batch.batch_id) == stored
    assert stored.request_count == 3
    progress = backend.batches.get_progress(batch.batch_id)
    assert progress is not None
    assert (progress.api_status, progress.version, progress.item_count) == ("pending", 1, 2)  # not overwritten
    assert backend.batches.get("f" * 24) is None
    assert backend.batches.get_progress("f" * 24) is None


def test_open_batches_are_listed_by_their_progress_and_leave_when_closed(backend: Backend) -> None:
    first = make_batch()
    earlier = make_batch(batch_id="c" * 24, created_at=T0 - timedelta(minutes=1))
    for batch in (first, earlier):
        backend.batches.create(batch, batch.progress("pending"))
    assert [p.batch_id for p in backend.batches.iter_open(page_size=1)] == [earlier.batch_id, first.batch_id]
    progress = backend.batches.get_progress(first.batch_id)
    assert progress is not None
    seen = backend.batches.save_progress(progress.observed("processing", 1, settled=[1], succeeded=1), progress)
    assert (seen.is_settled(0), seen.is_settled(1), seen.settled_count, seen.succeeded_items) == (False, True, 1, 1)
    with pytest.raises(StaleStateError):
        backend.batches.save_progress(progress.observed("completed", 2), progress)  # a stale checker loses
    done = seen.observed("completed", 3, settled=[0], failed=1)
    assert done.all_settled
    closed = backend.batches.save_progress(done.closed(now=T0), seen)
    assert [p.batch_id for p in backend.batches.iter_open()] == [earlier.batch_id]
    assert backend.batches.get_progress(first.batch_id) == closed
    reopened = backend.batches.save_progress(closed.reopened(), closed)
    assert (reopened.state, reopened.settled_count) == (BatchState.OPEN, 0)
    assert len(list(backend.batches.iter_open())) == 2


def test_claims_are_created_once_and_saved_conditionally(backend: Backend) -> None:
    claim = ClaimRecord(
        claim_id="c1",
        owner="flusher-1",
        analysis_mode="general",
        created_at=T0,
        item_ids=("a" * 32, "b" * 32),
        attempts=(1, 2),
        windows=(1, 2),
        content_seconds=1.0,
    )
    assert claim.custom_ids == {
        f"{'a' * 32}-a1-w0": "a" * 32,
        f"{'b' * 32}-a2-w0": "b" * 32,
        f"{'b' * 32}-a2-w1": "b" * 32,
    }
    stored = backend.claims.create(claim)
    assert backend.claims.get("c1") == stored
    with pytest.raises(StaleStateError):
        backend.claims.create(claim)
    assert [c.claim_id for c in backend.claims.iter_pending()] == ["c1"]
    narrowed = backend.claims.save(stored.narrowed(["b" * 32], 0.5), stored)
    assert (narrowed.item_ids, narrowed.attempts, narrowed.windows) == (("b" * 32,), (2,), (2,))
    noted = backend.claims.save(narrowed.noting_batch("b"), narrowed)
    created = backend.claims.save(noted.recorded(), noted)
    assert backend.claims.get("c1") == created
    assert created.state is ClaimState.CREATED
    assert list(backend.claims.iter_pending()) == []
    with pytest.raises(StaleStateError):
        backend.claims.save(stored.released("late"), stored)


def test_a_lease_is_exclusive_until_released_or_expired(backend: Backend) -> None:
    lease = backend.leases
    assert lease.acquire("flush", "one", now=T0, duration_seconds=60)
    assert not lease.acquire("flush", "two", now=T0 + timedelta(seconds=59), duration_seconds=60)
    assert lease.acquire("flush", "one", now=T0 + timedelta(seconds=1), duration_seconds=60)  # renewal by the owner
    info = lease.inspect("flush")
    assert info is not None
    assert (info.owner, info.expires_at) == ("one", T0 + timedelta(seconds=61))
    assert not lease.release("flush", "two")
    assert lease.release("flush", "one")
    assert lease.inspect("flush") is None
    assert lease.acquire("flush", "two", now=T0, duration_seconds=60)
    assert lease.acquire("flush", "three", now=T0 + timedelta(seconds=60), duration_seconds=60)  # expired
    assert not lease.release("flush", "two")


# --- multipart upload progress --------------------------------------------------------------------------------


def _session(confirmed: int = 0) -> MultipartUploadSession:
    session = MultipartUploadSession.started(
        upload_id="up1",
        asset_id="as1",
        chunk_bytes=500,
        total_chunks=3,
        total_bytes=1234,
        now=T0,
        expires_at=T0 + timedelta(hours=24),
        upload_headers={"x-amz-acl": "private"},
    )
    return session.model_copy(update={"confirmed_chunks": confirmed})


def test_a_registered_item_saves_its_upload_progress_and_keeps_every_session_field(backend: Backend) -> None:
    stored, _ = backend.items.create(registered())
    started = backend.items.save(stored.upload_progressed(_session(), now=T0), stored)
    later = T0 + timedelta(seconds=30)
    progressed = backend.items.save(started.upload_progressed(_session().confirmed(1), now=later), started)
    read = backend.items.get(stored.item_id)
    assert read == progressed
    assert read is not None
    assert (read.state, read.version, read.updated_at) == (ItemState.REGISTERED, 3, later)
    assert read.upload_session == _session(confirmed=1)
    # Still in the intake queue at its creation time: progress is no queue move.
    assert [i.item_id for i in backend.items.iter_queue(INTAKE_QUEUE)] == [stored.item_id]


def test_a_stale_progress_save_loses_and_the_newer_session_stands(backend: Backend) -> None:
    stored, _ = backend.items.create(registered())
    first = backend.items.save(stored.upload_progressed(_session(confirmed=2), now=T0), stored)
    with pytest.raises(StaleStateError):
        backend.items.save(stored.upload_progressed(_session(confirmed=1), now=T0), stored)
    assert backend.items.get(stored.item_id) == first


def test_the_asset_created_drops_the_session_and_other_states_never_save_in_place(backend: Backend) -> None:
    stored, _ = backend.items.create(registered())
    uploading = backend.items.save(stored.upload_progressed(_session(confirmed=3), now=T0), stored)
    processing = backend.items.save(uploading.asset_created("as1", now=T0), uploading)
    assert processing.upload_session is None
    with pytest.raises(InvalidTransitionError, match="asset_processing -> asset_processing"):
        backend.items.save(processing.model_copy(update={"note": "in place"}), processing)
    with pytest.raises(InvalidInputError, match="only a registered item uploads"):
        processing.upload_progressed(_session(), now=T0)
    assert backend.items.get(stored.item_id) == processing
