"""Every port's contract, run against both implementations: the moto-backed AWS adapters and the in-memory twins.

A test here states a rule the services rely on (conditional writes, ordering, pagination, sparse indexes, TTL,
write-once, S3's key limit, schedules created once); it must pass on both backends, so a difference between the
fakes the fast tests and the simulation use and the adapters that deploy shows up as a failing test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from videobatch.adapters.control import DynamoControlStore
from videobatch.adapters.dynamodb import (
    DynamoBatchRepository,
    DynamoClaimRepository,
    DynamoItemRepository,
    DynamoLeaseStore,
    create_table,
)
from videobatch.adapters.events import EventBridgePublisher
from videobatch.adapters.ledger import DynamoOutcomeLedger
from videobatch.adapters.memory import (
    MemoryBatchStore,
    MemoryClaimStore,
    MemoryControlStore,
    MemoryEventBus,
    MemoryItemStore,
    MemoryLeaseStore,
    MemoryObjectStore,
    MemoryOutcomeLedger,
    MemoryScheduler,
    MemoryUploadQueue,
)
from videobatch.adapters.s3 import S3ObjectStore
from videobatch.adapters.scheduler import BatchExpiryScheduler, schedule_name
from videobatch.adapters.sqs import SqsUploadQueue
from videobatch.services.ports import (
    BatchStore,
    ClaimStore,
    ControlStore,
    EventPublisher,
    ExpiryScheduler,
    ItemStore,
    LeaseStore,
    ObjectRef,
    ObjectStore,
    OutcomeLedger,
    UploadQueue,
)

REGION = "us-east-1"
TABLE = "videobatch-contract"
BUCKET = "uploads"
BUS = "contract-bus"


@dataclass
class Backend:
    """One implementation of every port, plus what a test needs to look behind them."""

    name: str
    items: ItemStore
    batches: BatchStore
    claims: ClaimStore
    leases: LeaseStore
    objects: ObjectStore
    events: EventPublisher
    scheduler: ExpiryScheduler
    ledger: OutcomeLedger
    control: ControlStore
    uploads: UploadQueue
    _s3: Any = None
    _sqs: Any = None
    _queue_url: str = ""
    _scheduler_client: Any = None
    _uploads_url: str = ""

    def uploaded(self) -> list[Any]:
        """Every event sent to the upload queue so far (decoded), in the order sent."""
        if isinstance(self.uploads, MemoryUploadQueue):
            return [json.loads(body) for body in self.uploads.sent]
        found: list[Any] = []
        while messages := self._sqs.receive_message(QueueUrl=self._uploads_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                found.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._uploads_url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def upload(self, key: str, body: bytes, content_type: str | None = None) -> ObjectRef:
        """Put an object as an uploader would; returns the exact version."""
        if isinstance(self.objects, MemoryObjectStore):
            stored = self.objects.put(BUCKET, key, body, content_type)
            return ObjectRef(bucket=BUCKET, key=key, version_id=stored.version_id)
        extra = {"ContentType": content_type} if content_type else {}
        response = self._s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)
        return ObjectRef(bucket=BUCKET, key=key, version_id=response.get("VersionId"))

    def read(self, key: str) -> bytes:
        if isinstance(self.objects, MemoryObjectStore):
            found = self.objects.object(ObjectRef(bucket=BUCKET, key=key))
            assert found is not None
            return found.body
        body: bytes = self._s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def published(self) -> list[dict[str, Any]]:
        """The details of every event published so far, in order."""
        if isinstance(self.events, MemoryEventBus):
            return [event.model_dump(mode="json") for event in self.events.published]
        found: list[dict[str, Any]] = []
        while messages := self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                found.append(json.loads(message["Body"])["detail"])
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def scheduled(self) -> dict[str, str]:
        """batch id -> the UTC time of its one-time check, seconds resolution."""
        if isinstance(self.scheduler, MemoryScheduler):
            return {b: c.at.strftime("%Y-%m-%dT%H:%M:%S") for b, c in self.scheduler.schedules.items()}
        found: dict[str, str] = {}
        for summary in self._scheduler_client.list_schedules(GroupName="default")["Schedules"]:
            schedule = self._scheduler_client.get_schedule(Name=summary["Name"], GroupName="default")
            batch_id = json.loads(schedule["Target"]["Input"])["batch_id"]
            assert summary["Name"] == schedule_name(batch_id)
            found[batch_id] = schedule["ScheduleExpression"][3:-1]
        return found


def _memory() -> Backend:
    return Backend(
        name="memory",
        items=MemoryItemStore(),
        batches=MemoryBatchStore(),
        claims=MemoryClaimStore(),
        leases=MemoryLeaseStore(),
        objects=MemoryObjectStore(),
        events=MemoryEventBus(),
        scheduler=MemoryScheduler(),
        ledger=MemoryOutcomeLedger(),
        control=MemoryControlStore(),
        uploads=MemoryUploadQueue(),
    )


def _moto() -> Backend:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_table(dynamodb, TABLE)
    s3 = boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4"))
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name=BUS)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="observed")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": ["videobatch"]}))
    events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    scheduler_client = boto3.client("scheduler", region_name=REGION)
    uploads_url = sqs.create_queue(QueueName="ingest")["QueueUrl"]
    return Backend(
        name="moto",
        items=DynamoItemRepository(dynamodb, TABLE),
        batches=DynamoBatchRepository(dynamodb, TABLE),
        claims=DynamoClaimRepository(dynamodb, TABLE),
        leases=DynamoLeaseStore(dynamodb, TABLE),
        objects=S3ObjectStore(s3),
        events=EventBridgePublisher(events, BUS),
        scheduler=BatchExpiryScheduler(
            scheduler_client,
            group_name="default",
            target_arn="arn:aws:lambda:us-east-1:123456789012:function:checker",
            role_arn="arn:aws:iam::123456789012:role/scheduler",
        ),
        ledger=DynamoOutcomeLedger(dynamodb, TABLE),
        control=DynamoControlStore(dynamodb, TABLE),
        uploads=SqsUploadQueue(sqs, uploads_url),
        _uploads_url=uploads_url,
        _s3=s3,
        _sqs=sqs,
        _queue_url=queue_url,
        _scheduler_client=scheduler_client,
    )


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    if request.param == "memory":
        yield _memory()
        return
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield _moto()
