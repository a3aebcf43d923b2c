"""The whole pipeline in one process without a socket: the in-memory ports, the emulator's core, the real handlers.

``MemoryPipeline`` is ``LocalPipeline``'s twin for the fast simulation (``videobatch simulate --backend memory``).
What is the same: the template (names, environments, parameters, rules, event sources, schedules) read by the
same code, the handlers loaded from the files the template names, ``LocalWiring`` delivering S3 events, SQS
batches (partial failures, visibility on the virtual clock, the dead-letter queue after ``maxReceiveCount``),
schedules, one-time expiry checks and asynchronous retries, all on one ``ManualClock``. What differs: the ports are
``videobatch.adapters.memory``'s twins (proved equal to the AWS adapters by ``tests/contract``), SQS and Scheduler
are ``memory_aws``'s twins, and TwelveLabs is ``EmulatorServer.handle`` behind ``InProcessTransport``.

What it cannot reproduce (the moto backend can): anything below the port boundary of the AWS adapters (boto3's
retries, DynamoDB's index lag, S3's HTTP), real latency (a latency fault is a timeout at once), the operators'
CLI against a CloudFormation stack (``publish_stack``), alarms evaluated on SQS depth samples of a moto queue
(they are sampled from the twin instead), and Lambda ``Invoke`` through moto (asynchronous invokes go to the
wiring directly).
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from twelvelabs_emulator.fetch import FetchError, HostAllowList
from twelvelabs_emulator.inprocess import InProcessTransport
from twelvelabs_emulator.models import EmulatorSettings
from twelvelabs_emulator.server import EmulatorConfig, EmulatorServer
from videobatch.adapters.memory import MemoryObjectStore, MemoryScheduler
from videobatch.clock import ManualClock
from videobatch.config import Settings
from videobatch.domain.records import INFLIGHT_QUEUE, INTAKE_QUEUE, queued_queue
from videobatch.services.ports import ObjectRef
from videobatch.twelvelabs import limits
from videobatch_tools.localstack.memory_aws import MemorySchedulerClient, MemorySqs
from videobatch_tools.localstack.pipeline import (
    START,
    HandlerHook,
    PipelineLifecycle,
    _with_environment,
    load_handlers,
    powertools_configured,
    powertools_environment,
)
from videobatch_tools.localstack.resources import plan_stack
from videobatch_tools.localstack.s3_tap import S3Notification, S3NotificationTap
from videobatch_tools.localstack.template import default_template_path, load_template
from videobatch_tools.localstack.wiring import LocalWiring

if TYPE_CHECKING:
    from videobatch.domain.events import OutgoingEvent
    from videobatch.runtime import Runtime

# Never resolved: the transport serves these addresses in process.
EMULATOR_BASE_URL: Final = "http://twelvelabs.inprocess"
EMULATOR_API_URL: Final = f"{EMULATOR_BASE_URL}/v1.3"
STACK_NAME: Final = "videobatch-memory"


class CountingEventBus:
    """The stack's bus when nothing subscribes: counts what was published by detail type, keeps nothing (a
    week of events would otherwise be held in memory for no reader)."""

    def __init__(self) -> None:
        self.published: Counter[str] = Counter()

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        for event in events:
            self.published[event.DETAIL_TYPE] += 1


class _WiringInvoker:
    """Lambda ``Invoke`` (InvocationType Event) of a function of the stack: queued in the wiring, as the local
    stack's moto hook does, with Lambda's retries."""

    def __init__(self, function_ids: Mapping[str, str]) -> None:
        self._function_ids = dict(function_ids)  # "flusher" -> logical id
        self.wiring: LocalWiring | None = None

    def invoke_async(self, function: str, payload: Mapping[str, Any]) -> None:
        function_id = self._function_ids.get(function)
        if function_id is None or self.wiring is None:
            return  # as LambdaInvoker with no ARN: the schedule runs it soon enough
        self.wiring.invoke_later(function_id, dict(payload))


class ObjectStoreFetcher:
    """The emulator's URL fetch for presigned URLs of a ``MemoryObjectStore``: the object read from the store, with
    the checks an HTTP fetch has (the allow-list, 404, the size bound)."""

    def __init__(self, objects: MemoryObjectStore) -> None:
        self._objects = objects

    def __call__(self, url: str, target: Path, *, max_bytes: int, allowed: HostAllowList) -> None:
        parts = urlsplit(url)
        if not allowed.allows(url) or parts.hostname != MemoryObjectStore.PRESIGNED_HOST:
            raise FetchError(f"Could not fetch the URL: the host of {parts.hostname} is not allowed.")
        bucket, _, key = parts.path.lstrip("/").partition("/")
        version = parse_qs(parts.query).get("versionId", [None])[-1]
        found = self._objects.object(ObjectRef(bucket=unquote(bucket), key=unquote(key), version_id=version))
        if found is None:
            raise FetchError("Could not fetch the URL: the server answered HTTP 404.")
        if len(found.body) > max_bytes:
            raise FetchError(f"The file at the URL exceeds the {max_bytes}-byte limit for URL uploads.")
        target.write_bytes(found.body)


class MemoryPipeline(PipelineLifecycle):
    """``with MemoryPipeline() as pipeline: pipeline.upload(...); pipeline.wiring.step()`` (no servers)."""

    def __init__(
        self,
        *,
        emulator_settings: EmulatorSettings | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
        start: datetime = START,
        seed: int = 0,
        template_path: Path | None = None,
        lambda_output: TextIO | None = None,
        stack_name: str = STACK_NAME,
        environment_overrides: Mapping[str, str] | None = None,
        handler_hook: HandlerHook | None = None,
    ) -> None:
        self.clock = ManualClock(start)
        self.api_key = secrets.token_hex(16)
        self._template_path = template_path or default_template_path()
        self._emulator_settings = emulator_settings or EmulatorSettings(
            item_concurrency=8, content_seconds_per_second=600.0, asset_ready_seconds=20.0
        )
        self._overrides = dict(parameter_overrides or {})
        self._environment_overrides = dict(environment_overrides or {})
        self._stack_name = stack_name
        self._handler_hook = handler_hook
        self._seed = seed
        self._exit = ExitStack()
        self._lambda_output: TextIO = lambda_output or self._exit.enter_context(open(os.devnull, "w"))  # noqa: SIM115

    def _start(self) -> None:
        from videobatch.runtime import build_memory_runtime, set_runtime
        from videobatch.twelvelabs.client import TwelveLabsClient

        overrides = {"TwelveLabsBaseUrl": EMULATOR_API_URL, **self._overrides}
        template = load_template(self._template_path)
        self.stack = _with_environment(
            plan_stack(template, stack_name=self._stack_name, parameter_overrides=overrides),
            self._environment_overrides,
        )
        self.settings = Settings.from_env(self.stack.env("FlusherFunction"))
        self._exit.enter_context(powertools_configured(powertools_environment(self.stack)))

        self.objects = MemoryObjectStore()
        self.transport = InProcessTransport()
        config = EmulatorConfig(
            api_key=self.api_key,
            clock="virtual",
            settings=self._emulator_settings,
            seed=self._seed,
            url_fetch_allowed_hosts=(MemoryObjectStore.PRESIGNED_HOST,),
        )
        self.emulator = EmulatorServer(
            config, clock=self.clock, sleep=self.transport.sleep, url_fetcher=ObjectStoreFetcher(self.objects)
        )
        self._exit.callback(self.emulator.stop)  # never started: removes its storage directory
        self.transport.bind(self.emulator, base_url=EMULATOR_BASE_URL)

        from videobatch.runtime import InvocationBudget, TwelveLabsStatuses

        budget, statuses = InvocationBudget(), TwelveLabsStatuses()
        invoker = _WiringInvoker({"flusher": "FlusherFunction", "batch_checker": "BatchCheckerFunction"})
        self.events = CountingEventBus()
        self.runtime: Runtime = build_memory_runtime(
            self.settings,
            clock=self.clock,
            twelvelabs=TwelveLabsClient(
                self.api_key,
                base_url=EMULATOR_API_URL,
                clock=self.clock,
                time_remaining=budget.remaining_seconds,
                transport=self.transport,
                on_response=statuses.observe,
            ),
            objects=self.objects,
            events=self.events,
            invoker=invoker,
            budget=budget,
            statuses=statuses,
        )
        set_runtime(self.runtime)
        self._exit.callback(set_runtime, None)
        # Whatever client is in place at exit (the simulation replaces the first one with its own).
        self._exit.callback(lambda: self.runtime.twelvelabs.close())  # noqa: PLW0108
        scheduler = self.runtime.scheduler
        assert isinstance(scheduler, MemoryScheduler)
        handlers = load_handlers(self.stack, self._template_path.parent)
        if self._handler_hook is not None:
            handlers = {function_id: self._handler_hook(function_id, h) for function_id, h in handlers.items()}
        self.tap = S3NotificationTap()
        self.sqs = MemorySqs(self.stack, self.clock)
        self.wiring = LocalWiring(
            self.stack,
            handlers,
            clock=self.clock,
            s3_notifications=self.tap,
            is_idle=self.settled,
            sqs=self.sqs,
            scheduler=MemorySchedulerClient(scheduler, target_arn=self.settings.batch_checker_arn),
        )
        invoker.wiring = self.wiring

    # --- driving ------------------------------------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        return self.stack.resources["VideoBucket"].ref

    def upload(self, key: str, body: bytes) -> str | None:
        """Put an object into the video bucket, as a user would (S3 notifies EventBridge); returns its version."""
        stored = self.objects.put(self.bucket, key, body)
        self.tap.put(
            S3Notification(
                account_id=self.stack.account_id,
                region=self.stack.region,
                bucket=self.bucket,
                key=key,
                size=len(body),
                etag=stored.etag,
                version_id=stored.version_id,
                event_name="s3:ObjectCreated:Put",
            )
        )
        return stored.version_id

    def settled(self) -> bool:
        """As ``LocalPipeline.settled``: every work queue of the item store is empty."""
        queues = [INTAKE_QUEUE, INFLIGHT_QUEUE]
        queues += [queued_queue(mode) for mode in limits.ANALYSIS_MODES]
        return not any(next(iter(self.runtime.items.iter_queue(queue, page_size=1)), None) for queue in queues)
