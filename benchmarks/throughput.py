"""Are the account's batch slots kept busy under a backlog, and does a trickle wait for nothing?

Set-up, stated precisely (virtual time; the real runtime, adapters on moto in-process, the emulator over HTTP):
- The functions run on the template's schedules: asset checker, flusher and batch checker every minute (the flusher
  one second after the others, as schedules of equal rate drift apart), the sweeper every 15 minutes.
- Time stands still inside a handler except where it waits on purpose (``clock.sleep``): DynamoDB and TwelveLabs
  latency is not modelled. A 1,000-item claim is ~2,000 writes; written 16 at a time that is ~0.6 s on DynamoDB
  (5 ms a write), small against the one-minute schedule this measures.
- (a) backlog: 3,000 one-minute videos at once, MaxItemsPerBatch 100 (30 batches), five slots; the emulator
  works through a 100-request batch in about 14 minutes. Measured over the span in which videos waited (first
  submission to last): the share of slot-time a pipeline batch was active, and the mean fill of its batches.
- (b) trickle: one video a minute for four hours (each gets its own asset, ready 30 s after upload), the default
  MaxWaitSeconds (900). Measured: upload -> submit wait per video (p50, p99) and the share of slot-time in use.

Prints each scenario, then one line:
  throughput: backlog_busy=... backlog_fill=... trickle_wait_p50_s=... trickle_wait_p99_s=...
Run: .venv/bin/python benchmarks/throughput.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from twelvelabs_emulator import EmulatorServer
from twelvelabs_emulator.models import EmulatorSettings
from twelvelabs_emulator.server import EmulatorConfig
from videobatch.adapters.dynamodb import DynamoItemRepository, create_table
from videobatch.clock import ManualClock
from videobatch.config import Settings
from videobatch.domain.items import ItemState, item_id_for
from videobatch.domain.records import ItemRecord, UploadedObject
from videobatch.runtime import Runtime, build_runtime
from videobatch_tools import samples

REGION = "us-east-1"
TABLE = "throughput-bench"
BUCKET = "uploads"
BUS = "throughput-events"
API_KEY = "bench-key"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
VIDEO_SECONDS = 60.0


class NullMetrics:
    def add_metric(self, name: str, unit: str, value: float) -> None:
        return None


@dataclass
class Scenario:
    runtime: Runtime
    clock: ManualClock
    items: DynamoItemRepository  # an unmetered view for the benchmark's own looking
    emulator: EmulatorServer
    folder: Path


def main() -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION}.items():
        os.environ.setdefault(name, value)
    busy, fill = backlog()
    wait_p50, wait_p99, slot_use = trickle()
    print(f"backlog: slots busy {busy:.1%} of the time videos waited, mean batch fill {fill:.1%}")
    print(f"trickle: upload->submit wait p50 {wait_p50:.0f} s, p99 {wait_p99:.0f} s; slots in use {slot_use:.1%}")
    print(
        f"throughput: backlog_busy={busy:.3f} backlog_fill={fill:.3f} "
        f"trickle_wait_p50_s={wait_p50:.0f} trickle_wait_p99_s={wait_p99:.0f}"
    )


def _scenario(emulator_settings: EmulatorSettings, **settings: Any) -> Callable[[], Any]:
    """A context manager factory: moto, the emulator and a runtime on one virtual clock."""
    from contextlib import ExitStack, contextmanager

    @contextmanager
    def scenario() -> Any:
        with ExitStack() as stack:
            clock = ManualClock(START)
            stack.enter_context(mock_aws())
            config = EmulatorConfig(api_key=API_KEY, settings=emulator_settings)
            emulator = stack.enter_context(EmulatorServer(config, clock=clock))
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            session = boto3.Session(region_name=REGION)
            create_table(session.client("dynamodb"), TABLE)
            session.client("s3").create_bucket(Bucket=BUCKET)
            session.client("events").create_event_bus(Name=BUS)
            values = {
                "table_name": TABLE,
                "event_bus_name": BUS,
                "video_bucket": BUCKET,
                "twelvelabs_api_key_secret": "unused",
                "twelvelabs_base_url": emulator.api_url,
                "batch_checker_arn": f"arn:aws:lambda:{REGION}:123456789012:function:batch-checker",
                "scheduler_role_arn": "arn:aws:iam::123456789012:role/scheduler",
                **settings,
            }
            runtime = build_runtime(
                Settings.model_validate(values),
                clock=clock,
                session=session,
                api_key=API_KEY,
                metrics_sink=NullMetrics(),
            )
            items = DynamoItemRepository(session.client("dynamodb"), TABLE)
            yield Scenario(runtime, clock, items, emulator, folder)
            runtime.twelvelabs.close()

    return scenario


def _asset(scenario: Scenario, seed: int) -> str:
    path = samples.write_sample_video(
        scenario.folder / f"a{seed}.mp4", duration_seconds=VIDEO_SECONDS, fps=1, seed=seed % 7
    )
    return scenario.runtime.twelvelabs.create_asset_from_file(path.read_bytes(), filename=path.name).id


def _arrive(scenario: Scenario, n: int, asset_id: str) -> None:
    """A video as ingest leaves it: registered, then its asset recorded (ingest's two writes, the same writer)."""
    writer = scenario.runtime.item_writer()
    now = scenario.clock.now()
    upload = UploadedObject(bucket=BUCKET, key=f"v/{n:05d}.mp4", version_id=f"v{n}", size_bytes=4_000_000)
    item = ItemRecord.registered(upload, profile_name="summary", analysis_mode="general", upload_method="url", now=now)
    stored, _ = writer.create(item)
    writer.save(stored.asset_created(asset_id, now=now), stored)


def _minute(scenario: Scenario, minute: int) -> None:
    runtime = scenario.runtime
    runtime.asset_check_service().run()
    runtime.batch_check_service().check_open()
    scenario.clock.advance(1)
    runtime.flush_service(owner="bench").run()
    if minute % 15 == 0:
        runtime.sweep_service().run()


def _submitted(scenario: Scenario, videos: int) -> list[ItemRecord]:
    ids = [item_id_for(BUCKET, f"v/{n:05d}.mp4", f"v{n}") for n in range(videos)]
    return list(scenario.items.get_many(ids).values())


def _pipeline_batches(scenario: Scenario) -> list[Any]:
    return [b for b in scenario.runtime.twelvelabs.iter_batches() if b.total_items and b.created_at >= START]


def _active_seconds(batch: Any, start: datetime, end: datetime) -> float:
    finished = batch.completed_at or batch.canceled_at or batch.expired_at or end
    lo, hi = max(batch.created_at, start), min(finished, end)
    return max(0.0, (hi - lo).total_seconds())


def backlog(videos: int = 3000, per_batch: int = 100) -> tuple[float, float]:
    emulator = EmulatorSettings(item_concurrency=7, content_seconds_per_second=1.0, asset_ready_seconds=1)
    with _scenario(emulator, max_items_per_batch=per_batch)() as scenario:
        assets = [_asset(scenario, seed) for seed in range(6)]
        scenario.clock.advance(5)
        for n in range(videos):
            _arrive(scenario, n, assets[n % len(assets)])
        minute = 0
        while True:
            minute += 1
            scenario.clock.advance(59)
            _minute(scenario, minute)
            records = _submitted(scenario, videos)
            if all(item.state is ItemState.DONE for item in records):
                break
        submits = sorted(item.submitted_at for item in records if item.submitted_at)
        start, end = submits[0], submits[-1]  # the span in which videos waited for a slot
        batches = _pipeline_batches(scenario)
        usable = scenario.runtime.settings.max_active_batches - scenario.runtime.settings.reserved_batch_slots
        busy = sum(_active_seconds(b, start, end) for b in batches) / (usable * (end - start).total_seconds())
        fill = statistics.mean(b.total_items / per_batch for b in batches)
        print(f"backlog: {videos} videos, {len(batches)} batches, done after {minute} virtual minutes")
        return busy, fill


def trickle(hours: float = 4.0) -> tuple[float, float, float]:
    emulator = EmulatorSettings(item_concurrency=4, content_seconds_per_second=2.0, asset_ready_seconds=30)
    with _scenario(emulator)() as scenario:
        videos = int(hours * 60)
        minute = 0
        while True:
            minute += 1
            if minute <= videos:
                _arrive(scenario, minute - 1, _asset(scenario, minute))
            scenario.clock.advance(59)
            _minute(scenario, minute)
            if minute >= videos and all(item.state is ItemState.DONE for item in _submitted(scenario, videos)):
                break
        records = _submitted(scenario, videos)
        waits = sorted((item.submitted_at - item.created_at).total_seconds() for item in records if item.submitted_at)
        batches = _pipeline_batches(scenario)
        end = scenario.clock.now()
        usable = scenario.runtime.settings.max_active_batches - scenario.runtime.settings.reserved_batch_slots
        slot_use = sum(_active_seconds(b, START, end) for b in batches) / (usable * (end - START).total_seconds())
        print(f"trickle: {videos} videos in {len(batches)} batches over {minute} virtual minutes")
        p99 = waits[min(len(waits) - 1, round(0.99 * (len(waits) - 1)))]
        return statistics.median(waits), p99, slot_use


if __name__ == "__main__":
    main()
