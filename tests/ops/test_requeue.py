"""``videobatch requeue`` against the local stack: failed items back to work, by filter and by id, to the queue
(asset still ready) or through ingest again (asset gone), never one live in a batch, never twice, and safe while the
flusher runs at the same time (TwelveLabs' own batches checked: each custom_id in exactly one)."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from videobatch.domain.items import FailureReason, ItemState
from videobatch.domain.records import ItemRecord
from videobatch_ops.common import EXIT_ERROR, EXIT_NOT_FOUND
from videobatch_tools import samples
from videobatch_tools.localstack.pipeline import LocalPipeline

from .support import Ops, batches_per_custom_id, faults

pytestmark = pytest.mark.integration

FAILING = tuple(f"fail/{n}.mp4" for n in range(6))
ALWAYS_FAIL = {"item_failure": {"code": "internal_error", "message": "the model crashed", "rate": 1.0}}


@pytest.fixture(scope="module")
def ops() -> Iterator[Ops]:
    # MaxAttempts 1: one retryable failure fails the item (max_attempts_exceeded), with its asset still ready.
    overrides = {"MaxWaitSeconds": "0", "MaxAttempts": "1"}
    with (
        tempfile.TemporaryDirectory() as workdir,
        LocalPipeline(parameter_overrides=overrides, stack_name="opsrq") as p,
    ):
        ops = Ops(p)
        faults(p, ALWAYS_FAIL)
        for seed, key in enumerate(FAILING):
            path = samples.write_sample_video(Path(workdir) / f"{seed}.mp4", duration_seconds=6, seed=seed)
            p.upload(key, path.read_bytes())
        p.upload("fail/notes.mp4", samples.write_non_video(Path(workdir) / "notes.mp4").read_bytes())
        p.run_until_idle()
        faults(p)
        yield ops


def items_by_key(ops: Ops, prefix: str) -> dict[str, ItemRecord]:
    return {item.key: item for item in ops.pipeline.items() if item.key.startswith(prefix)}


def test_the_failures_are_there(ops: Ops) -> None:
    items = items_by_key(ops, "fail/")
    assert {items[key].state for key in FAILING} == {ItemState.FAILED}
    assert {items[key].failure.code for key in FAILING} == {"max_attempts_exceeded"}  # type: ignore[union-attr]
    assert ops.status()["totals"]["failed"] == len(FAILING) + 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "name items or a filter"),
        (("--prefix", ""), "--prefix is empty"),
        (("--since", "last tuesday"), "is neither a duration"),
        (("not-an-id",), "not an item id"),
        (("--all", "--code", "x"), "--all means no filter"),
        (("--code", "x", "--limit", "0"), "--limit must be at least 1"),
        (("--reset-attempts", "--keep-attempts", "--all"), "not allowed with argument"),
    ],
)
def test_bad_input_is_exit_2_and_changes_nothing(ops: Ops, argv: tuple[str, ...], message: str) -> None:
    before = ops.status()["totals"]
    result = ops.run("requeue", *argv, "--yes")
    assert (result.code, result.out) == (EXIT_ERROR, "")
    assert message in result.err
    assert ops.status()["totals"] == before


def test_nothing_matching_is_exit_1(ops: Ops) -> None:
    assert ops.run("requeue", "--code", "no_such_code", "--yes").code == EXIT_NOT_FOUND
    assert ops.run("requeue", "--prefix", "elsewhere/", "--yes").code == EXIT_NOT_FOUND
    assert ops.run("requeue", "f" * 32, "--yes").code == EXIT_NOT_FOUND


def test_an_upload_refused_at_ingest_is_skipped_not_requeued(ops: Ops) -> None:
    refused = items_by_key(ops, "fail/notes.mp4")["fail/notes.mp4"]
    result = ops.run("requeue", refused.item_id, "--json")
    assert result.code == EXIT_NOT_FOUND
    (row,) = result.json()["plan"]
    assert (row["action"], row["failure_code"]) == ("skip", "not_a_video_content")
    assert "upload it again" in row["reason"]


def test_dry_run_and_an_unconfirmed_change_change_nothing(ops: Ops) -> None:
    before = ops.status()["totals"]
    dry = ops.ok("requeue", "--code", "max_attempts_exceeded", "--dry-run", "--json").json()
    assert dry["report"] is None
    assert sorted(row["key"] for row in dry["plan"]) == sorted(FAILING)
    assert {row["action"] for row in dry["plan"]} == {"queued"}  # their assets are still ready
    text = ops.ok("requeue", "--code", "max_attempts_exceeded", "--dry-run").out
    assert f"dry run: {len(FAILING)} of {len(FAILING)} would be requeued; nothing changed" in text
    result = ops.run("requeue", "--code", "max_attempts_exceeded")  # no --yes, and no terminal to ask on
    assert result.code == EXIT_ERROR
    assert "pass --yes to confirm" in result.err
    assert ops.status()["totals"] == before
    assert {i.state for i in items_by_key(ops, "fail/").values()} == {ItemState.FAILED}


def test_requeue_while_the_flusher_runs_submits_each_item_once_and_everything_finishes(ops: Ops) -> None:
    pipeline = ops.pipeline
    stop = threading.Event()
    flushes: list[int] = []
    errors: list[BaseException] = []

    def flush_continuously() -> None:
        try:
            while not stop.is_set():
                flushes.append(pipeline.runtime.flush_service(owner="racing-flusher").run().items_submitted)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    racer = threading.Thread(target=flush_continuously)
    racer.start()
    try:
        result = ops.run("requeue", "--code", "max_attempts_exceeded", "--prefix", "fail/", "--yes", "--json")
    finally:
        stop.set()
        racer.join(timeout=60)
    assert errors == []
    assert result.code == 0, result
    report = result.json()["report"]
    assert (report["requeued"], report["reregistered"], report["lost_races"]) == (len(FAILING), 0, 0)
    assert sum(flushes) > 0, "the flusher never raced the requeue"
    pipeline.run_until_idle()
    items = items_by_key(ops, "fail/")
    assert {items[key].state for key in FAILING} == {ItemState.DONE}
    assert {items[key].attempts for key in FAILING} == {2}  # the failed attempt 1, then attempt 2
    assert set(batches_per_custom_id(pipeline).values()) == {1}  # nothing submitted twice
    status = ops.status()
    assert (status["totals"]["done"], status["totals"]["failed"]) == (len(FAILING), 1)  # failures retracted
    # Run again: nothing is failed any more, nothing is requeued twice.
    assert ops.run("requeue", "--code", "max_attempts_exceeded", "--yes").code == EXIT_NOT_FOUND


def fail_one(ops: Ops, key: str, workdir: str, seed: int) -> ItemRecord:
    """Upload a video and let it fail (max_attempts_exceeded) with its asset ready."""
    pipeline = ops.pipeline
    faults(pipeline, ALWAYS_FAIL)
    try:
        path = samples.write_sample_video(Path(workdir) / f"{seed}.mp4", duration_seconds=6, seed=seed)
        pipeline.upload(key, path.read_bytes())
        pipeline.run_until_idle()
    finally:
        faults(pipeline)
    item = items_by_key(ops, key)[key]
    assert item.state is ItemState.FAILED
    return item


def test_an_item_whose_asset_is_gone_goes_through_ingest_again_with_attempts_reset(ops: Ops) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        failed = fail_one(ops, "gone/a.mp4", workdir, seed=11)
    assert failed.asset_id is not None
    ops.pipeline.runtime.twelvelabs.delete_asset(failed.asset_id)
    plan = ops.ok("requeue", failed.item_id, "--dry-run", "--json").json()["plan"]
    assert [row["action"] for row in plan] == ["registered"]
    report = ops.ok("requeue", failed.item_id, "--reset-attempts", "--json").json()["report"]  # one item: no prompt
    assert (report["requeued"], report["reregistered"]) == (0, 1)
    reopened = ops.pipeline.runtime.items.get(failed.item_id)
    assert reopened is not None
    assert (reopened.state, reopened.asset_id, reopened.counted_attempts) == (ItemState.REGISTERED, None, 0)
    ops.pipeline.run_until_idle()  # ingest gets the upload event again and makes a new asset
    done = ops.pipeline.runtime.items.get(failed.item_id)
    assert done is not None
    assert done.state is ItemState.DONE
    assert done.asset_id not in (None, failed.asset_id)
    assert done.forgiven_attempts == 1
    assert set(batches_per_custom_id(ops.pipeline).values()) == {1}


def test_an_item_whose_batch_is_still_open_is_never_requeued(ops: Ops) -> None:
    """A two-window item failed on one window while its other window still runs: a second submission would have
    the item in two live batches."""
    pipeline = ops.pipeline
    with tempfile.TemporaryDirectory() as workdir:
        for seed, key in enumerate(("live/a.mp4", "live/b.mp4"), start=20):
            path = samples.write_sample_video(Path(workdir) / f"{seed}.mp4", duration_seconds=6, seed=seed)
            pipeline.upload(key, path.read_bytes())
        pipeline.run_until(lambda: all(i.state is ItemState.SUBMITTED for i in items_by_key(ops, "live/").values()))
    submitted = items_by_key(ops, "live/")["live/a.mp4"]
    failure = FailureReason(code="video_file_broken", message="window 1 of 2 failed")
    failed = pipeline.runtime.item_writer().fail(submitted, failure)  # as the batch checker fails it
    assert failed is not None
    result = ops.run("requeue", failed.item_id, "--yes", "--json")
    assert result.code == EXIT_NOT_FOUND
    (row,) = result.json()["plan"]
    assert row["action"] == "skip"
    assert f"batch {failed.batch_id} is still open" in row["reason"]
    assert pipeline.runtime.items.get(failed.item_id) == failed  # nothing written
    pipeline.run_until_idle()  # the batch ends and closes; now the item may go back
    assert ops.ok("requeue", failed.item_id, "--json").json()["report"]["requeued"] == 1
    pipeline.run_until_idle()
    assert pipeline.runtime.items.get(failed.item_id).state is ItemState.DONE  # type: ignore[union-attr]
    assert set(batches_per_custom_id(pipeline).values()) == {1}
