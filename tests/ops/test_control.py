"""``videobatch pause`` / ``resume`` and ``cancel-batch`` against the local stack.

The emulator works on one request at a time, slowly, so a batch is still running with requests queued when it is
canceled: those are canceled at once, the running one ends on its own (TwelveLabs' cancel semantics)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from twelvelabs_emulator.models import EmulatorSettings
from videobatch.domain.items import ItemState
from videobatch_ops.common import EXIT_ERROR, EXIT_NOT_FOUND
from videobatch_tools import samples
from videobatch_tools.localstack.pipeline import LocalPipeline

from .support import Ops, batches_per_custom_id, emulator_state

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ops() -> Iterator[Ops]:
    slow = EmulatorSettings(item_concurrency=1, content_seconds_per_second=0.01, asset_ready_seconds=20.0)
    with LocalPipeline(
        parameter_overrides={"MaxWaitSeconds": "0"}, emulator_settings=slow, stack_name="opsctl"
    ) as pipeline:
        yield Ops(pipeline)


@pytest.fixture(scope="module")
def videos() -> Iterator[list[Path]]:
    with tempfile.TemporaryDirectory() as workdir:
        yield [
            samples.write_sample_video(Path(workdir) / f"{seed}.mp4", duration_seconds=4, seed=seed)
            for seed in range(3)
        ]


def upload(ops: Ops, prefix: str, videos: list[Path]) -> None:
    for n, path in enumerate(videos):
        ops.pipeline.upload(f"{prefix}{n}.mp4", path.read_bytes())


def items(ops: Ops, prefix: str) -> list[object]:
    return [item for item in ops.pipeline.items() if item.key.startswith(prefix)]


def api_batches(ops: Ops) -> int:
    return len(emulator_state(ops.pipeline)["batches"])


def metric_values(ops: Ops, name: str) -> list[float]:
    """Every data point of a pipeline metric the functions printed (EMF), oldest first."""
    store = ops.pipeline.wiring.metrics
    (key,) = [k for k in store.series_keys() if k.namespace == "VideoBatch" and k.name == name]
    return store.points(key, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


# --- pause / resume ---------------------------------------------------------------------------------------------


def test_pause_stops_new_batches_and_resume_starts_them(ops: Ops, videos: list[Path]) -> None:
    dry = ops.ok("pause", "--reason", "maintenance", "--dry-run", "--json").json()
    assert (dry["paused"], dry["changed"]) == (False, False)
    assert ops.status()["paused"]["paused"] is False
    assert "paused (maintenance)" in ops.ok("pause", "--reason", "maintenance").out
    status = ops.status()["paused"]
    assert (status["paused"], status["reason"]) == (True, "maintenance")
    assert "pipeline: PAUSED since" in ops.ok("status").out
    again = ops.ok("pause", "--reason", "other", "--json").json()
    assert (again["changed"], again["reason"]) == (False, "maintenance")  # idempotent: nothing rewritten
    before = api_batches(ops)
    upload(ops, "paused/", videos)
    ops.pipeline.run_for(1800)  # the schedules fire for half an hour
    assert api_batches(ops) == before  # no new batch while paused
    assert {item.state for item in items(ops, "paused/")} == {ItemState.QUEUED}  # type: ignore[attr-defined]
    assert ops.counts()["queued"] == 3
    assert set(metric_values(ops, "PipelinePaused")) == {1.0}
    assert "resumed" in ops.ok("resume").out
    assert "already running" in ops.ok("resume").out
    ops.pipeline.run_until_idle()
    assert {item.state for item in items(ops, "paused/")} == {ItemState.DONE}  # type: ignore[attr-defined]
    assert metric_values(ops, "PipelinePaused")[-1] == 0.0


# --- cancel-batch -----------------------------------------------------------------------------------------------


def running_batch(ops: Ops, prefix: str, videos: list[Path]) -> str:
    upload(ops, prefix, videos)
    ops.pipeline.run_until(lambda: any(b["status"] == "processing" for b in emulator_state(ops.pipeline)["batches"]))
    (batch,) = [b for b in ops.status()["open_batches"] if b["items"] == len(videos)]
    return str(batch["batch_id"])


@pytest.mark.parametrize(
    ("batch_id", "message"),
    [("0" * 24, "no batch 000000000000000000000000 recorded"), ("bad id!", "is not a batch id")],
)
def test_an_unknown_or_malformed_batch_is_exit_2(ops: Ops, batch_id: str, message: str) -> None:
    result = ops.run("cancel-batch", batch_id, "--yes")
    assert (result.code, result.out) == (EXIT_ERROR, "")
    assert message in result.err


def test_cancel_requeue_keeps_what_finished_and_requeues_the_rest(ops: Ops, videos: list[Path]) -> None:
    batch_id = running_batch(ops, "cancel/", videos)
    dry = ops.ok("cancel-batch", batch_id, "--dry-run", "--json").json()
    assert (dry["items_submitted"], dry["report"]) == (3, None)
    result = ops.run("cancel-batch", batch_id)  # three items, no --yes, no terminal to ask on
    assert result.code == EXIT_ERROR
    assert "pass --yes" in result.err
    api = {b["batch_id"]: b for b in emulator_state(ops.pipeline)["batches"]}
    assert api[batch_id]["status"] == "processing"  # nothing canceled so far
    report = ops.ok("cancel-batch", batch_id, "--requeue", "--wait-seconds", "0", "--yes", "--json").json()["report"]
    # One request was running (it ends on its own), two were queued (canceled at once, requeued now).
    assert (report["cancel_sent"], report["api_status"]) == (True, "canceling")
    assert (report["items_requeued"], report["items_left"], report["items_failed"]) == (2, 1, 0)
    requeued = [i for i in items(ops, "cancel/") if i.state is ItemState.QUEUED]  # type: ignore[attr-defined]
    assert len(requeued) == 2
    assert all("canceled_by_operator" in (i.note or "") for i in requeued)  # type: ignore[attr-defined]
    ops.pipeline.run_until_idle()
    assert {i.state for i in items(ops, "cancel/")} == {ItemState.DONE}  # type: ignore[attr-defined]
    assert set(batches_per_custom_id(ops.pipeline).values()) == {1}
    assert api_state(ops, batch_id) == "canceled"
    closed = ops.run("cancel-batch", batch_id, "--yes")
    assert closed.code == EXIT_NOT_FOUND
    assert "closed already" in closed.err


def test_cancel_fail_fails_what_did_not_finish(ops: Ops, videos: list[Path]) -> None:
    batch_id = running_batch(ops, "failing/", videos)
    report = ops.ok("cancel-batch", batch_id, "--fail", "--wait-seconds", "0", "--yes", "--json").json()["report"]
    assert (report["items_failed"], report["items_left"], report["items_requeued"]) == (3, 0, 0)
    failed = items(ops, "failing/")
    assert {i.state for i in failed} == {ItemState.FAILED}  # type: ignore[attr-defined]
    assert {i.failure.code for i in failed} == {"canceled_by_operator"}  # type: ignore[attr-defined]
    ops.pipeline.run_until_idle()
    assert {i.state for i in items(ops, "failing/")} == {ItemState.FAILED}  # type: ignore[attr-defined]
    assert batch_id not in {b["batch_id"] for b in ops.status()["open_batches"]}  # closed once it ended
    # Not a pipeline failure: the operator chose it.
    assert ops.status()["states"][-1]["pipeline"] == 0


def api_state(ops: Ops, batch_id: str) -> str:
    response = httpx.get(f"{ops.pipeline.emulator.base_url}/_emulator/state").json()
    return str(next(b["status"] for b in response["batches"] if b["batch_id"] == batch_id))
