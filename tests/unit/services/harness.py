"""A real local stack for service tests: moto in server mode (real HTTP, so the emulator can fetch presigned S3
URLs) and the TwelveLabs emulator, both on 127.0.0.1 and sharing one ManualClock with the services."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from tests.surgery import overwrite_item
from twelvelabs_emulator import EmulatorServer
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
from videobatch.adapters.memory import MemoryInvoker
from videobatch.adapters.s3 import S3ObjectStore
from videobatch.adapters.scheduler import BatchExpiryScheduler
from videobatch.clock import ManualClock
from videobatch.config import Settings
from videobatch.domain.profiles import ProfileSet, load_default_profiles
from videobatch.domain.records import ItemRecord
from videobatch.runtime import Runtime
from videobatch.services.asset_checker import AssetCheckService
from videobatch.services.batch_checker import BatchCheckService
from videobatch.services.flusher import FlushService
from videobatch.services.ingest import IngestResult, IngestService, parse_object_created
from videobatch.twelvelabs.client import TwelveLabsClient

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


@dataclass
class Stack:
    endpoint: str
    clock: ManualClock
    emulator: EmulatorServer
    settings: Settings
    profiles: ProfileSet = field(default_factory=load_default_profiles)
    metrics: RecordingMetrics = field(default_factory=RecordingMetrics)

    def __post_init__(self) -> None:
        self.s3 = aws_client("s3", self.endpoint)
        self.dynamodb = aws_client("dynamodb", self.endpoint)
        self.eventbridge = aws_client("events", self.endpoint)
        self.sqs = aws_client("sqs", self.endpoint)
        self.scheduler_client = aws_client("scheduler", self.endpoint)
        self.items = DynamoItemRepository(self.dynamodb, self.settings.table_name)
        self.batches = DynamoBatchRepository(self.dynamodb, self.settings.table_name)
        self.claims = DynamoClaimRepository(self.dynamodb, self.settings.table_name)
        self.leases = DynamoLeaseStore(self.dynamodb, self.settings.table_name)
        self.objects = S3ObjectStore(self.s3)
        self.publisher = EventBridgePublisher(self.eventbridge, self.settings.event_bus_name)
        self.scheduler = BatchExpiryScheduler(
            self.scheduler_client,
            group_name=self.settings.scheduler_group_name,
            target_arn=self.settings.batch_checker_arn,
            role_arn=self.settings.scheduler_role_arn,
        )
        self.twelvelabs = TwelveLabsClient(API_KEY, base_url=self.emulator.api_url, clock=self.clock)
        # What the services ask Lambda to start (the flusher after a batch closes): recorded, not run.
        self.invoker = MemoryInvoker()
        # The services are wired exactly as the Lambdas wire them (Runtime), over these adapters.
        self.runtime = Runtime(
            settings=self.settings,
            clock=self.clock,
            twelvelabs=self.twelvelabs,
            items=self.items,
            batches=self.batches,
            claims=self.claims,
            leases=self.leases,
            objects=self.objects,
            events=self.publisher,
            scheduler=self.scheduler,
            profiles=self.profiles,
            metrics=self.metrics,
            invoker=self.invoker,
            replays=DynamoReplayGuard(self.dynamodb, self.settings.table_name),
            ledger=DynamoOutcomeLedger(self.dynamodb, self.settings.table_name),
            control=DynamoControlStore(self.dynamodb, self.settings.table_name),
        )

    def overwrite_item(self, item: ItemRecord) -> None:
        """Test surgery: write the record as is, bypassing the lifecycle check (as a hand edit of the table would)."""
        overwrite_item(self.dynamodb, self.settings.table_name, item)

    def with_ports(self, **ports: Any) -> Runtime:
        """The runtime with some ports replaced (crash injection wraps an adapter)."""
        return dataclasses.replace(self.runtime, **ports)

    def with_settings(self, **overrides: Any) -> Runtime:
        """The runtime with some settings changed (the stack's own stay as they are)."""
        return dataclasses.replace(self.runtime, settings=self.settings.model_copy(update=overrides))

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

    def put_video(self, key: str, path: Path) -> dict[str, Any]:
        """Upload a file and return the S3 "Object Created" EventBridge event for it."""
        body = path.read_bytes()
        response = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        detail: dict[str, Any] = {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": key, "size": len(body), "etag": response["ETag"].strip('"'), "sequencer": "00"},
            "request-id": "r",
            "requester": ACCOUNT,
            "reason": "PutObject",
        }
        if response.get("VersionId"):
            detail["object"]["version-id"] = response["VersionId"]
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

    def observed_events(self) -> list[dict[str, Any]]:
        """Every videobatch event delivered so far (drains the observation queue)."""
        found: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.observed_queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.observed_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def ingest_service(self) -> IngestService:
        return self.runtime.ingest_service()

    def asset_checker(self) -> AssetCheckService:
        return self.runtime.asset_check_service()

    def flusher(self, owner: str | None = None, **setting_overrides: Any) -> FlushService:
        return self.with_settings(**setting_overrides).flush_service(owner)

    def checker(self, **setting_overrides: Any) -> BatchCheckService:
        return self.with_settings(**setting_overrides).batch_check_service()

    def emulator_settings(self, **changes: Any) -> None:
        httpx.post(f"{self.emulator.base_url}/_emulator/settings", json=changes).raise_for_status()

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

    def faults(self, *rules: dict[str, Any]) -> None:
        response = httpx.post(f"{self.emulator.base_url}/_emulator/faults", json={"seed": 0, "rules": list(rules)})
        response.raise_for_status()

    def ingest(self, key: str, path: Path) -> IngestResult:
        return self.ingest_service().handle(parse_object_created(self.put_video(key, path)))

    def close(self) -> None:
        self.twelvelabs.close()


def make_settings(emulator: EmulatorServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "table_name": TABLE,
        "event_bus_name": BUS,
        "video_bucket": BUCKET,
        "twelvelabs_base_url": emulator.api_url,
        "twelvelabs_api_key_secret": "tl-key",
        "scheduler_role_arn": f"arn:aws:iam::{ACCOUNT}:role/scheduler",
        "batch_checker_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:batch-checker",
        "max_wait_seconds": 600.0,
        **overrides,
    }
    return Settings.model_validate(values)
