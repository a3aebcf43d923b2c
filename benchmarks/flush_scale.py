"""One flush with 100,000 queued items: time and peak memory (tracemalloc), planning separated from submission.

Stand-ins, stated precisely:
- Items live in ``DictItemStore``: a dictionary of the exact DynamoDB attribute maps the real adapter writes
  (``DynamoItemRepository._attributes``), read back through the adapter's own deserialiser, with a sorted list
  per queue playing gsi1 (100-item pages, like the adapter's Query). So the flusher's CPU and memory per item are
  real, DynamoDB's latency is not: it is reported as call counts (Query pages, PutItems) instead. moto cannot
  stand in at this size: its Query scans the whole table for every page (a 10,000-item run took minutes).
- Batches, claims, the lease, events and schedules use the real adapters on moto in-process (a few calls).
- TwelveLabs is the emulator in its own process (``videobatch emulator``, virtual clock) over HTTP on 127.0.0.1,
  so tracemalloc sees only the flusher. Items reference a few real, ready assets round-robin: a batch may name
  one asset in many requests, and registering 100,000 assets would measure the emulator's probing, not the flush.

Measured:
1. *planning*: what FlushService does before its first write: load the oldest eligible queued items (it reads at
   most ``free slots x MAX_ITEMS_PER_BATCH`` = 5,000 per analysis mode, oldest first, never the whole queue) and
   ``plan_batches`` over them; load and plan timed apart (median of 3), then both under tracemalloc.
2. ``plan_batches`` alone over *all* N candidates: the domain's cost if a loader ever read the whole queue.
3. one complete ``FlushService.run()``: lease, active batches from the API, load, plan, a claim record, a
   conditional write per claimed item, five 1,000-request ``POST /analyze/batches``, batch records, items marked
   submitted, expiry schedules, events. Then the emulator's clock passes the 24 h expiry (the five slots free up)
   and a second run over the remaining N - 5,000 is measured under tracemalloc.
tracemalloc slows Python code severalfold, so times under it are only for reference.
Run: .venv/bin/python benchmarks/flush_scale.py [queued_items]
"""

from __future__ import annotations

import bisect
import dataclasses
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
from moto import mock_aws

from videobatch.adapters.dynamodb import DynamoItemRepository, _from_attributes, table_definition
from videobatch.clock import ManualClock
from videobatch.config import Settings
from videobatch.domain.items import ItemState, Window
from videobatch.domain.packing import PackCandidate, plan_batches
from videobatch.domain.records import ItemRecord, queued_queue, sort_stamp
from videobatch.errors import StaleStateError
from videobatch.runtime import Runtime, build_runtime
from videobatch.services.flusher import FlushService
from videobatch.twelvelabs import limits
from videobatch_tools import samples

T = TypeVar("T")
REGION = "us-east-1"
TABLE = "flush-scale"
BUS = "flush-scale-events"
API_KEY = "bench-key"
ASSETS = 8
VIDEO_SECONDS = 60.0
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class NullMetrics:
    def add_metric(self, name: str, unit: str, value: float) -> None:
        return None


class DictItemStore:
    """The ItemStore port over a dict of DynamoDB attribute maps, gsi1 as a sorted list per queue (see above)."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._queues: defaultdict[str, list[str]] = defaultdict(list)  # gsi1pk -> sorted gsi1sk
        self.calls: Counter[str] = Counter()

    def load(self, items: Sequence[ItemRecord]) -> None:
        for item in items:
            self._write(item.model_copy(update={"version": max(item.version, 1)}))

    def _write(self, item: ItemRecord) -> None:
        old = self._rows.get(item.item_id)
        if old is not None and "gsi1pk" in old:
            queue = self._queues[old["gsi1pk"]["S"]]
            del queue[bisect.bisect_left(queue, old["gsi1sk"]["S"])]
        attributes = DynamoItemRepository._attributes(item)
        self._rows[item.item_id] = attributes
        if "gsi1pk" in attributes:
            bisect.insort(self._queues[attributes["gsi1pk"]["S"]], attributes["gsi1sk"]["S"])

    def create(self, item: ItemRecord) -> tuple[ItemRecord, bool]:
        self.calls["PutItem"] += 1
        if item.item_id in self._rows:
            return _from_attributes(ItemRecord, self._rows[item.item_id]), False
        stored = item.model_copy(update={"version": 1})
        self._write(stored)
        return stored, True

    def get(self, item_id: str) -> ItemRecord | None:
        self.calls["GetItem"] += 1
        row = self._rows.get(item_id)
        return None if row is None else _from_attributes(ItemRecord, row)

    def get_many(self, item_ids: Sequence[str]) -> dict[str, ItemRecord]:
        self.calls["BatchGetItem"] += -(-len(item_ids) // 100)
        return {i: _from_attributes(ItemRecord, self._rows[i]) for i in item_ids if i in self._rows}

    def save(self, new: ItemRecord, expected: ItemRecord) -> ItemRecord:
        self.calls["PutItem"] += 1
        row = self._rows.get(expected.item_id)
        if row is None or int(row["version"]["N"]) != expected.version or row["state"]["S"] != expected.state.value:
            raise StaleStateError(f"item {expected.item_id} changed")
        stored = new.model_copy(update={"version": expected.version + 1})
        self._write(stored)
        return stored

    def iter_queue(self, queue: str, *, until: datetime | None = None, page_size: int = 100) -> Iterator[ItemRecord]:
        keys = self._queues.get(queue, [])
        stop = len(keys) if until is None else bisect.bisect_right(keys, f"{sort_stamp(until)}#~")
        for start in range(0, stop, page_size):
            self.calls["Query"] += 1
            page = [self._rows[key.rsplit("#", 1)[1]] for key in keys[start : min(start + page_size, stop)]]
            yield from (_from_attributes(ItemRecord, row) for row in page)

    def iter_batch_items(self, batch_id: str, *, page_size: int = 100) -> Iterator[ItemRecord]:
        raise NotImplementedError("the flusher does not read batch membership")


class EmulatorProcess:
    """``videobatch emulator`` in a child process on a free loopback port, with a virtual clock."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        cli = "import sys; from videobatch_tools.cli import main; sys.exit(main(sys.argv[1:]))"
        command = [sys.executable, "-c", cli, "emulator", "--port", str(self.port)]
        command += ["--api-key", API_KEY, "--clock", "virtual", "--asset-ready-seconds", "5"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.control = httpx.Client(base_url=self.base_url, timeout=60.0)
        for _ in range(200):
            try:
                self.control.get("/_emulator/state").raise_for_status()
                return
            except httpx.TransportError:
                time.sleep(0.05)  # waiting for a child process to listen: real time, not the pipeline's clock
        raise RuntimeError("the emulator did not start")

    def advance(self, seconds: float) -> None:
        self.control.post("/_emulator/clock", json={"advance_seconds": seconds}).raise_for_status()

    def close(self) -> None:
        self.control.close()
        self._process.terminate()
        self._process.wait(timeout=30)


def count_calls(runtime: Runtime, counts: Counter[str]) -> None:
    """AWS calls of the runtime's adapters (botocore hook) and TwelveLabs requests (httpx hook) into ``counts``."""

    def aws(model: Any, **_: Any) -> None:
        counts[f"{model.service_model.service_name} {model.name}"] += 1

    def http(request: httpx.Request) -> None:
        counts[f"twelvelabs {request.method} {request.url.path.removeprefix('/v1.3')}"] += 1

    for client in {runtime.batches._client, runtime.events._client, runtime.scheduler._client}:
        client.meta.events.register("before-call", aws)
    runtime.twelvelabs._http.event_hooks["request"].append(http)


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def traced(action: Callable[[], T]) -> tuple[T, float, int]:
    """Result, seconds and peak traced bytes of ``action`` (tracemalloc on only around it)."""
    tracemalloc.start()
    try:
        result, seconds = timed(action)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, seconds, peak


def queued_item(n: int, asset_ids: list[str], now: datetime) -> ItemRecord:
    queued_at = now - timedelta(hours=2) + timedelta(milliseconds=n)
    return ItemRecord(
        item_id=f"{n:032x}",
        bucket="videos",
        key=f"videos/clip-{n:06d}.mp4",
        version_id=f"v{n}",
        etag=f"{n:032x}",
        size_bytes=5_000_000,
        profile_name="summary",
        analysis_mode="general",
        state=ItemState.QUEUED,
        version=3,
        created_at=queued_at - timedelta(minutes=2),
        updated_at=queued_at,
        upload_method="url",
        asset_id=asset_ids[n % len(asset_ids)],
        asset_created_at=queued_at - timedelta(minutes=1),
        duration_seconds=VIDEO_SECONDS,
        windows=(Window(index=0, start_seconds=0.0, end_seconds=VIDEO_SECONDS),),
        queued_at=queued_at,
        eligible_at=queued_at,
    )


def register_assets(runtime: Runtime, emulator: EmulatorProcess, folder: Path) -> list[str]:
    asset_ids = []
    for seed in range(ASSETS):
        path = samples.write_sample_video(folder / f"a{seed}.mp4", duration_seconds=VIDEO_SECONDS, fps=1, seed=seed)
        asset_ids.append(runtime.twelvelabs.create_asset_from_file(path.read_bytes(), filename=path.name).id)
    emulator.advance(60)  # past asset_ready_seconds
    return asset_ids


def load_oldest(items: DictItemStore, per_mode: int, now: datetime) -> list[ItemRecord]:
    loaded: list[ItemRecord] = []
    for mode in limits.ANALYSIS_MODES:
        loaded.extend(islice(items.iter_queue(queued_queue(mode), until=now), per_mode))
    return loaded


def flusher(runtime: Runtime, items: DictItemStore) -> FlushService:
    return dataclasses.replace(runtime, items=items, metrics=NullMetrics()).flush_service(owner="bench")


def plan(records: list[ItemRecord], settings: Settings, now: datetime) -> Any:
    candidates = [
        PackCandidate(
            item_id=r.item_id,
            analysis_mode=r.analysis_mode,
            eligible_at=r.eligible_at or now,
            video_duration_seconds=r.duration_seconds or 0.0,
            windows=r.windows,
        )
        for r in records
    ]
    return plan_batches(
        candidates,
        now=now,
        free_slots=limits.MAX_ACTIVE_BATCHES,
        max_items=settings.max_items_per_batch,
        max_content_seconds=settings.max_content_seconds_per_batch,
        max_wait_seconds=settings.max_wait_seconds,
        content_counting=settings.content_counting,
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    clock = ManualClock(START)
    emulator = EmulatorProcess()
    try:
        with mock_aws(), tempfile.TemporaryDirectory(prefix="videobatch-flush-") as workdir:
            run(count, clock, emulator, Path(workdir))
    finally:
        emulator.close()


def run(count: int, clock: ManualClock, emulator: EmulatorProcess, workdir: Path) -> None:
    session = boto3.Session(region_name=REGION)
    session.client("dynamodb").create_table(**table_definition(TABLE))
    session.client("events").create_event_bus(Name=BUS)
    settings = Settings(
        table_name=TABLE,
        event_bus_name=BUS,
        video_bucket="uploads",
        twelvelabs_api_key_secret="unused",
        twelvelabs_base_url=f"{emulator.base_url}/v1.3",
        batch_checker_arn=f"arn:aws:lambda:{REGION}:123456789012:function:batch-checker",
        scheduler_role_arn="arn:aws:iam::123456789012:role/scheduler",
    )
    runtime = build_runtime(settings, clock=clock, session=session, api_key=API_KEY, metrics_sink=NullMetrics())
    asset_ids = register_assets(runtime, emulator, workdir)
    now = clock.now()
    items = DictItemStore()
    _, fill_seconds = timed(lambda: items.load([queued_item(n, asset_ids, now) for n in range(count)]))
    print(f"set-up: {count:,} queued items stored in {fill_seconds:.1f} s ({ASSETS} ready assets)")
    per_mode = limits.MAX_ACTIVE_BATCHES * settings.max_items_per_batch

    # 1. planning, read-only
    loads, plans = [], []
    for _ in range(3):
        items.calls.clear()
        loaded, load_seconds = timed(lambda: load_oldest(items, per_mode, now))
        planned, plan_seconds = timed(lambda: plan(loaded, settings, now))  # noqa: B023
        loads.append(load_seconds)
        plans.append(plan_seconds)
    sizes = [len(b.items) for b in planned.batches]
    print(f"\n1. planning with {count:,} queued (the flusher reads the oldest {per_mode:,} per analysis mode)")
    print(
        f"   load {len(loaded):,} items: {statistics.median(loads) * 1000:7.1f} ms "
        f"({items.calls['Query']} Query pages of 100, deserialised by the DynamoDB adapter)"
    )
    print(f"   plan_batches over them: {statistics.median(plans) * 1000:7.1f} ms -> batches of {sizes}")
    _, traced_seconds, peak = traced(lambda: plan(load_oldest(items, per_mode, now), settings, now))
    print(f"   load + plan under tracemalloc: {traced_seconds:.2f} s, peak {peak / 2**20:.1f} MiB")

    # 2. plan_batches over all N candidates
    everything = [queued_item(n, asset_ids, now) for n in range(count)]
    full_plans = [timed(lambda: plan(everything, settings, now))[1] for _ in range(3)]
    _, _, full_peak = traced(lambda: plan(everything, settings, now))
    print(f"\n2. plan_batches over all {count:,} candidates: {statistics.median(full_plans):.2f} s")
    print(f"   peak {full_peak / 2**20:.1f} MiB (the candidates it builds; the {count:,} records are excluded)")
    everything.clear()

    # 3. complete flush runs
    counts: Counter[str] = Counter()
    count_calls(runtime, counts)
    items.calls.clear()
    summary, run_seconds = timed(lambda: flusher(runtime, items).run())
    print(f"\n3. FlushService.run() with {count:,} queued: {run_seconds:.2f} s")
    print(
        f"   {summary.batches_submitted} batches, {summary.items_submitted:,} items submitted, "
        f"stop_reason={summary.stop_reason}"
    )
    counts.update({f"dynamodb {op} (items)": n for op, n in items.calls.items()})
    print("   calls: " + ", ".join(f"{op} {n}" for op, n in sorted(counts.items())))
    emulator.advance(25 * 3600)  # the five batches expire on the emulator: their slots are free again
    summary2, run2_seconds, run2_peak = traced(lambda: flusher(runtime, items).run())
    print(
        f"   second run ({count - summary.items_submitted:,} queued) under tracemalloc: {run2_seconds:.2f} s, "
        f"peak {run2_peak / 2**20:.1f} MiB, {summary2.items_submitted:,} items submitted"
    )
    runtime.twelvelabs.close()


if __name__ == "__main__":
    main()
