from pathlib import Path
from typing import Any

import pytest

from tests.recovery.support import Wrapped
from videobatch.domain.items import ItemState
from videobatch.domain.records import BatchState
from videobatch.domain.results import result_key
from videobatch.errors import AuthenticationError, InvalidInputError, ServerError

from .harness import BUCKET, MotoStack, Stack


def test_results_are_merged_written_and_reported(stack: Stack, videos: dict[str, Path]) -> None:
    ids, batch_id = stack.submit(videos, ("short", "in/a.mp4"), ("three_hours", "in/b.mp4"))
    stack.clock.advance(3600)
    summary = stack.checker().check(batch_id)
    assert (summary.items_succeeded, summary.batches_closed) == (2, 1)
    items = stack.items.get_many(ids)
    assert {item.state for item in items.values()} == {ItemState.DONE}
    long = items[ids[1]]
    assert long.result_key == result_key("results/", "in/b.mp4", None) == "results/in/b.mp4.json"
    document = stack.read_json(long.result_key)
    assert (document["batch_id"], document["model"], document["item_id"]) == (batch_id, "pegasus1.5", ids[1])
    assert len(document["windows"]) == 2
    assert len(document["result"]["body"]) == 2  # json_schema profile: one document per window
    assert document["usage"]["output_tokens"] > 0
    events = stack.observed_events()
    assert sorted(e["detail-type"] for e in events) == ["Batch Finished", "Item Succeeded", "Item Succeeded"]
    finished = next(e for e in events if e["detail-type"] == "Batch Finished")["detail"]
    assert (finished["status"], finished["items_succeeded"], finished["request_count"]) == ("completed", 2, 3)
    progress = stack.batches.get_progress(batch_id)
    assert progress is not None
    assert progress.state is BatchState.CLOSED
    assert stack.checker().check_open().batches_checked == 0
    assert stack.metrics.total("ItemsSucceeded") == 2
    # The slot it freed is refilled now, not at the flusher's next scheduled run.
    assert [function for function, _ in stack.invoker.drain()] == ["flusher"]


def test_items_finish_while_the_batch_still_runs(stack: Stack, videos: dict[str, Path]) -> None:
    ids, _batch_id = stack.submit(videos, ("short", "in/a.mp4"), ("three_hours", "in/b.mp4"))
    stack.clock.advance(5)  # the 20 s video is done, the 3 h one (2 x 90 s of processing) is not
    summary = stack.checker().check_open()
    assert (summary.items_succeeded, summary.batches_closed) == (1, 0)
    assert stack.items.get(ids[1]).state is ItemState.SUBMITTED  # type: ignore[union-attr]
    stack.clock.advance(3600)
    assert stack.checker().check_open().items_succeeded == 1


@pytest.mark.integration  # reads S3's ETag and LastModified
def test_results_are_written_once_when_checkers_race(stack: Stack, videos: dict[str, Path]) -> None:
    [item_id], batch_id = stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(3600)
    stale = stack.items.get_many([item_id])
    stack.checker().check(batch_id)
    key = stack.items.get(item_id).result_key  # type: ignore[union-attr]
    assert isinstance(stack, MotoStack)
    first = stack.s3.get_object(Bucket=BUCKET, Key=key)
    # A second checker that read the item and the batch before the first one finished them (stale snapshots).
    progress = stack.batches.get_progress(batch_id)
    assert progress is not None
    open_progress = progress.model_copy(update={"state": BatchState.OPEN, "settled": "", "api_status": "processing"})
    late = stack.with_ports(
        items=Wrapped(stack.items, get_many=lambda ids: stale),
        batches=Wrapped(stack.batches, get_progress=lambda batch_id: open_progress),
    ).batch_check_service()
    summary = late.check(batch_id)
    assert (summary.items_succeeded, summary.lost_races) == (0, 1)
    again = stack.s3.get_object(Bucket=BUCKET, Key=key)
    assert again["ETag"] == first["ETag"]
    assert again["LastModified"] == first["LastModified"]
    assert [e["detail-type"] for e in stack.observed_events()].count("Item Succeeded") == 1


def test_expired_batch_requeues_its_items(stack: Stack, videos: dict[str, Path]) -> None:
    stack.emulator_settings(item_concurrency=1, content_seconds_per_second=0.0001)
    ids, batch_id = stack.submit(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    stack.clock.advance(25 * 3600)
    summary = stack.checker().check(batch_id)
    assert (summary.items_requeued, summary.batches_closed) == (2, 1)
    items = stack.items.get_many(ids)
    assert {(i.state, i.attempts, i.batch_id) for i in items.values()} == {(ItemState.QUEUED, 1, None)}
    assert all(i.eligible_at == stack.clock.now() for i in items.values())  # requeued at the front, right away
    finished = [e for e in stack.observed_events() if e["detail-type"] == "Batch Finished"]
    assert finished[0]["detail"]["status"] == "expired"
    stack.emulator_settings(item_concurrency=4, content_seconds_per_second=60.0)
    stack.clock.advance(stack.settings.max_wait_seconds)  # max_wait counts from eligible_at again
    assert stack.flusher().run().items_submitted == 2  # the next attempt, with new custom_ids
    assert {i.attempts for i in stack.items.get_many(ids).values()} == {2}


def test_item_fails_after_max_attempts(stack: Stack, videos: dict[str, Path]) -> None:
    stack.emulator_settings(content_seconds_per_second=0.0001)
    [item_id], batch_id = stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(25 * 3600)
    assert stack.checker(max_attempts=1).check(batch_id).items_failed == 1
    item = stack.items.get(item_id)
    assert item is not None
    assert item.failure is not None
    assert (item.state, item.failure.code) == (ItemState.FAILED, "max_attempts_exceeded")
    failed = [e for e in stack.observed_events() if e["detail-type"] == "Item Failed"]
    assert (failed[0]["detail"]["stage"], failed[0]["detail"]["batch_id"]) == ("analysis", batch_id)


def test_terminal_item_error_fails_without_retry(stack: Stack, videos: dict[str, Path]) -> None:
    stack.faults({"item_failure": {"code": "video_file_broken", "message": "cannot decode", "rate": 1.0}})
    [item_id], batch_id = stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(3600)
    assert stack.checker().check(batch_id).items_failed == 1
    item = stack.items.get(item_id)
    assert item is not None
    assert item.failure is not None
    assert (item.failure.code, item.failure.message) == ("video_file_broken", "cannot decode")


def test_unknown_batch_is_a_no_op(stack: Stack) -> None:
    assert stack.checker().check("0" * 24).batches_checked == 0


def test_a_key_too_long_to_mirror_gets_a_bounded_result_address_and_stops_nobody(
    stack: Stack, videos: dict[str, Path]
) -> None:
    """A valid 1,015-byte key would make a 1,028-byte result key (S3 refuses over 1,024; moto would not)."""
    long_key = "in/" + "k" * 1008 + ".mp4"
    ids, batch_id = stack.submit(videos, ("short", "in/a.mp4"), ("short2", long_key), ("short", "in/c.mp4"))
    stack.clock.advance(3600)
    summary = stack.checker().check(batch_id)
    assert (summary.items_succeeded, summary.items_failed, summary.batches_closed) == (3, 0, 1)
    long = stack.items.get(ids[1])
    assert long is not None
    assert long.result_key is not None
    assert long.result_key.startswith("results/_long-keys/")
    assert len(long.result_key.encode()) <= 1024
    document = stack.read_json(long.result_key)
    assert document["source"]["key"] == long_key  # the full key is inside


def test_a_result_file_written_by_someone_else_fails_that_video_alone(stack: Stack, videos: dict[str, Path]) -> None:
    """An uploader wrote the exact result address of a video before its batch finished."""
    ids, batch_id = stack.submit(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    squatted = result_key("results/", "in/a.mp4", None)
    stack.put_object(squatted, b'{"not": "ours"}')
    stack.clock.advance(3600)
    summary = stack.checker().check(batch_id)
    assert (summary.items_succeeded, summary.items_failed, summary.batches_closed) == (1, 1, 1)
    items = stack.items.get_many(ids)
    failed, done = items[ids[0]], items[ids[1]]
    assert (failed.state, done.state) == (ItemState.FAILED, ItemState.DONE)
    assert failed.failure is not None
    assert failed.failure.code == "result_conflict"
    assert squatted in failed.failure.message
    assert batch_id in failed.failure.message
    assert stack.read_object(squatted) == b'{"not": "ours"}'  # not overwritten
    failed_events = [e for e in stack.observed_events() if e["detail-type"] == "Item Failed"]
    assert [e["detail"]["failure_code"] for e in failed_events] == ["result_conflict"]
    assert stack.metrics.total("ItemsFailedPipeline") == 1


def test_a_batch_whose_check_faults_does_not_stop_the_others(stack: Stack, videos: dict[str, Path]) -> None:
    first_ids, first = stack.submit(videos, ("short", "in/a.mp4"))
    later_ids, _ = stack.submit(videos, ("short2", "in/b.mp4"))
    stack.clock.advance(3600)
    real = stack.twelvelabs.retrieve_batch

    def odd_answer(batch_id: str) -> Any:
        if batch_id == first:
            raise InvalidInputError(f"batch {batch_id}: an answer the client cannot read")
        return real(batch_id)

    summary = stack.with_ports(twelvelabs=Wrapped(stack.twelvelabs, retrieve_batch=odd_answer)).batch_check_service()
    result = summary.check_open()
    assert (result.batches_checked, result.batches_faulted, result.items_succeeded) == (2, 1, 1)
    assert stack.items.get(later_ids[0]).state is ItemState.DONE  # type: ignore[union-attr]
    assert stack.items.get(first_ids[0]).state is ItemState.SUBMITTED  # type: ignore[union-attr]
    assert stack.checker().check_open().items_succeeded == 1  # the next run, with a sane answer


def test_a_pipeline_fault_stops_the_run(stack: Stack, videos: dict[str, Path]) -> None:
    stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(3600)
    stack.faults({"endpoint": "GET /analyze/batches/{id}", "status": 401, "code": "unauthorized"})
    with pytest.raises(AuthenticationError):
        stack.checker().check_open()


def test_the_oldest_submitted_age_is_reported_every_run(stack: Stack, videos: dict[str, Path]) -> None:
    stack.checker().check_open()
    assert stack.metrics.values["OldestSubmittedItemAgeSeconds"][-1] == 0.0
    stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(90)
    stack.faults({"endpoint": "GET /analyze/batches/{id}", "status": 503, "code": "unavailable"})
    with pytest.raises(ServerError):
        stack.checker().check_open()
    assert stack.metrics.values["OldestSubmittedItemAgeSeconds"][-1] == 90.0
