"""An operator's day on the local stack, with ``status --json`` read at every step:

a backlog of videos already in the bucket is backfilled; the pipeline is paused with work waiting (no new batch
while paused, the running ones are collected); resumed; one batch is canceled and its items requeued; the
failures are requeued; everything settles, and TwelveLabs' own state shows each custom_id in exactly one batch.

Two batch slots (ReservedBatchSlots 3) and three videos a batch, so the backlog of twelve needs several rounds; the
emulator works on one request at a time, so a canceled batch has requests still queued.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from twelvelabs_emulator.models import EmulatorSettings
from videobatch.domain.items import ItemState
from videobatch_tools import samples
from videobatch_tools.localstack.pipeline import LocalPipeline

from .support import Ops, batches_per_custom_id, emulator_state, faults

pytestmark = pytest.mark.integration

BACKLOG = 12
ALWAYS_FAIL = {"item_failure": {"code": "internal_error", "message": "the model crashed", "rate": 1.0}}


@pytest.fixture(scope="module")
def ops() -> Iterator[Ops]:
    overrides = {"MaxWaitSeconds": "0", "MaxItemsPerBatch": "3", "ReservedBatchSlots": "3", "MaxAttempts": "1"}
    slow = EmulatorSettings(item_concurrency=1, content_seconds_per_second=0.05, asset_ready_seconds=20.0)
    with (
        tempfile.TemporaryDirectory() as workdir,
        LocalPipeline(parameter_overrides=overrides, emulator_settings=slow, stack_name="opsday") as pipeline,
    ):
        for n in range(BACKLOG):
            path = samples.write_sample_video(Path(workdir) / f"{n}.mp4", duration_seconds=4, seed=n)
            pipeline.upload(f"backlog/{n:02d}.mp4", path.read_bytes())
        pipeline.moto.s3_notifications.drain()  # there before the stack: no event reached ingest
        yield Ops(pipeline)


def api_batches(ops: Ops) -> list[dict[str, Any]]:
    return list(emulator_state(ops.pipeline)["batches"])


def snapshot(ops: Ops, log: list[dict[str, Any]], step: str) -> dict[str, Any]:
    status = ops.status()
    counts: dict[str, int] = {}
    for entry in status["states"]:
        state = entry["state"].split(" ")[0]
        counts[state] = counts.get(state, 0) + entry["count"]
    taken = {"step": step, "totals": status["totals"], "counts": counts, "paused": status["paused"]["paused"]}
    taken["open_batches"] = len(status["open_batches"])
    log.append(taken)
    return taken


def test_backfill_pause_resume_cancel_requeue_and_settle(ops: Ops) -> None:
    pipeline, log = ops.pipeline, []
    faults(pipeline, ALWAYS_FAIL)  # the first round fails at TwelveLabs (max_attempts_exceeded): requeued at the end

    start = snapshot(ops, log, "start")
    assert start["totals"] == {"done": 0, "failed": 0, "backlog": 0}

    sent = ops.ok("backfill", f"s3://{pipeline.bucket}/backlog/", "--yes", "--json").json()
    assert sent["sent"] == BACKLOG
    pipeline.run_until(lambda: len(api_batches(ops)) == 2)
    first = snapshot(ops, log, "backfilled, first batches sent")
    assert first["totals"]["backlog"] == BACKLOG
    assert (first["counts"]["submitted"], first["counts"]["queued"], first["open_batches"]) == (6, 6, 2)

    ops.ok("pause", "--reason", "scenario")
    paused = snapshot(ops, log, "paused")
    assert paused["paused"] is True
    pipeline.run_for(2 * 3600)  # the two batches run to their end and are collected; no new one is sent
    assert len(api_batches(ops)) == 2
    waiting = snapshot(ops, log, "paused, running batches collected")
    assert waiting["totals"] == {"done": 0, "failed": 6, "backlog": 6}
    assert (waiting["counts"]["queued"], waiting["open_batches"]) == (6, 0)

    faults(pipeline)  # TwelveLabs is healthy again
    ops.ok("resume")
    pipeline.run_until(lambda: any(b["status"] == "processing" for b in api_batches(ops)))
    resumed = snapshot(ops, log, "resumed")
    assert (resumed["paused"], resumed["open_batches"]) == (False, 2)
    running = next(b for b in api_batches(ops) if b["status"] == "processing")
    canceled = ops.ok("cancel-batch", running["batch_id"], "--requeue", "--wait-seconds", "0", "--yes", "--json")
    report = canceled.json()["report"]
    assert (report["items_requeued"], report["items_left"]) == (2, 1)  # two queued at TwelveLabs, one running
    snapshot(ops, log, "one batch canceled")

    pipeline.run_until_idle()
    settled = snapshot(ops, log, "settled")
    assert settled["totals"] == {"done": 6, "failed": 6, "backlog": 0}

    report = ops.ok("requeue", "--code", "max_attempts_exceeded", "--yes", "--json").json()["report"]
    assert (report["requeued"], report["lost_races"]) == (6, 0)
    requeued = snapshot(ops, log, "failures requeued")
    assert requeued["totals"] == {"done": 6, "failed": 0, "backlog": 6}
    pipeline.run_until_idle()
    final = snapshot(ops, log, "all done")
    assert final["totals"] == {"done": BACKLOG, "failed": 0, "backlog": 0}
    assert final["open_batches"] == 0

    items = [item for item in pipeline.items() if item.key.startswith("backlog/")]
    assert len(items) == BACKLOG
    assert {item.state for item in items} == {ItemState.DONE}
    seen = batches_per_custom_id(pipeline)
    assert set(seen.values()) == {1}, "a custom_id in two batches: submitted twice"
    # Every video's analysis that produced its result is in exactly one batch, and the canceled batch is among them.
    assert canceled.json()["batch_id"] in {b["batch_id"] for b in api_batches(ops)}
    assert len(log) == 9
    assert [entry["step"] for entry in log][-1] == "all done"
