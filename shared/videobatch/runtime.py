"""The handlers' dependency container: built lazily once per cold start from the environment, replaceable.

``get_runtime()`` builds a ``Runtime`` from ``Settings.from_env(os.environ)`` on first use (boto3 clients, which honour
``AWS_ENDPOINT_URL`` for the local stack; the API key from Secrets Manager; the TwelveLabs client; the system clock)
and keeps it for the life of the Lambda container. The local stack, the demo and tests call ``set_runtime(...)`` or
``use_runtime(...)`` with one built by ``build_runtime(...)`` around a ManualClock, their endpoints and clients.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import boto3
from aws_lambda_powertools import Logger, Metrics
from botocore.config import Config

from videobatch.adapters.dynamodb import (
    DynamoBatchRepository,
    DynamoClaimRepository,
    DynamoItemRepository,
    DynamoLeaseStore,
)
from videobatch.adapters.events import EventBridgePublisher
from videobatch.adapters.s3 import S3ObjectStore
from videobatch.adapters.scheduler import BatchExpiryScheduler
from videobatch.adapters.secrets import SecretApiKeyProvider
from videobatch.clock import Clock, SystemClock
from videobatch.config import Settings
from videobatch.domain.profiles import ProfileSet, load_default_profiles
from videobatch.services.asset_checker import AssetCheckService
from videobatch.services.batch_checker import BatchCheckService
from videobatch.services.flusher import FlushService
from videobatch.services.ingest import IngestService
from videobatch.services.lifecycle import ItemWriter
from videobatch.services.ports import (
    BatchStore,
    ClaimStore,
    EventPublisher,
    ExpiryScheduler,
    ItemStore,
    LeaseStore,
    MetricsSink,
    ObjectStore,
    TwelveLabsApi,
)
from videobatch.services.reconciler import ReconcileService
from videobatch.services.submissions import SubmissionRecorder
from videobatch.services.sweeper import SweepPorts, SweepService
from videobatch.twelvelabs.client import TwelveLabsClient

# Leave the handler this long after the last API call's budget to record what happened before Lambda stops it.
LAMBDA_MARGIN_SECONDS: Final = 10.0

logger = Logger()
metrics = Metrics()


class InvocationBudget:
    """Seconds the current invocation has left (from the Lambda context), for the TwelveLabs client's deadlines."""

    def __init__(self) -> None:
        self._context: Any = None

    def bind(self, context: Any) -> None:
        self._context = context

    def remaining_seconds(self) -> float:
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        if remaining is None:
            return math.inf
        return max(0.0, float(remaining()) / 1000.0 - LAMBDA_MARGIN_SECONDS)


@dataclass
class Runtime:
    """The composition root: every port (typed on its Protocol) and the services built from them."""

    settings: Settings
    clock: Clock
    twelvelabs: TwelveLabsApi
    items: ItemStore
    batches: BatchStore
    claims: ClaimStore
    leases: LeaseStore
    objects: ObjectStore
    events: EventPublisher
    scheduler: ExpiryScheduler
    profiles: ProfileSet
    metrics: MetricsSink
    budget: InvocationBudget = field(default_factory=InvocationBudget)

    def __post_init__(self) -> None:
        self.profiles.check_results_prefix(self.settings.results_prefix)

    def item_writer(self) -> ItemWriter:
        """A writer per service: its lost-race count is that service's."""
        return ItemWriter(
            items=self.items,
            events=self.events,
            metrics=self.metrics,
            clock=self.clock,
            write_concurrency=self.settings.item_write_concurrency,
        )

    def submission_recorder(self, writer: ItemWriter | None = None) -> SubmissionRecorder:
        return SubmissionRecorder(
            settings=self.settings,
            clock=self.clock,
            items=self.items,
            writer=writer or self.item_writer(),
            batches=self.batches,
            claims=self.claims,
            scheduler=self.scheduler,
            events=self.events,
        )

    def ingest_service(self) -> IngestService:
        return IngestService(
            settings=self.settings,
            clock=self.clock,
            items=self.items,
            writer=self.item_writer(),
            objects=self.objects,
            assets=self.twelvelabs,
            profiles=self.profiles,
        )

    def asset_check_service(self) -> AssetCheckService:
        return AssetCheckService(
            settings=self.settings,
            clock=self.clock,
            items=self.items,
            writer=self.item_writer(),
            assets=self.twelvelabs,
            profiles=self.profiles,
            metrics=self.metrics,
        )

    def flush_service(self, owner: str | None = None) -> FlushService:
        writer = self.item_writer()
        return FlushService(
            settings=self.settings,
            clock=self.clock,
            items=self.items,
            writer=writer,
            recorder=self.submission_recorder(writer),
            leases=self.leases,
            twelvelabs=self.twelvelabs,
            profiles=self.profiles,
            metrics=self.metrics,
            reconciler=self.reconcile_service(),
            owner=owner,
        )

    def reconcile_service(self) -> ReconcileService:
        return ReconcileService(
            settings=self.settings,
            clock=self.clock,
            items=self.items,
            claims=self.claims,
            twelvelabs=self.twelvelabs,
            recorder=self.submission_recorder(),
            metrics=self.metrics,
        )

    def sweep_service(self) -> SweepService:
        """Every repair (also what the ops CLI runs): ``runtime.sweep_service().run()`` -> SweepSummary."""
        writer = self.item_writer()
        ports = SweepPorts(
            items=self.items,
            claims=self.claims,
            batches=self.batches,
            leases=self.leases,
            twelvelabs=self.twelvelabs,
            writer=writer,
            recorder=self.submission_recorder(writer),
            reconciler=self.reconcile_service(),
            asset_checker=self.asset_check_service(),
            batch_checker=self.batch_check_service(),
        )
        return SweepService(settings=self.settings, clock=self.clock, ports=ports, metrics=self.metrics)

    def batch_check_service(self) -> BatchCheckService:
        writer = self.item_writer()
        return BatchCheckService(
            settings=self.settings,
            clock=self.clock,
            items=self.items,
            writer=writer,
            batches=self.batches,
            recorder=self.submission_recorder(writer),
            objects=self.objects,
            twelvelabs=self.twelvelabs,
            profiles=self.profiles,
            metrics=self.metrics,
        )


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    session: boto3.Session | None = None,
    api_key: str | None = None,
    profiles: ProfileSet | None = None,
    metrics_sink: MetricsSink | None = None,
) -> Runtime:
    """Wire every adapter; ``api_key`` skips Secrets Manager (local stack, tests), ``session`` picks credentials."""
    aws = session or boto3.Session()
    clock = clock or SystemClock()
    budget = InvocationBudget()
    dynamodb = aws.client("dynamodb")
    key = api_key or SecretApiKeyProvider(aws.client("secretsmanager"), settings.twelvelabs_api_key_secret)()
    return Runtime(
        settings=settings,
        clock=clock,
        twelvelabs=TwelveLabsClient(
            key, base_url=settings.twelvelabs_base_url, clock=clock, time_remaining=budget.remaining_seconds
        ),
        items=DynamoItemRepository(dynamodb, settings.table_name),
        batches=DynamoBatchRepository(dynamodb, settings.table_name),
        claims=DynamoClaimRepository(dynamodb, settings.table_name),
        leases=DynamoLeaseStore(dynamodb, settings.table_name),
        # SigV4 presigned URLs: required for KMS-encrypted objects and the only kind newer regions accept.
        objects=S3ObjectStore(aws.client("s3", config=Config(signature_version="s3v4"))),
        events=EventBridgePublisher(aws.client("events"), settings.event_bus_name),
        scheduler=BatchExpiryScheduler(
            aws.client("scheduler"),
            group_name=settings.scheduler_group_name,
            target_arn=settings.batch_checker_arn,
            role_arn=settings.scheduler_role_arn,
        ),
        profiles=profiles or load_default_profiles(),
        metrics=metrics_sink or metrics,
        budget=budget,
    )


class _Slot:
    """The container's one runtime (a holder object rather than a module global reassigned in place)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runtime: Runtime | None = None


_slot = _Slot()


def get_runtime() -> Runtime:
    """The runtime of this container: the one set by ``set_runtime``, else built from the environment once."""
    with _slot.lock:
        if _slot.runtime is None:
            _slot.runtime = build_runtime(Settings.from_env(os.environ))
        return _slot.runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Replace the runtime (None: build from the environment again on next use)."""
    with _slot.lock:
        _slot.runtime = runtime


@contextmanager
def use_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Run handlers against ``runtime`` inside the block, then restore what was there."""
    with _slot.lock:
        previous, _slot.runtime = _slot.runtime, runtime
    try:
        yield runtime
    finally:
        with _slot.lock:
            _slot.runtime = previous
