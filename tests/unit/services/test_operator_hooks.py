"""The pipeline's side of the operators' tools, on moto and the emulator: outcomes counted (successes once per batch
check, failures at once) with their usage, the pause switch the flusher reads, the latest-result pointer, and
terminal items' assets deleted with DeleteAssets=after_result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from videobatch.domain.control import PipelineControl
from videobatch.domain.items import ItemState
from videobatch.domain.outcomes import days_back
from videobatch.domain.results import POINTER_KIND, latest_pointer_key
from videobatch.services.ports import ObjectRef
from videobatch.services.result_pointers import point_latest

from .harness import BUCKET, MotoStack, Stack


def count_calls(stack: Stack, operation: str) -> list[dict[str, Any]]:
    """Every ``operation`` call the stack's DynamoDB client makes from now on (its parameters): moto only."""
    assert isinstance(stack, MotoStack), "count DynamoDB calls on the moto stack (mark the test integration)"
    calls: list[dict[str, Any]] = []
    stack.dynamodb.meta.events.register(
        f"before-parameter-build.dynamodb.{operation}", lambda params, **_: calls.append(dict(params))
    )
    return calls


@pytest.mark.integration  # counts the DynamoDB calls
def test_a_batch_check_counts_its_successes_in_one_write_with_their_usage(
    stack: Stack, videos: dict[str, Path]
) -> None:
    ids, _ = stack.submit(videos, ("short", "in/a.mp4"), ("three_hours", "in/b.mp4"))
    stack.clock.advance(3600)
    updates = count_calls(stack, "UpdateItem")
    assert stack.checker().check_open().items_succeeded == 2
    assert len(updates) == 1  # one day's counters, once for the whole check
    (today,) = stack.runtime.ledger.days(days_back(stack.clock.now(), 1))  # type: ignore[union-attr]
    assert (today.done, today.failed, today.windows) == (2, 0, 3)  # the 3 h video is two windows
    assert today.content_seconds == pytest.approx(20 + 3 * 3600, abs=1)
    assert today.output_tokens > 0
    assert sum(today.done_slots.values()) == 2
    journal = list(stack.runtime.ledger.iter_outcomes("done", today.day))  # type: ignore[union-attr]
    assert {o.item_id for o in journal} == set(ids)
    succeeded = [e["detail"] for e in stack.observed_events() if e["detail-type"] == "Item Succeeded"]
    by_key = {detail["key"]: detail for detail in succeeded}
    assert by_key["in/b.mp4"]["content_seconds"] == pytest.approx(3 * 3600, abs=1)
    assert by_key["in/b.mp4"]["output_tokens"] > 0
    assert by_key["in/a.mp4"]["input_tokens"] >= 0
    assert sum(d["output_tokens"] for d in succeeded) == today.output_tokens


def test_a_failure_is_counted_when_it_happens(stack: Stack, videos: dict[str, Path]) -> None:
    result = stack.ingest("in/notes.mp4", videos["text"])
    assert result.state is ItemState.FAILED
    (today,) = stack.runtime.ledger.days(days_back(stack.clock.now(), 1))  # type: ignore[union-attr]
    assert (today.failed, today.failed_user, today.failed_pipeline, today.done) == (1, 1, 0, 0)
    [entry] = stack.runtime.ledger.iter_outcomes("failed", today.day)  # type: ignore[union-attr]
    assert (entry.item_id, entry.failure_code, entry.key) == (result.item_id, "not_a_video_content", "in/notes.mp4")


def test_a_paused_pipeline_sends_no_batch_and_says_so(stack: Stack, videos: dict[str, Path]) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"))
    control = stack.runtime.control
    assert control is not None
    paused = control.save(PipelineControl().pause("maintenance", by="test", now=stack.clock.now()), control.load())
    stack.clock.advance(stack.settings.max_wait_seconds)
    summary = stack.flusher().run()
    assert (summary.batches_submitted, summary.stop_reason) == (0, "paused by an operator")
    assert stack.items.get(ids[0]).state is ItemState.QUEUED  # type: ignore[union-attr]
    assert stack.metrics.values["PipelinePaused"] == [1]
    control.save(paused.resume(by="test", now=stack.clock.now()), paused)
    assert stack.flusher().run().batches_submitted == 1
    assert stack.metrics.values["PipelinePaused"] == [1, 0]


def test_the_latest_pointer_names_the_result_and_an_older_registration_never_replaces_it(
    stack: Stack, videos: dict[str, Path]
) -> None:
    stack.enable_versioning()
    [first], _ = stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(3600)
    stack.checker().check_open()
    old = stack.items.get(first)
    assert old is not None
    assert old.result_key is not None
    pointer_key = latest_pointer_key("results/", "in/a.mp4")
    pointer = stack.read_json(pointer_key)
    assert pointer["kind"] == POINTER_KIND
    assert pointer["result_s3_uri"] == f"s3://{BUCKET}/{old.result_key}"
    assert pointer["source"] == {"bucket": BUCKET, "key": "in/a.mp4", "version_id": old.version_id}
    # A second version of the key, registered later, takes the pointer over.
    [second], _ = stack.submit(videos, ("short2", "in/a.mp4"))
    stack.clock.advance(3600)
    stack.checker().check_open()
    new = stack.items.get(second)
    assert new is not None
    assert new.version_id != old.version_id
    pointer = stack.read_json(pointer_key)
    assert pointer["result_s3_uri"] == f"s3://{BUCKET}/{new.result_key}"
    # The older one's result stored again (a late check) leaves it alone, and nothing overwrites a non-pointer.
    assert not point_latest(stack.objects, bucket=BUCKET, results_prefix="results/", item=old, key=old.result_key)
    assert stack.read_json(pointer_key) == pointer
    squatter = latest_pointer_key("results/", "in/c.mp4")
    stack.put_object(squatter, b"someone's file")
    impostor = old.model_copy(update={"key": "in/c.mp4"})
    assert not point_latest(stack.objects, bucket=BUCKET, results_prefix="results/", item=impostor, key="x")
    assert stack.read_object(squatter) == b"someone's file"


def assets(stack: Stack) -> set[str]:
    return {asset["_id"] for asset in stack.emulator_state()["assets"]}


def test_after_result_deletes_the_assets_of_terminal_items(stack: Stack, videos: dict[str, Path]) -> None:
    ids, _ = stack.submit(videos, ("short", "in/a.mp4"))
    done_asset = stack.items.get(ids[0]).asset_id  # type: ignore[union-attr]
    assert done_asset in assets(stack)
    stack.clock.advance(3600)
    assert stack.checker(delete_assets="after_result").check_open().items_succeeded == 1
    assert done_asset not in assets(stack)
    # Kept with the default.
    ids, _ = stack.submit(videos, ("short2", "in/b.mp4"))
    kept = stack.items.get(ids[0]).asset_id  # type: ignore[union-attr]
    stack.clock.advance(3600)
    stack.checker().check_open()
    assert kept in assets(stack)


def make_asset(stack: Stack, videos: dict[str, Path], *, item_id: str, bucket: str) -> str:
    """An asset as ingest creates one (its user_metadata names the item), with no item recording it."""
    key = f"in/orphan-{item_id[:6]}.mp4"
    stack.put_object(key, videos["short"].read_bytes())
    url = stack.objects.presigned_get_url(ObjectRef(bucket=BUCKET, key=key), 3600)
    metadata = {"item_id": item_id, "bucket": bucket, "key": key}
    return stack.twelvelabs.create_asset_from_url(url, filename="orphan.mp4", user_metadata=metadata).id


def test_the_sweeper_deletes_orphan_assets_once_a_day_and_only_this_stacks(
    stack: Stack, videos: dict[str, Path]
) -> None:
    ids, _ = stack.submit(videos, ("short", "in/a.mp4"))
    recorded = stack.items.get(ids[0]).asset_id  # type: ignore[union-attr]
    orphan = make_asset(stack, videos, item_id="f" * 32, bucket=BUCKET)  # a crash before ingest recorded it
    foreign = make_asset(stack, videos, item_id="e" * 32, bucket="another-stacks-bucket")  # another user of the key
    stack.clock.advance(3600)
    assert stack.runtime.sweep_service().run().orphan_assets_deleted == 0  # younger than a day: ingest may be on it
    assert {orphan, foreign, recorded} <= assets(stack)
    stack.clock.advance(86_400)
    assert stack.runtime.sweep_service().run().orphan_assets_deleted == 1
    assert orphan not in assets(stack)
    assert {foreign, recorded} <= assets(stack)  # not this stack's; recorded by its item
    late = make_asset(stack, videos, item_id="d" * 32, bucket=BUCKET)
    stack.clock.advance(2 * 86_400 - 3600)
    summary = stack.runtime.sweep_service().run()
    assert summary.orphan_assets_deleted == 1  # the next day's pass
    assert late not in assets(stack)
    assert stack.runtime.sweep_service().run().orphan_assets_deleted == 0  # once a day
    assert stack.metrics.total("OrphanAssetsDeleted") == 2


def test_with_after_result_the_sweeper_also_deletes_what_the_writer_could_not(
    stack: Stack, videos: dict[str, Path]
) -> None:
    ids, _ = stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(3600)
    stack.checker().check_open()  # DeleteAssets=never here: the done item keeps its asset
    kept = stack.items.get(ids[0]).asset_id  # type: ignore[union-attr]
    stack.clock.advance(2 * 86_400)
    assert stack.runtime.sweep_service().run().orphan_assets_deleted == 0
    assert kept in assets(stack)
    stack.clock.advance(86_400)
    assert stack.with_settings(delete_assets="after_result").sweep_service().run().orphan_assets_deleted == 1
    assert kept not in assets(stack)
