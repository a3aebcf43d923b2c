"""The simulation: the real handlers and domain on the local stack, days of uploads on a virtual clock, faults
injected, invariants checked after every wiring step.

One loop, on the pipeline's ManualClock: put the uploads that are due (seeded times spread over each day),
re-publish delayed copies of earlier S3 events, switch the emulator's slow periods on and off, ``wiring.step()``
(S3 -> EventBridge -> SQS -> ingest, schedules, one-time expiry checks), then observe the emulator's batches and
check every invariant (``invariants``). When the step did no work the clock moves to whatever is due next; when
every uploaded object is a terminal item and nothing external is due, it jumps straight to the next upload (the
periodic functions would find nothing to do in between). After the last day it runs on until settled, at most
``settle_days`` more.

Two backends run the same loop, handlers, wiring, faults and invariants (``backend``): ``memory`` (the default,
``localstack.memory_pipeline``: the in-memory ports and the emulator's core in process, no socket) and ``moto``
(``localstack.pipeline``: moto's server and the emulator over HTTP). ``BACKEND_LIMITS`` says what the memory
backend cannot reproduce.
"""

from __future__ import annotations

import copy
import heapq
import json
import random
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, TextIO, cast
from urllib.parse import quote_plus

import httpx

from twelvelabs_emulator.limits import TERMINAL_BATCH_STATUSES
from twelvelabs_emulator.models import EmulatorSettings
from twelvelabs_emulator.variants import Variant
from videobatch.domain.items import ItemState, item_id_for
from videobatch.domain.results import result_key
from videobatch.twelvelabs.client import TwelveLabsClient
from videobatch.twelvelabs.retry import RetryPolicy
from videobatch_tools.localstack.memory_pipeline import EMULATOR_API_URL, EMULATOR_BASE_URL, MemoryPipeline
from videobatch_tools.localstack.pipeline import Handler, LocalPipeline
from videobatch_tools.simulate.hostile import EXPECTED, OBJECT_KINDS, OTHER_BUCKET, HostileAct, plan_hostile
from videobatch_tools.simulate.injector import (
    CrashInjector,
    FaultLog,
    Turnstile,
    handler_scope,
    instrument,
)
from videobatch_tools.simulate.invariants import InvariantChecker, Limits, ObservedBatch, ObservedRequest
from videobatch_tools.simulate.profiles import ITEM_FAILURE_CODES, PROFILES, FaultProfile, emulator_fault_rules
from videobatch_tools.simulate.workload import PlannedUpload, plan_uploads, sample_pool

INTERLEAVED_FUNCTIONS = ("FlusherFunction", "BatchCheckerFunction")
ATTEMPT_TIMEOUT_SECONDS = 1.0
LATENCY_SECONDS = 1.2  # beyond the attempt timeout
FAST = {"content_seconds_per_second": 600.0, "asset_ready_seconds": 20.0}
SLOW_PROCESSING = {"content_seconds_per_second": 0.0002}  # a 20 s window takes 28 h: its batch expires first
SLOW_ASSETS = {"asset_ready_seconds": 3 * 3600.0}
STORED_CHECK_EVERY_STEPS = 200
COUNTED = ("lost", "double_submitted", "limit_violation", "stale_overwrite", "hostile_harm")
BACKENDS: Final = ("memory", "moto")
# What a fault profile means on the memory backend where it differs from moto's (shown by ``--list-profiles``).
BACKEND_LIMITS: Final[dict[str, str]] = {
    "api": (
        "latency beyond the attempt timeout is a timeout at once (no real 1.2 s wait) and the slow request is not "
        "carried out (only safe GETs get latency rules); a lost response is the same RemoteProtocolError"
    ),
    "crashes": "crashes at port boundaries as on moto; none inside boto3 or DynamoDB (there are none in memory)",
    "expiry": "same",
    "events": "same (duplicates are injected upstream of SQS; neither backend adds SQS's own duplicates)",
    "none": "same",
    "hostile": "same",
    "all": "as api, crashes, expiry, events and hostile",
}


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 1
    days: int = 2
    videos_per_day: int = 30
    faults: str = "none"
    settle_days: float = 4.0
    schedule_minutes: int = 5  # rate of the asset checker, flusher and batch checker (the template's default: 1)
    max_items_per_batch: int = 12
    reserved_batch_slots: int = 1
    backend: str = "memory"  # memory | moto
    api_variants: tuple[str, ...] = ()  # the emulator's variants (twelvelabs_emulator.variants), together
    progress_hours: float = 24.0  # virtual hours between progress lines (when a progress stream is given)


@dataclass
class SimulationResult:
    config: SimulationConfig
    uploads: int
    counts: Counter[str]
    faults: Counter[str]
    steps: int
    wall_seconds: float
    virtual_seconds: float
    # Wall time of the stepping loop alone (no set-up: servers, sample media, imports): what steps/s divides by.
    loop_seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    # Step boundaries (handler, before/after, port call) the run reached, and those it never crashed at.
    boundaries_reached: int = 0
    boundaries_crashed: list[str] = field(default_factory=list)
    boundaries_not_crashed: list[str] = field(default_factory=list)
    # The normal (not hostile) uploads by key: final state and seconds from upload to it (isolation checks).
    settled_by_key: dict[str, tuple[str, float]] = field(default_factory=dict)

    @property
    def steps_per_second(self) -> float:
        return self.steps / max(self.loop_seconds, 1e-9)

    @property
    def ok(self) -> bool:
        return not any(self.counts[kind] for kind in COUNTED)

    @property
    def settled(self) -> bool:
        return self.counts["pending"] == 0

    def final_line(self) -> str:
        c = self.counts
        return (
            f"simulate: seed={self.config.seed} days={self.config.days} videos={self.uploads} "
            f"done={c['done']} failed={c['failed']} pending={c['pending']} lost={c['lost']} "
            f"double_submitted={c['double_submitted']} limit_violations={c['limit_violation']} "
            f"stale_overwrites={c['stale_overwrite']} hostile_harm={c['hostile_harm']}"
            + (f" api_variants={','.join(self.config.api_variants)}" if self.config.api_variants else "")
            + (f" faults={self.config.faults}" if self.config.api_variants else "")
        )


@dataclass(order=True)
class _Due:
    at: datetime
    order: int
    kind: str = field(compare=False)
    payload: Any = field(compare=False)


class Simulation:
    def __init__(self, config: SimulationConfig) -> None:
        if config.faults not in PROFILES:
            raise ValueError(f"unknown fault profile {config.faults!r}; one of {', '.join(PROFILES)}")
        if config.backend not in BACKENDS:
            raise ValueError(f"unknown backend {config.backend!r}; one of {', '.join(BACKENDS)}")
        self._variants = frozenset(Variant(name) for name in config.api_variants)
        self.config = config
        self.profile: FaultProfile = PROFILES[config.faults]
        self.log = FaultLog()
        self._rng = random.Random(config.seed)
        self._crash_rng = random.Random(f"{config.seed}:crash")
        self._hook_rng = random.Random(f"{config.seed}:hook")
        self._turnstile = Turnstile(random.Random(f"{config.seed}:turnstile"), on_switch=self._maybe_stall)
        self._stall_pending = False
        self._due: list[_Due] = []
        self._order = 0
        self._seen_messages: set[str] = set()
        self._pipeline: LocalPipeline | MemoryPipeline | None = None
        # Batches seen ended: the API never changes them again, so they are not observed again.
        self._ended_batches: set[str] = set()
        self._raw_items: Any = None
        self._normal_keys: dict[str, str] = {}  # item id -> key of the normal (not hostile) uploads
        # What this profile's own faults may fail any item with (a hostile item too: then that is its true reason).
        self._injected_codes = (
            frozenset({*ITEM_FAILURE_CODES, "max_attempts_exceeded"}) if self.profile.item_failure_rate else frozenset()
        )

    # --- the run --------------------------------------------------------------------------------------------

    def run(self, *, progress: TextIO | None = None) -> SimulationResult:
        with warnings.catch_warnings():
            # A handler crashed before it added a metric: Powertools says so when flushing; that is the crash.
            warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
            return self._run(progress)

    def _run(self, progress: TextIO | None) -> SimulationResult:
        started = time.perf_counter()
        config = self.config
        minutes = config.schedule_minutes
        rate = f"rate({minutes} minute{'s' if minutes != 1 else ''})"
        overrides = {
            "AssetCheckRate": rate,
            "FlushRate": rate,
            "BatchCheckRate": rate,
            "SweepRate": f"rate({max(15, minutes)} minutes)",
            "ReservedBatchSlots": str(config.reserved_batch_slots),
            # Small batches, so a few dozen videos a day exercise packing limits and slots.
            "MaxItemsPerBatch": str(config.max_items_per_batch),
            "MaxContentSecondsPerBatch": str(6 * 3600),
        }
        pipeline_class = MemoryPipeline if config.backend == "memory" else LocalPipeline
        with pipeline_class(
            emulator_settings=EmulatorSettings(item_concurrency=8, variants=self._variants, **FAST),
            parameter_overrides=overrides,
            seed=config.seed,
            stack_name=f"videobatch-sim-{uuid.uuid4().hex[:8]}",
            handler_hook=self._hook,
        ) as pipeline:
            self._pipeline = pipeline
            settings = pipeline.settings
            checker = InvariantChecker(
                Limits(
                    max_active=settings.max_active_batches - settings.reserved_batch_slots,
                    max_items=settings.max_items_per_batch,
                    max_content_seconds=settings.max_content_seconds_per_batch,
                )
            )
            self._install(pipeline, checker)
            pool = sample_pool()
            start = pipeline.clock.now()
            plan = plan_uploads(
                self._rng, start=start, days=config.days, per_day=config.videos_per_day, profile=self.profile
            )
            for upload in plan:
                self._schedule(upload.at, "upload", upload)
            hostile = plan_hostile(config.seed, start=start, days=config.days, per_day=self.profile.hostile_per_day)
            for act in hostile:
                self._schedule(act.at, "hostile", act)
            self._schedule_slow_periods(start)
            loop_started = time.perf_counter()
            steps = self._loop(pipeline, checker, pool, start, progress)
            loop_seconds = time.perf_counter() - loop_started
            self._final_checks(pipeline, checker)
            faults = Counter(self.log.counts) + self._emulator_faults(pipeline)
            virtual = (pipeline.clock.now() - start).total_seconds()
        counts = checker.counts()
        violations = [f"{v.kind}: {v.subject}: {v.detail}" for v in checker.violations]
        return SimulationResult(
            config=config,
            uploads=len(plan) + sum(act.kind in OBJECT_KINDS for act in hostile),
            counts=counts,
            faults=faults,
            steps=steps,
            wall_seconds=time.perf_counter() - started,
            loop_seconds=loop_seconds,
            virtual_seconds=virtual,
            violations=violations,
            boundaries_reached=len(self.log.boundaries),
            boundaries_crashed=sorted(self.log.crashed_at),
            boundaries_not_crashed=self.log.uncrashed_boundaries(),
            settled_by_key=self._settled_by_key(checker),
        )

    def _settled_by_key(self, checker: InvariantChecker) -> dict[str, tuple[str, float]]:
        uploads, settled = checker.uploads, checker.settled_at
        return {
            key: (settled[item_id][0].value, (settled[item_id][1] - uploads[item_id]).total_seconds())
            for item_id, key in self._normal_keys.items()
            if item_id in settled
        }

    def _install(self, pipeline: LocalPipeline | MemoryPipeline, checker: InvariantChecker) -> None:
        runtime = pipeline.runtime
        # The stored items as they are before the observer wraps the store (verify_stored reads behind it).
        self._raw_items = runtime.items
        # The project's client, with a short attempt timeout (latency faults are real sleeps on moto, timeouts at
        # once in memory) and seeded jitter.
        runtime.twelvelabs.close()
        memory = isinstance(pipeline, MemoryPipeline)
        runtime.twelvelabs = TwelveLabsClient(
            pipeline.api_key,
            base_url=EMULATOR_API_URL if memory else pipeline.emulator.api_url,
            clock=pipeline.clock,
            time_remaining=runtime.budget.remaining_seconds,
            attempt_timeout_seconds=ATTEMPT_TIMEOUT_SECONDS,
            retry_policy=RetryPolicy(random_source=random.Random(f"{self.config.seed}:jitter").random),
            transport=pipeline.transport if isinstance(pipeline, MemoryPipeline) else None,
        )
        injector = CrashInjector(
            rate=self.profile.crash_rate,
            rng=self._crash_rng,
            log=self.log,
            turnstile=self._turnstile,
            systematic=self.profile.systematic_crashes,
        )
        instrument(runtime, checker=checker, injector=injector)
        rules = emulator_fault_rules(self.profile, latency_seconds=LATENCY_SECONDS)
        self._control(pipeline, "faults", {"seed": self.config.seed, "rules": rules})

    def _loop(
        self,
        pipeline: LocalPipeline | MemoryPipeline,
        checker: InvariantChecker,
        pool: Mapping[str, bytes],
        start: datetime,
        progress: TextIO | None,
    ) -> int:
        clock = pipeline.clock
        hard_end = start + timedelta(days=self.config.days + self.config.settle_days)
        loop_started = time.perf_counter()
        steps = 0
        every = timedelta(hours=self.config.progress_hours)
        next_report = start + every
        while True:
            now = clock.now()
            self._run_due(pipeline, checker, pool, now)
            with pipeline._lambda_streams():
                report = pipeline.wiring.step()
            steps += 1
            now = clock.now()
            checker.observe_batches(self._observe(pipeline))
            checker.check_progress(now)
            if steps % STORED_CHECK_EVERY_STEPS == 0:
                checker.verify_stored(self._stored(pipeline))
            if progress is not None and now >= next_report:
                elapsed = time.perf_counter() - loop_started
                progress.write(
                    f"  day {(now - start).total_seconds() / 86_400:.2f}: {steps} steps, {elapsed:.0f} s wall, "
                    f"{dict(checker.counts())}\n"
                )
                progress.flush()
                next_report += every
            if report.did_work:
                continue
            quiet = checker.quiet()
            if quiet and not self._due:
                return steps  # every upload done and settled: nothing would ever move again
            if now >= hard_end:
                return steps
            candidates = [hard_end]
            if self._due:
                candidates.append(self._due[0].at)
            if not quiet:
                due = pipeline.wiring.next_due()
                if due is not None:
                    candidates.append(due)
            target = min(candidates)
            if target > now:
                clock.set(target)

    # --- external events ------------------------------------------------------------------------------------

    def _schedule(self, at: datetime, kind: str, payload: Any) -> None:
        self._order += 1
        heapq.heappush(self._due, _Due(at, self._order, kind, payload))

    def _run_due(
        self,
        pipeline: LocalPipeline | MemoryPipeline,
        checker: InvariantChecker,
        pool: Mapping[str, bytes],
        now: datetime,
    ) -> None:
        while self._due and self._due[0].at <= now:
            due = heapq.heappop(self._due)
            if due.kind == "upload":
                upload: PlannedUpload = due.payload
                version = pipeline.upload(upload.key, pool[upload.sample])
                item_id = item_id_for(pipeline.bucket, upload.key, version)
                self._normal_keys[item_id] = upload.key
                checker.record_upload(item_id, now)
                if upload.kind in ("non_video", "corrupt", "reupload"):
                    self.log.add(f"upload_{upload.kind}")
            elif due.kind == "hostile":
                self._hostile(pipeline, checker, pool, due.payload, now)
            elif due.kind == "redeliver":
                pipeline.wiring.publish_default_bus_event(due.payload)
                self.log.add("duplicate_delayed_s3_event")
            elif due.kind == "settings":
                self._control(pipeline, "settings", due.payload)

    def _hostile(
        self,
        pipeline: LocalPipeline | MemoryPipeline,
        checker: InvariantChecker,
        pool: Mapping[str, bytes],
        act: HostileAct,
        now: datetime,
    ) -> None:
        self.log.add(f"hostile_{act.kind}")
        if act.kind in OBJECT_KINDS:
            version = pipeline.upload(act.key, pool["short-0"])
            item_id = item_id_for(pipeline.bucket, act.key, version)
            checker.record_upload(item_id, now)
            expected = EXPECTED[act.kind]
            checker.expect(item_id, expected.state, expected.code, tolerated=self._injected_codes)
            if act.kind == "prewritten_result":
                address = result_key(pipeline.settings.results_prefix, act.key, version)
                if isinstance(pipeline, MemoryPipeline):
                    pipeline.objects.put(pipeline.bucket, address, b'{"not": "ours"}')
                else:
                    pipeline.client("s3").put_object(Bucket=pipeline.bucket, Key=address, Body=b'{"not": "ours"}')
        elif act.kind == "other_bucket":
            event = _object_created(OTHER_BUCKET, act.key, version_id="v1", at=now)
            checker.forbid(item_id_for(OTHER_BUCKET, act.key, "v1"))
            self._send_ingest_message(pipeline, json.dumps(event))
        elif act.kind == "non_object_message":
            self._send_ingest_message(pipeline, json.dumps(["not", "an", "event"]))
        elif act.kind == "non_object_event":
            with pipeline._lambda_streams():
                pipeline.wiring.invoke("FlusherFunction", cast(Any, ["not", "an", "event"]), source="hostile")

    @staticmethod
    def _send_ingest_message(pipeline: LocalPipeline | MemoryPipeline, body: str) -> None:
        if isinstance(pipeline, MemoryPipeline):
            queue_url = pipeline.stack.resources["IngestQueue"].attributes["QueueUrl"]
            pipeline.sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        else:
            queue_url = pipeline.stack.resources["IngestQueue"].ref
            pipeline.client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)

    def _schedule_slow_periods(self, start: datetime) -> None:
        profile = self.profile
        for day in range(self.config.days):
            day_start = start + timedelta(days=day)
            for _ in range(profile.slow_processing_periods_per_day):
                begin = day_start + timedelta(seconds=self._rng.uniform(0, 20 * 3600))
                self._schedule(begin, "settings", SLOW_PROCESSING)
                self._schedule(begin + timedelta(hours=3), "settings", {"content_seconds_per_second": 600.0})
                self.log.add("slow_processing_period")
            for _ in range(profile.slow_asset_periods_per_day):
                begin = day_start + timedelta(seconds=self._rng.uniform(0, 20 * 3600))
                self._schedule(begin, "settings", SLOW_ASSETS)
                self._schedule(begin + timedelta(hours=2), "settings", {"asset_ready_seconds": 20.0})
                self.log.add("slow_asset_period")

    def _control(self, pipeline: LocalPipeline | MemoryPipeline, what: str, body: Mapping[str, Any]) -> None:
        if isinstance(pipeline, MemoryPipeline):
            with httpx.Client(transport=pipeline.transport, base_url=EMULATOR_BASE_URL) as http:
                response = http.post(f"/_emulator/{what}", json=dict(body))
        else:
            response = httpx.post(f"{pipeline.emulator.base_url}/_emulator/{what}", json=dict(body), timeout=10.0)
        response.raise_for_status()

    # --- handlers -------------------------------------------------------------------------------------------

    def _hook(self, function_id: str, handler: Handler) -> Handler:
        def invoke(event: dict[str, Any], context: Any) -> Any:
            with handler_scope(function_id, first_delivery=self._first_delivery(event)):
                return handler(event, context)

        def wrapped(event: dict[str, Any], context: Any) -> Any:
            if function_id == "IngestFunction":
                self._capture(event)
            twice = (
                function_id in INTERLEAVED_FUNCTIONS
                and self.profile.double_fire_rate > 0
                and self._hook_rng.random() < self.profile.double_fire_rate
            )
            if not twice:
                return invoke(event, context)
            self.log.add(f"concurrent_{function_id}")
            if function_id == "FlusherFunction" and self._hook_rng.random() < self.profile.stall_rate:
                self._stall_pending = True
            second = copy.copy(context)
            second.aws_request_id = str(uuid.uuid4())
            outcomes = self._turnstile.run([lambda: invoke(event, context), lambda: invoke(event, second)])
            self._stall_pending = False
            for _, error in outcomes:
                if error is not None:
                    raise error
            work = sum(r.get("work_done", 0) for r, _ in outcomes if isinstance(r, Mapping))
            return {"work_done": work}

        return wrapped

    @staticmethod
    def _first_delivery(event: Mapping[str, Any]) -> bool:
        """May a systematic crash hit this invocation? Not an SQS redelivery: crashing every receive of one message
        would send it to the dead-letter queue (the DLQ alarm's case, not the pipeline's). Scheduled events are
        always fair game: their retries are bounded and the next firing comes anyway."""
        records = event.get("Records") if isinstance(event, Mapping) else None
        if isinstance(records, list):
            return all(r.get("attributes", {}).get("ApproximateReceiveCount", "1") == "1" for r in records)
        return True

    def _maybe_stall(self) -> None:
        """The first flusher stalls (GC pause, slow network) past its lease: the second may take the lease over."""
        if self._stall_pending and self._pipeline is not None:
            self._stall_pending = False
            self._pipeline.clock.advance(self._pipeline.settings.flush_lease_seconds + 1)
            self.log.add("flusher_stalled_past_lease")

    def _capture(self, event: Mapping[str, Any]) -> None:
        """Keep S3 events as ingest received them; re-publish some later (duplicates, out of order)."""
        if self.profile.duplicate_event_rate <= 0 or self._pipeline is None:
            return
        for record in event.get("Records", []):
            message_id = record.get("messageId")
            if message_id in self._seen_messages:
                continue
            self._seen_messages.add(message_id)
            if self._hook_rng.random() < self.profile.duplicate_event_rate:
                delay = timedelta(seconds=self._hook_rng.uniform(60, 6 * 3600))
                self._schedule(self._pipeline.clock.now() + delay, "redeliver", json.loads(record["body"]))

    # --- observation ----------------------------------------------------------------------------------------

    def _observe(self, pipeline: LocalPipeline | MemoryPipeline) -> list[ObservedBatch]:
        state = pipeline.emulator.state
        observed: list[ObservedBatch] = []
        with state.lock:
            state.sync()
            for batch in state.batches.values():
                if batch.batch_id in self._ended_batches:
                    continue
                if batch.status in TERMINAL_BATCH_STATUSES:
                    self._ended_batches.add(batch.batch_id)
                ended = batch.completed_at or batch.canceled_at or batch.expired_at
                if batch.status in ("pending", "processing", "canceling"):
                    ended = None
                requests = tuple(
                    ObservedRequest(item.custom_id, item.status, item.content_seconds, item.completed_at)
                    for item in batch.items
                )
                observed.append(ObservedBatch(batch.batch_id, batch.created_at, ended, requests))
        return observed

    def _stored(self, pipeline: LocalPipeline | MemoryPipeline) -> list[tuple[str, int, ItemState]]:
        if isinstance(pipeline, MemoryPipeline):
            return [(item.item_id, item.version, item.state) for item in self._raw_items.all()]
        paginator = pipeline.client("dynamodb").get_paginator("scan")
        stored: list[tuple[str, int, ItemState]] = []
        for page in paginator.paginate(
            TableName=pipeline.settings.table_name,
            FilterExpression="sk = :item",
            ExpressionAttributeValues={":item": {"S": "ITEM"}},
            ProjectionExpression="pk, #v, #s",
            ExpressionAttributeNames={"#v": "version", "#s": "state"},
            ConsistentRead=True,
        ):
            for row in page["Items"]:
                item_id = row["pk"]["S"].removeprefix("ITEM#")
                stored.append((item_id, int(row["version"]["N"]), ItemState(row["state"]["S"])))
        return stored

    def _final_checks(self, pipeline: LocalPipeline | MemoryPipeline, checker: InvariantChecker) -> None:
        checker.observe_batches(self._observe(pipeline))
        checker.check_progress(pipeline.clock.now())
        checker.verify_stored(self._stored(pipeline))
        checker.check_expected()

    def _emulator_faults(self, pipeline: LocalPipeline | MemoryPipeline) -> Counter[str]:
        faults: Counter[str] = Counter()
        state = pipeline.emulator.state
        with state.lock:
            plan = state.faults.describe() if state.faults else {"rules": [], "fired": []}
            for rule, fired in zip(plan["rules"], plan["fired"], strict=True):
                if "endpoint" in rule and fired:
                    effect = (
                        "lose_response"
                        if rule.get("lose_response")
                        else f"latency_{rule['latency_seconds']}s"
                        if "latency_seconds" in rule
                        else str(rule["status"])
                    )
                    faults[f"api {rule['endpoint']} {effect}"] += fired
            for batch in state.batches.values():
                for item in batch.items:
                    if item.error is not None:
                        faults[f"item {item.status} {item.error.get('code', '-')}"] += 1
        return faults


def _object_created(bucket: str, key: str, *, version_id: str, at: datetime) -> dict[str, Any]:
    """An S3 "Object Created" event as EventBridge delivers it (the key URL-encoded, as S3 encodes it)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": at.isoformat().replace("+00:00", "Z"),
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": quote_plus(key, safe="/"), "size": 1024, "etag": "0" * 32, "version-id": version_id},
            "request-id": "hostile",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def run_case(config: SimulationConfig) -> SimulationResult:
    """One simulation with warnings as errors (as pytest runs them), for a worker process."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return Simulation(config).run()


def format_faults(faults: Counter[str]) -> str:
    if not faults:
        return "faults injected: none\n"
    lines = ["faults injected, by kind:"]
    lines += [f"  {kind}: {count}" for kind, count in sorted(faults.items())]
    return "\n".join(lines) + "\n"
