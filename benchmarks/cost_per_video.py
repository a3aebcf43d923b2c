"""DynamoDB capacity, TwelveLabs calls and batch-create bytes per video, for a burst that keeps batches open.

Set-up, stated precisely:
- The real runtime (``build_runtime``): the real adapters on moto in-process, the real TwelveLabs client against
  the emulator (its own thread, HTTP on 127.0.0.1, the same virtual clock), the real services.
- N videos (default 3,000) arrive at once as ingest leaves them (``registered`` created, then the asset recorded:
  ingest's two item writes, made through the same writer), on a handful of real ready assets used round-robin
  (registering 3,000 would measure the emulator's probing). Each video lasts 60 s.
- The emulator works on 10 items of a batch at a time at 2.86 content-seconds per second, so a 1,000-request batch
  stays open about 35 minutes and its results appear progressively (submission order), as the real API's do.
- Every virtual minute the asset checker, the flusher and the batch checker run (the template's default rates),
  every 15 minutes the sweeper, until every video is done; at least one sweep happens with batches in flight.
- DynamoDB capacity: ``dynamodb_meter.Meter`` on the client the adapters use (DynamoDB's size rules, a copy per
  index, transactions twice). TwelveLabs: every HTTP request the client sends (retries included).

Prints the breakdown, then one line:
  cost_per_video: wcu=... rcu=... twelvelabs_calls=... create_body_bytes_per_1000=...
Run: .venv/bin/python benchmarks/cost_per_video.py [videos]
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import boto3
import httpx
from dynamodb_meter import Meter
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
from videobatch.services.ports import ItemStore
from videobatch_tools import samples

REGION = "us-east-1"
TABLE = "cost-bench"
BUCKET = "uploads"
BUS = "cost-bench-events"
API_KEY = "bench-key"
ASSETS = 6
VIDEO_SECONDS = 60.0
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SWEEP_EVERY_MINUTES = 15


class NullMetrics:
    def add_metric(self, name: str, unit: str, value: float) -> None:
        return None


def main(videos: int) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION}.items():
        os.environ.setdefault(name, value)
    clock = ManualClock(START)
    settings_model = EmulatorSettings(item_concurrency=10, content_seconds_per_second=2.86, asset_ready_seconds=1)
    config = EmulatorConfig(api_key=API_KEY, settings=settings_model)
    with mock_aws(), EmulatorServer(config, clock=clock) as emulator, tempfile.TemporaryDirectory() as folder:
        session = boto3.Session(region_name=REGION)
        create_table(session.client("dynamodb"), TABLE)
        session.client("s3").create_bucket(Bucket=BUCKET)
        session.client("events").create_event_bus(Name=BUS)
        settings = Settings(
            table_name=TABLE,
            event_bus_name=BUS,
            video_bucket=BUCKET,
            twelvelabs_api_key_secret="unused",
            twelvelabs_base_url=emulator.api_url,
            batch_checker_arn=f"arn:aws:lambda:{REGION}:123456789012:function:batch-checker",
            scheduler_role_arn="arn:aws:iam::123456789012:role/scheduler",
        )
        runtime = build_runtime(settings, clock=clock, session=session, api_key=API_KEY, metrics_sink=NullMetrics())
        assets = _register_assets(runtime, clock, Path(folder))
        twelvelabs = _count_requests(runtime)
        meter = Meter(runtime.items._client, session.client("dynamodb")).install()  # type: ignore[attr-defined]
        _arrive(runtime, videos, assets)
        unmetered = DynamoItemRepository(session.client("dynamodb"), TABLE)
        minutes, sweeps_in_flight = _drive(runtime, clock, videos, unmetered)
        _report(meter, twelvelabs, videos, minutes, sweeps_in_flight)
        runtime.twelvelabs.close()


def _register_assets(runtime: Runtime, clock: ManualClock, folder: Path) -> list[str]:
    ids = []
    for seed in range(ASSETS):
        path = samples.write_sample_video(folder / f"a{seed}.mp4", duration_seconds=VIDEO_SECONDS, fps=1, seed=seed)
        ids.append(runtime.twelvelabs.create_asset_from_file(path.read_bytes(), filename=path.name).id)
    clock.advance(5)
    return ids


class _Requests:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.create_body_bytes = 0
        self.create_requests = 0

    def hook(self, request: httpx.Request) -> None:
        path = request.url.path.removeprefix("/v1.3")
        kind = "/analyze/batches/{id}..." if path.startswith("/analyze/batches/") else path
        self.calls[f"{request.method} {kind}"] += 1
        if request.method == "POST" and path == "/analyze/batches":
            body = request.read()
            self.create_body_bytes += len(body)
            self.create_requests += body.count(b'"custom_id"')


def _count_requests(runtime: Runtime) -> _Requests:
    counter = _Requests()
    runtime.twelvelabs._http.event_hooks["request"].append(counter.hook)  # type: ignore[attr-defined]
    return counter


def _arrive(runtime: Runtime, videos: int, assets: list[str]) -> None:
    """Each video as ingest leaves it: registered, then its asset recorded (the same two writes, same writer)."""
    writer = runtime.item_writer()
    now = runtime.clock.now()
    for n in range(videos):
        upload = UploadedObject(bucket=BUCKET, key=f"burst/video-{n:05d}.mp4", version_id=f"v{n}", size_bytes=4_000_000)
        item = ItemRecord.registered(
            upload, profile_name="summary", analysis_mode="general", upload_method="url", now=now
        )
        stored, _ = writer.create(item)
        writer.save(stored.asset_created(assets[n % len(assets)], now=now), stored)


def _drive(runtime: Runtime, clock: ManualClock, videos: int, unmetered: ItemStore) -> tuple[int, int]:
    minutes = sweeps_in_flight = 0
    while True:
        clock.advance(60)
        minutes += 1
        runtime.asset_check_service().run()
        runtime.flush_service(owner="bench").run()
        runtime.batch_check_service().check_open()
        if minutes % SWEEP_EVERY_MINUTES == 0:
            in_flight = any(True for _ in runtime.batches.iter_open())
            runtime.sweep_service().run()
            sweeps_in_flight += in_flight
        if minutes % 10 == 0 and _all_done(unmetered, videos):
            return minutes, sweeps_in_flight
        if minutes > 24 * 60:
            raise RuntimeError("not done after a virtual day")


def _all_done(items: ItemStore, videos: int) -> bool:
    """Read outside the meter: the benchmark's own looking is not the pipeline's cost."""
    ids = [item_id_for(BUCKET, f"burst/video-{n:05d}.mp4", f"v{n}") for n in range(videos)]
    return all(item.state is ItemState.DONE for item in items.get_many(ids).values())


def _report(meter: Meter, twelvelabs: _Requests, videos: int, minutes: int, sweeps_in_flight: int) -> None:
    print(f"{videos} videos, done after {minutes} virtual minutes; {sweeps_in_flight} sweep(s) with batches open")
    print("DynamoDB calls:", dict(sorted(meter.calls.items())))
    print("WCU by operation:", {k: round(v) for k, v in sorted(meter.wcu_by_operation.items())})
    print("WCU by record:", {k: round(v) for k, v in sorted(meter.wcu_by_record.items())})
    print("RCU by operation:", {k: round(v) for k, v in sorted(meter.rcu_by_operation.items())})
    print("TwelveLabs calls:", dict(sorted(twelvelabs.calls.items())))
    per_1000 = twelvelabs.create_body_bytes / max(twelvelabs.create_requests, 1) * 1000
    calls = sum(twelvelabs.calls.values())
    print(
        f"cost_per_video: wcu={meter.wcu / videos:.2f} rcu={meter.rcu / videos:.2f} "
        f"twelvelabs_calls={calls / videos:.3f} create_body_bytes_per_1000={per_1000:.0f}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
