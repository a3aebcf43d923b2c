"""The handlers' dependency container: built lazily once per cold start from the environment, replaceable.

``get_runtime()`` builds a ``Runtime`` from ``Settings.from_env(os.environ)`` on first use (botocore clients, which
honour ``AWS_ENDPOINT_URL`` for the local stack; the API key from Secrets Manager; the TwelveLabs client; the system
clock) and keeps it for the life of the Lambda container. The local stack, the demo and tests call
``set_runtime(...)`` or ``use_runtime(...)`` with one built by ``build_runtime(...)`` around a ManualClock, their
endpoints and clients.
"""

from __future__ import annotations

import importlib
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, cast

import botocore.session
from aws_lambda_powertools import Logger, Metrics
from botocore.config import Config

from videobatch.clock import Clock, SystemClock
from videobatch.config import Settings
from videobatch.domain.policy import RequeuePolicy
from videobatch.domain.profiles import ProfileSet, load_default_profiles
from videobatch.services.ports import (
    BatchStore,
    ClaimStore,
    ControlStore,
    EventPublisher,
    ExpiryScheduler,
    FunctionInvoker,
    ItemStore,
    LeaseStore,
    MetricsSink,
    ObjectStore,
    OutcomeLedger,
    ReplayGuard,
    SecretValue,
    TwelveLabsApi,
    UploadQueue,
)

if TYPE_CHECKING:
    import boto3

    # Each handler imports only what it runs: the services (and their domain) are imported by the factory that
    # builds them, the adapters by build_runtime.
    from videobatch.adapters.profiles_source import ProfileSource
    from videobatch.services.asset_checker import AssetCheckService
    from videobatch.services.batch_checker import BatchCheckService
    from videobatch.services.flusher import FlushService
    from videobatch.services.ingest import IngestService
    from videobatch.services.lifecycle import ItemWriter
    from videobatch.services.lifecycle_events import ObjectDeletedService
    from videobatch.services.reconciler import ReconcileService
    from videobatch.services.submissions import SubmissionRecorder
    from videobatch.services.sweeper import SweepService
    from videobatch.services.webhooks import WebhookService

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


class TwelveLabsStatuses:
    """Every HTTP status TwelveLabs answered (retries included), counted for the run's metrics (handler.py)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}

    def observe(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._counts[status] = self._counts.get(status, 0) + 1

    def take(self) -> dict[int, int]:
        """The counts since the last take (one run's)."""
        with self._lock:
            counts, self._counts = self._counts, {}
            return counts


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
    invoker: FunctionInvoker
    replays: ReplayGuard
    webhook_secret: SecretValue | None = None  # None: webhooks are off
    budget: InvocationBudget = field(default_factory=InvocationBudget)
    twelvelabs_statuses: TwelveLabsStatuses = field(default_factory=TwelveLabsStatuses)
    # The operators' records (optional so a runtime of the pipeline's core ports alone still works).
    ledger: OutcomeLedger | None = None
    control: ControlStore | None = None
    # PROFILES_SOURCE set: profiles re-read (max age) and validated at the start of every run.
    profile_source: ProfileSource | None = None
    # The ingest queue, where ingest hands an unfinished multipart upload to its next invocation (None: SQS's
    # redelivery of the failed message continues it).
    upload_queue: UploadQueue | None = None

    def __post_init__(self) -> None:
        self.profiles.check_results_prefix(self.settings.results_prefix)

    def refresh_profiles(self) -> None:
        """The newest valid profiles of the source (the handler asks before every run; services built after it
        see them). Without a source the layer's profiles stay."""
        if self.profile_source is not None:
            self.profiles = self.profile_source.current(self.metrics)

    def item_writer(self) -> ItemWriter:
        """A writer per service: its lost-race count is that service's."""
        from videobatch.services.lifecycle import ItemWriter

        cleanup = self.twelvelabs if self.settings.delete_assets == "after_result" else None
        return ItemWriter(
            items=self.items,
            events=self.events,
            metrics=self.metrics,
            clock=self.clock,
            write_concurrency=self.settings.item_write_concurrency,
            ledger=self.ledger,
            asset_cleanup=cleanup,
        )

    def submission_recorder(self, writer: ItemWriter | None = None) -> SubmissionRecorder:
        from videobatch.services.submissions import SubmissionRecorder

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
        from videobatch.services.ingest import IngestService

        return IngestService(
            settings=self.settings,
            clock=self.clock,
            items=self.items,
            writer=self.item_writer(),
            objects=self.objects,
            assets=self.twelvelabs,
            profiles=self.profiles,
            metrics=self.metrics,
            remaining_seconds=self.budget.remaining_seconds,
            continuations=self.upload_queue,
        )

    def deletion_service(self) -> ObjectDeletedService:
        """S3 "Object Deleted" events (they arrive on the ingest queue, beside the uploads)."""
        from videobatch.services.lifecycle_events import ObjectDeletedService

        return ObjectDeletedService(
            settings=self.settings,
            clock=self.clock,
            items=self.items,
            writer=self.item_writer(),
            lister=self.objects,
            profiles=self.profiles,
        )

    def asset_check_service(self) -> AssetCheckService:
        from videobatch.services.asset_checker import AssetCheckService

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
        from videobatch.services.flusher import FlushService

        writer = self.item_writer()
        return FlushService(
            settings=self.settings,
            clock=self.clock,
            items=self.items,
            batches=self.batches,
            writer=writer,
            recorder=self.submission_recorder(writer),
            leases=self.leases,
            twelvelabs=self.twelvelabs,
            profiles=self.profiles,
            metrics=self.metrics,
            reconciler=self.reconcile_service(),
            owner=owner,
            control=self.control,
        )

    def reconcile_service(self) -> ReconcileService:
        from videobatch.services.reconciler import ReconcileService

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
        from videobatch.services.asset_janitor import OrphanAssetSweep
        from videobatch.services.sweeper import SweepPorts, SweepService

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
            asset_janitor=OrphanAssetSweep(
                settings=self.settings,
                clock=self.clock,
                items=self.items,
                leases=self.leases,
                assets=self.twelvelabs,
                metrics=self.metrics,
            ),
        )
        return SweepService(settings=self.settings, clock=self.clock, ports=ports, metrics=self.metrics)

    def webhook_service(self) -> WebhookService:
        from videobatch.errors import ConfigurationError
        from videobatch.services.webhooks import WebhookService

        if self.webhook_secret is None:
            raise ConfigurationError("webhooks are off: WEBHOOK_SECRET names no secret")
        return WebhookService(
            clock=self.clock,
            secret=self.webhook_secret,
            replays=self.replays,
            batches=self.batches,
            twelvelabs=self.twelvelabs,
            invoker=self.invoker,
            metrics=self.metrics,
        )

    def batch_check_service(self, policy: RequeuePolicy | None = None) -> BatchCheckService:
        """``policy``: an operator's cancel decides canceled items its own way (services.operations)."""
        from videobatch.services.batch_checker import BatchCheckService

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
            invoker=self.invoker,
            policy=policy,
        )


# boto3's "standard" retry mode (jittered backoff, retry quotas, throttling codes it knows), not the legacy default.
AWS_CLIENT_CONFIG: Final = Config(retries={"mode": "standard", "max_attempts": 5})


class _LazyClient:
    """An AWS client made on first use: a handler pays (tens of milliseconds each) only for the services it calls."""

    def __init__(self, make: Callable[[str, Config], Any], service: str, config: Config) -> None:
        self._make, self._service, self._config = make, service, config
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make(self._service, self._config)
        return getattr(self._client, name)


def _client_maker(session: boto3.Session | None) -> Callable[[str, Config], Any]:
    """Clients from the caller's boto3 session (local stack, tests, the ops CLI), else from a botocore session:
    a Lambda function never imports boto3 (its package loads s3transfer and multiprocessing, ~20 ms of each cold
    start, for clients botocore makes alike)."""
    if session is not None:
        return lambda service, config: session.client(service, config=config)  # type: ignore[call-overload]
    core = botocore.session.Session()
    return lambda service, config: core.create_client(service, config=config)


class _Deferred:
    """A port built on first use, as ``_LazyClient`` makes a client: its adapter module, and the records and
    models that module imports, load only in a handler that calls it (the webhook never loads the ledger or S3's
    adapter, and the TwelveLabs client with httpx only for a notification that names a task, not a batch).
    Built once, under a lock; every attribute is then the adapter's own."""

    def __init__(self, build: Callable[[], object]) -> None:
        self._build: Callable[[], object] | None = build
        self._target: object = None
        self._lock = threading.Lock()

    def _resolve(self) -> object:
        with self._lock:
            if self._build is not None:
                self._target, self._build = self._build(), None
            return self._target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resolve(), name)


def load_ports(service: object) -> None:
    """Build every deferred port ``service`` holds, itself, through the services it holds (writer, recorder, ...)
    or through the ports it holds (the TwelveLabs client's key provider): what its first invocation loads. For the
    cold-start benchmark and tests, which must not count a deferred build as free."""
    seen: set[int] = set()

    def load(obj: object) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        target = obj._resolve() if isinstance(obj, _Deferred) else obj
        for value in vars(target).values() if hasattr(target, "__dict__") else ():
            if isinstance(value, _Deferred) or type(value).__module__.startswith("videobatch.services"):
                load(value)

    load(service)


def _deferred(module: str, build: Callable[[ModuleType], object]) -> Any:
    return _Deferred(lambda: build(importlib.import_module(module)))


def _adapter(module: str, build: Callable[[ModuleType], object]) -> Any:
    return _deferred(f"videobatch.adapters.{module}", build)


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    session: boto3.Session | None = None,
    api_key: str | None = None,
    profiles: ProfileSet | None = None,
    metrics_sink: MetricsSink | None = None,
) -> Runtime:
    """Wire every adapter; ``api_key`` skips Secrets Manager (local stack, tests), ``session`` picks credentials.

    The API key is read through ``SecretApiKeyProvider``: cached 5 minutes, re-read at once when TwelveLabs refuses
    it, so a key stored after deploy (or rotated) is used without a cold start.
    """
    make_client = _client_maker(session)
    clock = clock or SystemClock()
    budget = InvocationBudget()
    statuses = TwelveLabsStatuses()

    def client(service: str, config: Config = AWS_CLIENT_CONFIG) -> Any:
        return cast(Any, _LazyClient(make_client, service, config))

    dynamodb, table, secrets = client("dynamodb"), settings.table_name, client("secretsmanager")
    key = api_key or _adapter(
        "secrets", lambda m: m.SecretApiKeyProvider(secrets, settings.twelvelabs_api_key_secret, clock=clock)
    )
    source = None
    if profiles is None and settings.profiles_source:
        # Powertools' parameters (and with them boto3): only where a profiles source is configured.
        import boto3

        from videobatch.adapters.profiles_source import profile_source

        source = profile_source(
            settings.profiles_source,
            session or boto3.Session(),
            max_age_seconds=settings.profiles_max_age_seconds,
            results_prefix=settings.results_prefix,
        )
        profiles = source.current(metrics_sink or metrics)
    return Runtime(
        settings=settings,
        clock=clock,
        twelvelabs=_deferred(
            "videobatch.twelvelabs.client",
            lambda m: m.TwelveLabsClient(
                key,
                base_url=settings.twelvelabs_base_url,
                clock=clock,
                time_remaining=budget.remaining_seconds,
                on_response=statuses.observe,
            ),
        ),
        items=_adapter("dynamodb", lambda m: m.DynamoItemRepository(dynamodb, table)),
        batches=_adapter("dynamodb", lambda m: m.DynamoBatchRepository(dynamodb, table)),
        claims=_adapter("dynamodb", lambda m: m.DynamoClaimRepository(dynamodb, table)),
        leases=_adapter("dynamodb", lambda m: m.DynamoLeaseStore(dynamodb, table)),
        # SigV4 presigned URLs: required for KMS-encrypted objects and the only kind newer regions accept.
        objects=_adapter(
            "s3", lambda m: m.S3ObjectStore(client("s3", AWS_CLIENT_CONFIG.merge(Config(signature_version="s3v4"))))
        ),
        events=_adapter("events", lambda m: m.EventBridgePublisher(client("events"), settings.event_bus_name)),
        scheduler=_adapter(
            "scheduler",
            lambda m: m.BatchExpiryScheduler(
                client("scheduler"),
                group_name=settings.scheduler_group_name,
                target_arn=settings.batch_checker_arn,
                role_arn=settings.scheduler_role_arn,
            ),
        ),
        profiles=profiles or load_default_profiles(),
        metrics=metrics_sink or metrics,
        invoker=_adapter(
            "invoker",
            lambda m: m.LambdaInvoker(
                client("lambda"), {"flusher": settings.flusher_arn, "batch_checker": settings.batch_checker_arn}
            ),
        ),
        replays=_adapter("dynamodb", lambda m: m.DynamoReplayGuard(dynamodb, table)),
        webhook_secret=(
            _adapter(
                "secrets",
                lambda m: m.SecretApiKeyProvider(secrets, settings.webhook_secret, json_field="secret", clock=clock),
            )
            if settings.webhook_secret
            else None
        ),
        budget=budget,
        twelvelabs_statuses=statuses,
        ledger=_adapter("ledger", lambda m: m.DynamoOutcomeLedger(dynamodb, table)),
        control=_adapter("control", lambda m: m.DynamoControlStore(dynamodb, table)),
        profile_source=source,
        upload_queue=(
            _adapter("sqs", lambda m: m.SqsUploadQueue(client("sqs"), settings.ingest_queue_url))
            if settings.ingest_queue_url
            else None
        ),
    )


def build_memory_runtime(
    settings: Settings,
    *,
    clock: Clock,
    twelvelabs: TwelveLabsApi,
    objects: ObjectStore | None = None,
    events: EventPublisher | None = None,
    invoker: FunctionInvoker | None = None,
    profiles: ProfileSet | None = None,
    metrics_sink: MetricsSink | None = None,
    budget: InvocationBudget | None = None,
    statuses: TwelveLabsStatuses | None = None,
) -> Runtime:
    """Every port on its in-memory twin (``adapters.memory``, held to the AWS adapters by ``tests/contract``).

    For the fast simulation and service tests: the same services and handlers, no AWS. ``twelvelabs`` is the
    caller's (a client over the emulator in process, or a fake); the metrics go to Powertools' ``metrics`` as in
    Lambda unless ``metrics_sink`` says otherwise.
    """
    from videobatch.adapters.memory import (
        MemoryBatchStore,
        MemoryClaimStore,
        MemoryControlStore,
        MemoryEventBus,
        MemoryInvoker,
        MemoryItemStore,
        MemoryLeaseStore,
        MemoryObjectStore,
        MemoryOutcomeLedger,
        MemoryReplayGuard,
        MemoryScheduler,
    )

    return Runtime(
        settings=settings,
        clock=clock,
        twelvelabs=twelvelabs,
        items=MemoryItemStore(),
        batches=MemoryBatchStore(),
        claims=MemoryClaimStore(),
        leases=MemoryLeaseStore(),
        objects=objects if objects is not None else MemoryObjectStore(),
        events=events if events is not None else MemoryEventBus(),
        scheduler=MemoryScheduler(),
        profiles=profiles or load_default_profiles(),
        metrics=metrics_sink or metrics,
        invoker=invoker if invoker is not None else MemoryInvoker(),
        replays=MemoryReplayGuard(),
        budget=budget or InvocationBudget(),
        twelvelabs_statuses=statuses or TwelveLabsStatuses(),
        ledger=MemoryOutcomeLedger(),
        control=MemoryControlStore(),
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
