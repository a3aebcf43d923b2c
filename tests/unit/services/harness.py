"""The stacks service tests run on, both sharing one ManualClock with the services.

``MemoryStack``: the in-memory ports and the emulator's core in process, for service logic (no mark). ``MotoStack``:
moto in server mode (real HTTP, so the emulator can fetch presigned S3 URLs) and the TwelveLabs emulator on
127.0.0.1, for tests marked ``integration``. The ``stack`` fixture picks by the mark.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from tests.surgery import overwrite_item
from twelvelabs_emulator import EmulatorConfig, EmulatorServer
from twelvelabs_emulator.inprocess import InProcessTransport
from videobatch.adapters.control import DynamoControlStore
from videobatch.adapters.dynamodb import (
    DynamoBatchRepository,
    DynamoClaimRepository,
    DynamoItemRepository,
    DynamoLeaseStore,
    DynamoReplayGuard,
    create_table,
)
from videobatch.adapters.events import EventBridgePublisher
from videobatch.adapters.ledger import DynamoOutcomeLedger
from videobatch.adapters.memory import (
    MemoryEventBus,
    MemoryInvoker,
    MemoryItemStore,
    MemoryObjectStore,
    MemoryScheduler,
)
from videobatch.adapters.s3 import S3ObjectStore
from videobatch.adapters.scheduler import BatchExpiryScheduler, schedule_name
from videobatch.clock import ManualClock
from videobatch.config import Settings
from videobatch.domain.events import to_put_events_entry
from videobatch.domain.profiles import ProfileSet, load_default_profiles
from videobatch.domain.records import ItemRecord
from videobatch.runtime import Runtime, build_memory_runtime
from videobatch.services.asset_checker import AssetCheckService
from videobatch.services.batch_checker import BatchCheckService
from videobatch.services.flusher import FlushService
from videobatch.services.ingest import IngestResult, IngestService, parse_object_created
from videobatch.services.ports import BatchStore, ClaimStore, ItemStore, LeaseStore, ObjectStore
from videobatch.twelvelabs.client import TwelveLabsClient
from videobatch_tools.localstack.memory_pipeline import EMULATOR_API_URL, EMULATOR_BASE_URL, ObjectStoreFetcher

REGION = "us-east-1"
BUCKET = "uploads"
TABLE = "videobatch"
BUS = "videobatch-bus"
API_KEY = "emulator-key"
ACCOUNT = "123456789012"


class RecordingMetrics:
    """Collects what services report; the handlers hand the same calls to Powertools Metrics."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def add_metric(self, name: str, unit: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def total(self, name: str) -> float:
        return sum(self.values.get(name, []))


def aws_client(service: str, endpoint: str) -> Any:
    config = Config(signature_version="s3v4") if service == "s3" else None
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint, config=config)


class Stack:
    """What a service test drives: the services wired as the Lambdas wire them (``runtime``), a clock, the emulator,
    and the few acts a test needs below the ports (putting, reading and deleting objects, watching the events).

    Two backends: ``MemoryStack`` (the in-memory ports and the emulator's core in process: service logic, the default
    for tests without the ``integration`` mark) and ``MotoStack`` (moto server and the emulator over HTTP: for tests
    that read what only AWS has, such as a boto3 call count or a versioned bucket turned on by API call).
    """

    clock: ManualClock
    emulator: EmulatorServer
    settings: Settings
    profiles: ProfileSet
    metrics: RecordingMetrics
    twelvelabs: TwelveLabsClient
    invoker: MemoryInvoker
    runtime: Runtime
    _control: httpx.Client

    @property
    def items(self) -> ItemStore:
        return self.runtime.items

    @property
    def batches(self) -> BatchStore:
        return self.runtime.batches

    @property
    def claims(self) -> ClaimStore:
        return self.runtime.claims

    @property
    def leases(self) -> LeaseStore:
        return self.runtime.leases

    @property
    def objects(self) -> ObjectStore:
        return self.runtime.objects

    # --- below the ports: each backend's own --------------------------------------------------------------------

    def overwrite_item(self, item: ItemRecord) -> None:
        """Test surgery: write the record as is, bypassing the lifecycle check (as a hand edit of the table would)."""
        raise NotImplementedError

    def put_object(self, key: str, body: bytes) -> tuple[str, str | None]:
        """A user's upload to the video bucket; returns its ETag and version id."""
        raise NotImplementedError

    def read_object(self, key: str) -> bytes:
        raise NotImplementedError

    def delete_object(self, key: str) -> None:
        raise NotImplementedError

    def enable_versioning(self) -> None:
        raise NotImplementedError

    def scheduled_check(self, batch_id: str) -> datetime | None:
        """When the one-time expiry check of the batch is scheduled, if it is."""
        raise NotImplementedError

    def observed_events(self) -> list[dict[str, Any]]:
        """Every videobatch event published since the last call, as EventBridge delivers it to a target."""
        raise NotImplementedError

    def close(self) -> None:
        self.twelvelabs.close()
        self._control.close()

    # --- the same on both --------------------------------------------------------------------------------------

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_object(key))

    def with_ports(self, **ports: Any) -> Runtime:
        """The runtime with some ports replaced (crash injection wraps an adapter)."""
        return dataclasses.replace(self.runtime, **ports)

    def with_settings(self, **overrides: Any) -> Runtime:
        """The runtime with some settings changed (the stack's own stay as they are)."""
        return dataclasses.replace(self.runtime, settings=self.settings.model_copy(update=overrides))

    def put_video(self, key: str, path: Path) -> dict[str, Any]:
        """Upload a file and return the S3 "Object Created" EventBridge event for it."""
        body = path.read_bytes()
        etag, version_id = self.put_object(key, body)
        detail: dict[str, Any] = {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": key, "size": len(body), "etag": etag, "sequencer": "00"},
            "request-id": "r",
            "requester": ACCOUNT,
            "reason": "PutObject",
        }
        if version_id:
            detail["object"]["version-id"] = version_id
        return {
            "version": "0",
            "id": "e-1",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": ACCOUNT,
            "time": self.clock.now().isoformat(),
            "region": REGION,
            "resources": [f"arn:aws:s3:::{BUCKET}"],
            "detail": detail,
        }

    def ingest_service(self) -> IngestService:
        return self.runtime.ingest_service()

    def asset_checker(self) -> AssetCheckService:
        return self.runtime.asset_check_service()

    def flusher(self, owner: str | None = None, **setting_overrides: Any) -> FlushService:
        return self.with_settings(**setting_overrides).flush_service(owner)

    def checker(self, **setting_overrides: Any) -> BatchCheckService:
        return self.with_settings(**setting_overrides).batch_check_service()

    def emulator_settings(self, **changes: Any) -> None:
        self._control.post("/_emulator/settings", json=changes).raise_for_status()

    def emulator_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self._control.get("/_emulator/state").json()
        return state

    def faults(self, *rules: dict[str, Any]) -> None:
        self._control.post("/_emulator/faults", json={"seed": 0, "rules": list(rules)}).raise_for_status()

    def submit(self, videos: dict[str, Path], *names_and_keys: tuple[str, str]) -> tuple[list[str], str]:
        """Queue the videos and flush them into one batch; returns the item ids and the batch id."""
        ids = self.queue(videos, *names_and_keys)
        self.clock.advance(self.settings.max_wait_seconds)
        self.flusher().run()
        batch_ids = {item.batch_id for item in self.items.get_many(ids).values()}
        assert len(batch_ids) == 1
        batch_id = batch_ids.pop()
        assert batch_id is not None
        self.observed_events()  # drop Batch Submitted: tests look at what follows
        return ids, batch_id

    def queue(self, videos: dict[str, Path], *names_and_keys: tuple[str, str]) -> list[str]:
        """Ingest, let the assets become ready and queue them; returns the item ids in order."""
        ids = [self.ingest(key, videos[name]).item_id for name, key in names_and_keys]
        self.clock.advance(10)
        self.asset_checker().run()
        return ids

    def ingest(self, key: str, path: Path) -> IngestResult:
        return self.ingest_service().handle(parse_object_created(self.put_video(key, path)))


class MemoryStack(Stack):
    """The in-memory ports (``videobatch.adapters.memory``, held to the AWS adapters by ``tests/contract``) and the
    emulator's core in process (``InProcessTransport``): the same services, no sockets, no moto."""

    def __init__(self, clock: ManualClock, emulator_config: EmulatorConfig, **setting_overrides: Any) -> None:
        self.clock = clock
        self.profiles = load_default_profiles()
        self.metrics = RecordingMetrics()
        self.invoker = MemoryInvoker()
        self.store = MemoryObjectStore(versioned=False)  # as a new bucket: versioning off until turned on
        self.bus = MemoryEventBus()
        transport = InProcessTransport()
        config = emulator_config.model_copy(update={"url_fetch_allowed_hosts": (MemoryObjectStore.PRESIGNED_HOST,)})
        self.emulator = EmulatorServer(
            config, clock=clock, sleep=transport.sleep, url_fetcher=ObjectStoreFetcher(self.store)
        )
        transport.bind(self.emulator, base_url=EMULATOR_BASE_URL)
        self.settings = make_settings(EMULATOR_API_URL, **setting_overrides)
        self.twelvelabs = TwelveLabsClient(API_KEY, base_url=EMULATOR_API_URL, clock=clock, transport=transport)
        self._control = httpx.Client(transport=transport, base_url=EMULATOR_BASE_URL)
        # The composition the fast simulation uses (build_memory_runtime), over this stack's store, bus and clock.
        self.runtime = build_memory_runtime(
            self.settings,
            clock=clock,
            twelvelabs=self.twelvelabs,
            objects=self.store,
            events=self.bus,
            invoker=self.invoker,
            profiles=self.profiles,
            metrics_sink=self.metrics,
        )
        scheduler = self.runtime.scheduler
        assert isinstance(scheduler, MemoryScheduler)
        self.scheduler = scheduler

    def overwrite_item(self, item: ItemRecord) -> None:
        items = self.runtime.items
        assert isinstance(items, MemoryItemStore)
        items.overwrite(item.model_copy(update={"version": item.version + 1}))

    def put_object(self, key: str, body: bytes) -> tuple[str, str | None]:
        stored = self.store.put(BUCKET, key, body)
        return stored.etag, stored.version_id

    def read_object(self, key: str) -> bytes:
        body = self.store.read(BUCKET, key)
        assert body is not None, f"no object {key!r}"
        return body

    def delete_object(self, key: str) -> None:
        self.store.delete(BUCKET, key)

    def enable_versioning(self) -> None:
        self.store.enable_versioning()

    def scheduled_check(self, batch_id: str) -> datetime | None:
        check = self.scheduler.schedules.get(batch_id)
        return check.at if check is not None else None

    def observed_events(self) -> list[dict[str, Any]]:
        return [delivered(to_put_events_entry(event, BUS)) for event in self.bus.drain()]

    def close(self) -> None:
        super().close()
        self.emulator.stop()  # never started: removes its storage directory


def delivered(entry: dict[str, Any]) -> dict[str, Any]:
    """A PutEvents entry as EventBridge hands it to a target (the envelope's field names)."""
    return {
        "source": entry["Source"],
        "detail-type": entry["DetailType"],
        "detail": json.loads(entry["Detail"]),
        "resources": entry["Resources"],
    }


class MotoStack(Stack):
    """moto in server mode and the emulator over HTTP, on one ManualClock."""

    def __init__(self, endpoint: str, clock: ManualClock, emulator: EmulatorServer, settings: Settings) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.emulator = emulator
        self.settings = settings
        self.profiles = load_default_profiles()
        self.metrics = RecordingMetrics()
        self.s3 = aws_client("s3", endpoint)
        self.dynamodb = aws_client("dynamodb", endpoint)
        self.eventbridge = aws_client("events", endpoint)
        self.sqs = aws_client("sqs", endpoint)
        self.scheduler_client = aws_client("scheduler", endpoint)
        self.twelvelabs = TwelveLabsClient(API_KEY, base_url=emulator.api_url, clock=clock)
        self._control = httpx.Client(base_url=emulator.base_url)
        # What the services ask Lambda to start (the flusher after a batch closes): recorded, not run.
        self.invoker = MemoryInvoker()
        table = settings.table_name
        self.runtime = Runtime(
            settings=settings,
            clock=clock,
            twelvelabs=self.twelvelabs,
            profiles=self.profiles,
            metrics=self.metrics,
            invoker=self.invoker,
            items=DynamoItemRepository(self.dynamodb, table),
            batches=DynamoBatchRepository(self.dynamodb, table),
            claims=DynamoClaimRepository(self.dynamodb, table),
            leases=DynamoLeaseStore(self.dynamodb, table),
            objects=S3ObjectStore(self.s3),
            events=EventBridgePublisher(self.eventbridge, settings.event_bus_name),
            scheduler=BatchExpiryScheduler(
                self.scheduler_client,
                group_name=settings.scheduler_group_name,
                target_arn=settings.batch_checker_arn,
                role_arn=settings.scheduler_role_arn,
            ),
            replays=DynamoReplayGuard(self.dynamodb, table),
            ledger=DynamoOutcomeLedger(self.dynamodb, table),
            control=DynamoControlStore(self.dynamodb, table),
        )

    def overwrite_item(self, item: ItemRecord) -> None:
        overwrite_item(self.dynamodb, self.settings.table_name, item)

    def put_object(self, key: str, body: bytes) -> tuple[str, str | None]:
        response = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return response["ETag"].strip('"'), response.get("VersionId")

    def read_object(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def delete_object(self, key: str) -> None:
        self.s3.delete_object(Bucket=BUCKET, Key=key)

    def enable_versioning(self) -> None:
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})

    def scheduled_check(self, batch_id: str) -> datetime | None:
        try:
            schedule = self.scheduler_client.get_schedule(
                Name=schedule_name(batch_id), GroupName=self.settings.scheduler_group_name
            )
        except self.scheduler_client.exceptions.ResourceNotFoundException:
            return None
        expression: str = schedule["ScheduleExpression"]  # at(2026-01-01T00:00:00)
        return datetime.fromisoformat(expression.removeprefix("at(").removesuffix(")")).replace(tzinfo=UTC)

    def provision(self) -> None:
        create_table(self.dynamodb, self.settings.table_name)
        self.s3.create_bucket(Bucket=BUCKET)
        self.eventbridge.create_event_bus(Name=self.settings.event_bus_name)
        queue_url = self.sqs.create_queue(QueueName="observed-events")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.eventbridge.put_rule(
            Name="observe",
            EventBusName=self.settings.event_bus_name,
            EventPattern=json.dumps({"source": ["videobatch"]}),
        )
        self.eventbridge.put_targets(
            Rule="observe", EventBusName=self.settings.event_bus_name, Targets=[{"Id": "q", "Arn": arn}]
        )
        self.observed_queue_url = queue_url

    def observed_events(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.observed_queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.observed_queue_url, ReceiptHandle=message["ReceiptHandle"])


def make_settings(api_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "table_name": TABLE,
        "event_bus_name": BUS,
        "video_bucket": BUCKET,
        "twelvelabs_base_url": api_url,
        "twelvelabs_api_key_secret": "tl-key",
        "scheduler_role_arn": f"arn:aws:iam::{ACCOUNT}:role/scheduler",
        "batch_checker_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:batch-checker",
        "max_wait_seconds": 600.0,
        **overrides,
    }
    return Settings.model_validate(values)
