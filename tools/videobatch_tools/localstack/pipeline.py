"""The whole pipeline on one machine: moto server, the TwelveLabs emulator, the template's resources and the
real handlers, all on one virtual clock.

``LocalPipeline`` is what ``videobatch demo``, the integration tests and the simulation stand on. Handlers are
loaded from the paths the template names (CodeUri + Handler), so the template, the wiring and the code cannot
drift apart; the runtime container every handler uses is built around the shared ManualClock, the moto endpoint
and the emulator, exactly as ``get_runtime()`` would build it from the environment in Lambda.

Powertools reads its environment (service name, metrics namespace, log level) when its objects are created, at
import in Lambda, where the environment is set first. So does the local stack: the template's Powertools variables
are set before ``videobatch.runtime`` and the handlers are imported (this module imports neither at load). A
process that imported them earlier (a test session, the simulation) gets the shared Logger and Metrics configured
from the same variables instead, so the EMF carries ``Dimensions: [["service"]]`` and the logs the service name,
as in Lambda.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Self, TextIO

from twelvelabs_emulator.models import EmulatorSettings
from twelvelabs_emulator.server import EmulatorConfig, EmulatorServer
from videobatch.clock import ManualClock
from videobatch.config import Settings
from videobatch.domain.records import (
    INFLIGHT_QUEUE,
    INTAKE_QUEUE,
    ItemRecord,
    queued_queue,
)
from videobatch.runtime import Runtime, build_runtime, logger, set_runtime
from videobatch.twelvelabs import limits
from videobatch_tools.localstack import lambda_invoke
from videobatch_tools.localstack.external_api import ExternalApi
from videobatch_tools.localstack.function_url import FunctionUrl, UrlResponse, WebhookRelay
from videobatch_tools.localstack.moto_server import MotoEndpoint, moto_server, patched_environ
from videobatch_tools.localstack.resources import LocalStack, create_stack
from videobatch_tools.localstack.template import default_template_path, load_template
from videobatch_tools.localstack.wiring import LocalWiring, RunReport, StepReport, WiringError, WiringStalledError

if TYPE_CHECKING:
    from videobatch.runtime import Runtime

Handler = Callable[[dict[str, Any], Any], Any]
# Wraps the handler of a function (by logical id), e.g. to observe every invocation in a test or a benchmark.
HandlerHook = Callable[[str, Handler], Handler]
STACK_NAME = "videobatch"
WEBHOOK_FUNCTION = "WebhookFunction"
# Settings only some functions get (template: per-function Environment); the local stack's one runtime serves
# every function, so it carries them all: function id -> variable.
FUNCTION_ONLY_VARIABLES = (("BatchCheckerFunction", "FLUSHER_ARN"), (WEBHOOK_FUNCTION, "WEBHOOK_SECRET"))
POWERTOOLS_VARIABLES = ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def load_handlers(stack: LocalStack, repo_root: Path) -> dict[str, Handler]:
    """Import every function's handler from the file the template points at (``CodeUri`` + ``Handler``)."""
    handlers: dict[str, Handler] = {}
    for function_id, function in stack.functions.items():
        module_name, _, attribute = function.handler.rpartition(".")
        path = repo_root / function.code_uri / f"{module_name.replace('.', '/')}.py"
        handlers[function_id] = getattr(_import_file(f"videobatch_functions.{module_name}", path), attribute)
    return handlers


def powertools_environment(stack: LocalStack) -> dict[str, str]:
    """The Powertools variables of the template's functions; one process shares one Logger and one Metrics, so
    every function must have the same (they come from Globals)."""
    seen = {
        tuple((name, env[name]) for name in POWERTOOLS_VARIABLES if name in env)
        for env in (stack.env(function_id) for function_id in stack.functions)
    }
    if len(seen) != 1:
        raise WiringError(f"functions differ in their Powertools environment, the local stack runs one: {seen}")
    return dict(seen.pop())


@contextmanager
def powertools_configured(environment: Mapping[str, str]) -> Iterator[None]:
    """The Powertools environment set for the block, and the shared Logger and Metrics following it.

    Imported here for the first time, ``videobatch.runtime`` creates them under ``environment`` (as in Lambda);
    imported earlier, they are set to what that import would have read, and put back after the block.
    """
    with patched_environ(environment):
        from videobatch.runtime import logger, metrics

        service = environment.get("POWERTOOLS_SERVICE_NAME")
        previous = (metrics.namespace, metrics.service, logger.service, logger.log_level)
        metrics.namespace = environment.get("POWERTOOLS_METRICS_NAMESPACE")
        metrics.service = service
        if service is not None:
            logger.service = service
            logger.append_keys(service=service)
        logger.setLevel(environment.get("POWERTOOLS_LOG_LEVEL", "INFO"))
        try:
            yield
        finally:
            metrics.namespace, metrics.service, logger.service, level = previous
            logger.append_keys(service=logger.service)
            logger.setLevel(level)


def _import_file(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load handler module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class PipelineLifecycle:
    """What both local stacks share: ``with`` starts one (``_start``) and closes everything it opened (``_exit``);
    ``_lambda_streams`` sends what the handlers print and log where CloudWatch would keep it (``_lambda_output``)."""

    _exit: ExitStack
    _lambda_output: TextIO

    def _start(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit.close()

    @contextmanager
    def _lambda_streams(self) -> Iterator[None]:

        stream = logger.registered_handler
        previous = stream.setStream(self._lambda_output) if isinstance(stream, logging.StreamHandler) else None
        try:
            with redirect_stdout(self._lambda_output):
                yield
        finally:
            if previous is not None and isinstance(stream, logging.StreamHandler):
                stream.setStream(previous)


class LocalPipeline(PipelineLifecycle):
    """``with LocalPipeline() as pipeline: pipeline.upload(...); pipeline.run_until_idle()``."""

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
        webhooks: bool = False,
        external_api: ExternalApi | None = None,
        multipart_chunk_bytes: int | None = None,
    ) -> None:
        """``parameter_overrides`` are template parameters (``{"ReservedBatchSlots": "2"}``).

        ``webhooks``: the stack with ``EnableWebhooks=true``; the emulator signs a notification when a batch ends
        (with ``webhook_secret``, also stored in the stack's WebhookSecret) and it reaches WebhookFunction through
        its Function URL (``localstack.function_url``); ``post_webhook`` sends any request to that URL.

        ``environment_overrides`` are extra function environment variables, as a deployer could add to the
        template's Globals: settings the template does not expose as parameters (``FLUSH_LEASE_SECONDS``,
        ``ASSET_TIMEOUT_SECONDS``, ...). ``stack_name`` names the resources; moto's backends are
        process-wide, so two pipelines in one process (one after the other) need different names.
        ``handler_hook`` wraps every handler the wiring calls.

        ``external_api``: TwelveLabs is that endpoint (``localstack.external_api``: the real API or an emulator
        started elsewhere) with its key, instead of an emulator started here; the clock starts at the endpoint's
        virtual now and moves it along, or follows real time (a wait sleeps). No ``emulator`` then.
        ``multipart_chunk_bytes``: the chunk size the emulator hands out for multipart uploads (small ones make
        many-chunk uploads of small test files).
        """
        self.external_api = external_api
        if external_api is not None and webhooks:
            raise ValueError("webhooks need the in-process emulator (an external endpoint cannot reach this machine)")
        self.clock = ManualClock(external_api.start() if external_api is not None else start)
        self.api_key = external_api.key if external_api is not None else secrets.token_hex(16)
        # How the wiring moves time: the clock alone, or with the external endpoint's clock (or a real wait).
        self.advance = external_api.advancer(self.clock) if external_api is not None else self.clock.advance
        self._template_path = template_path or default_template_path()
        self._emulator_settings = emulator_settings or EmulatorSettings(
            item_concurrency=8, content_seconds_per_second=600.0, asset_ready_seconds=20.0
        )
        self._overrides = dict(parameter_overrides or {})
        self._environment_overrides = dict(environment_overrides or {})
        self._stack_name = stack_name
        self._handler_hook = handler_hook
        self._webhooks = webhooks
        self.webhook_secret = secrets.token_hex(16) if webhooks else None
        self.webhook_relay: WebhookRelay | None = WebhookRelay(self.clock) if webhooks else None
        self._seed = seed
        self._multipart_chunk_bytes = multipart_chunk_bytes
        self._clients: dict[str, Any] = {}
        self._exit = ExitStack()
        self._lambda_output: TextIO = lambda_output or self._exit.enter_context(open(os.devnull, "w"))  # noqa: SIM115

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def _start(self) -> None:
        if self.external_api is not None:
            self._exit.callback(self.external_api.close)
        self.moto: MotoEndpoint = self._exit.enter_context(moto_server())
        # One session for everything: clients made from it share botocore's loaded service models, which makes
        # each new client cheap (a fresh session re-reads the models from disk, ~0.2 s per client).
        self.session = self.moto.session()
        if self.external_api is not None:
            self.api_url = self.external_api.url
        else:
            config = EmulatorConfig(
                api_key=self.api_key,
                clock="virtual",
                settings=self._emulator_settings,
                seed=self._seed,
                webhook_secret=self.webhook_secret,
            )
            if self._multipart_chunk_bytes is not None:
                config = config.model_copy(update={"multipart_chunk_bytes": self._multipart_chunk_bytes})
            sender = self.webhook_relay.send if self.webhook_relay is not None else None
            self.emulator = self._exit.enter_context(EmulatorServer(config, clock=self.clock, webhook_sender=sender))
            self.api_url = self.emulator.api_url
        overrides = {"TwelveLabsBaseUrl": self.api_url, **self._overrides}
        secret_values: dict[str, str] = {}
        if self.webhook_secret is not None:
            overrides["EnableWebhooks"] = "true"
            secret_values["WebhookSecret"] = self.webhook_secret
        self.stack = _with_environment(
            create_stack(
                load_template(self._template_path),
                stack_name=self._stack_name,
                endpoint_url=self.moto.endpoint_url,
                parameter_overrides=overrides,
                api_key=self.api_key,
                region=self.moto.region,
                session=self.session,
                secret_values=secret_values,
            ),
            self._environment_overrides,
        )
        environment = self.stack.env("FlusherFunction")
        for function_id, variable in FUNCTION_ONLY_VARIABLES:
            if function_id in self.stack.functions and variable in self.stack.env(function_id):
                environment[variable] = self.stack.env(function_id)[variable]
        # One runtime serves every function; the ingest queue's URL is ingest's alone (its multipart continuations).
        environment["INGEST_QUEUE_URL"] = self.stack.env("IngestFunction").get("INGEST_QUEUE_URL", "")
        self.settings = Settings.from_env(environment)
        # Before the first import of videobatch.runtime and the handlers, as Lambda sets it before the import.
        self._exit.enter_context(powertools_configured(powertools_environment(self.stack)))

        self.runtime: Runtime = build_runtime(
            self.settings, clock=self.clock, session=self.session, api_key=self.api_key
        )
        set_runtime(self.runtime)
        self._exit.callback(set_runtime, None)
        self._exit.callback(self.runtime.twelvelabs.close)
        handlers = load_handlers(self.stack, self._template_path.parent)
        if self._handler_hook is not None:
            handlers = {function_id: self._handler_hook(function_id, h) for function_id, h in handlers.items()}
        self.wiring = LocalWiring(
            self.stack,
            handlers,
            clock=self.clock,
            session=self.session,
            s3_notifications=self.moto.s3_notifications,
            is_idle=self.settled,
        )
        for function_id, function in self.stack.functions.items():
            later = functools.partial(self.wiring.invoke_later, function_id)
            lambda_invoke.register(function.name, self._invoker(function_id), later)
            self._exit.callback(lambda_invoke.unregister, function.name)
        self.function_url: FunctionUrl | None = None
        if self.webhook_relay is not None:
            url = self.stack.outputs["WebhookUrl"]
            self.function_url = FunctionUrl(
                url, functools.partial(self.wiring.invoke, WEBHOOK_FUNCTION, source=url), self.clock
            )
            self.webhook_relay.url = self.function_url
            self.webhook_relay.emulator = self.emulator
            self.wiring.add_source(self.webhook_relay)

    def _invoker(self, function_id: str) -> lambda_invoke.Invoker:
        """Lambda Invoke of one function (from moto's server thread, while the caller waits for the answer)."""

        def invoke(event: Any) -> tuple[Any, str | None, str | None]:
            with self._lambda_streams():
                invocation = self.wiring.invoke(function_id, event)
            if invocation.error is not None:
                return None, invocation.error.type, invocation.error.message
            return invocation.result, None, None

        return invoke

    def post_webhook(self, body: bytes, headers: Mapping[str, str], method: str = "POST") -> UrlResponse:
        """A request to the webhook function's URL, as anyone on the internet could send (tests: forged ones)."""
        if self.function_url is None:
            raise WiringError("webhooks are off: LocalPipeline(webhooks=True) creates the webhook function")
        with self._lambda_streams():
            return self.function_url.request(method, body, headers)

    # --- driving ------------------------------------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        return self.stack.resources["VideoBucket"].ref

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` bound to the moto server, made once per pipeline."""
        if service not in self._clients:
            endpoint = self.moto.endpoint_url
            self._clients[service] = self.session.client(service, endpoint_url=endpoint)  # type: ignore[call-overload]
        return self._clients[service]

    def upload(self, key: str, body: bytes) -> str | None:
        """Put an object into the video bucket, as a user would; returns its version id."""
        response = self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)
        version: str | None = response.get("VersionId")
        return version

    def run_until_idle(self, max_steps: int = 10_000) -> RunReport:
        """Drive the template's wiring, moving the virtual clock to whatever is due next, until nothing is left.

        What the handlers print (JSON logs, EMF metrics) goes to ``lambda_output`` as CloudWatch would keep it.
        """
        with self._lambda_streams():
            return self.wiring.run_until_idle(self.advance, max_steps=max_steps)

    def run_until_idle_within(
        self,
        max_seconds: float,
        on_wait: Callable[[float, float, list[str]], None] | None = None,
        max_steps: int = 100_000,
    ) -> tuple[RunReport, bool]:
        """``run_until_idle``, but for at most ``max_seconds`` of the clock (real seconds against an endpoint on
        real time): ``(report, idle)``. ``on_wait(elapsed, wait, reasons)`` is called before each wait."""
        totals = StepReport()
        advanced = 0.0
        with self._lambda_streams():
            for steps in range(1, max_steps + 1):
                report = self.wiring.step()
                totals.add(report)
                if report.did_work:
                    continue
                reasons = self.wiring.pending()
                if not reasons:
                    return RunReport(steps=steps, advanced_seconds=advanced, totals=totals), True
                due = self.wiring.next_due()
                if due is None:
                    raise WiringStalledError(f"not idle and nothing is scheduled: {reasons}")
                left = max_seconds - advanced
                if left <= 0:
                    return RunReport(steps=steps, advanced_seconds=advanced, totals=totals), False
                wait = min(max(0.0, (due - self.clock.now()).total_seconds()), left)
                if on_wait is not None:
                    on_wait(advanced, wait, reasons)
                if wait > 0:
                    self.advance(wait)
                    advanced += wait
        raise WiringStalledError(f"not idle after {max_steps} steps: {self.wiring.pending()}")

    def run_for(self, seconds: float) -> RunReport:
        """Drive the wiring for ``seconds`` of virtual time, the schedules firing on after the work is done."""
        with self._lambda_streams():
            return self.wiring.run_for(self.advance, seconds)

    def run_until(self, condition: Callable[[], bool], max_steps: int = 10_000) -> RunReport:
        """Drive the wiring as ``run_until_idle`` does, but stop as soon as ``condition()`` holds after a step.

        The clock is never advanced past the step that made the condition true, so a test can change the world
        (emulator settings, faults) exactly there. Raises WiringStalledError when the pipeline goes idle (or runs
        out of steps) with the condition still false.
        """
        totals = StepReport()
        advanced = 0.0
        with self._lambda_streams():
            for steps in range(1, max_steps + 1):
                report = self.wiring.step()
                totals.add(report)
                if condition():
                    return RunReport(steps=steps, advanced_seconds=advanced, totals=totals)
                if report.did_work:
                    continue
                reasons = self.wiring.pending()
                due = self.wiring.next_due()
                if not reasons or due is None:
                    raise WiringStalledError(f"idle after {steps} steps and the condition is still false")
                wait = (due - self.clock.now()).total_seconds()
                if wait > 0:
                    self.advance(wait)
                    advanced += wait
        raise WiringStalledError(f"condition still false after {max_steps} steps: {self.wiring.pending()}")

    def settled(self) -> bool:
        """True when no item is on its way: every work queue of the table is empty (only terminal items remain).

        Without this the wiring would call a quiet minute idle while queued items wait for ``max_wait_seconds``.
        """
        queues = [INTAKE_QUEUE, INFLIGHT_QUEUE]
        queues += [queued_queue(mode) for mode in limits.ANALYSIS_MODES]
        return not any(next(iter(self.runtime.items.iter_queue(queue, page_size=1)), None) for queue in queues)

    def items(self) -> Iterator[ItemRecord]:
        """Every item record in the table (a scan: for demos and tests, never for the pipeline itself)."""
        paginator = self.client("dynamodb").get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.settings.table_name,
            FilterExpression="sk = :item",
            ExpressionAttributeValues={":item": {"S": "ITEM"}},
            ProjectionExpression="pk",
        )
        for page in pages:
            for row in page["Items"]:
                item = self.runtime.items.get(row["pk"]["S"].removeprefix("ITEM#"))
                if item is not None:
                    yield item

    def publish_stack(self) -> str:
        """Describe the local stack to CloudFormation (in moto) as a deployed one is described, so the operators'
        CLI finds it by name (``videobatch status --stack NAME``): its Outputs and Parameters as the template
        resolves them, and a ``SweeperFunction`` of the same name whose environment is the template's (Lambda
        Invoke of it runs the local handler: ``localstack.lambda_invoke``). Returns the stack name."""
        import json

        sweeper = self.stack.functions["SweeperFunction"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        parameters = {name: str(value) for name, value in self.stack.parameters.items()}
        template = {
            "Parameters": {name: {"Type": "String"} for name in parameters},
            "Resources": {
                "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}},
                "SweeperFunction": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "FunctionName": sweeper.name,
                        "Runtime": "python3.13",
                        "Handler": sweeper.handler,
                        "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                        "Code": {"ZipFile": "def handler(event, context):\n    return {}\n"},
                        "Environment": {"Variables": dict(sweeper.environment)},
                    },
                },
            },
            "Outputs": {name: {"Value": value} for name, value in self.stack.outputs.items()},
        }
        self.client("cloudformation").create_stack(
            StackName=self._stack_name,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": name, "ParameterValue": value} for name, value in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        return self._stack_name

    def read_result(self, key: str) -> bytes:
        bucket = self.settings.results_bucket or self.bucket
        body: bytes = self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return body


def _with_environment(stack: LocalStack, extra: Mapping[str, str]) -> LocalStack:
    """The stack with ``extra`` added to every function's environment (as if set in the template's Globals)."""
    if not extra:
        return stack
    functions = {
        function_id: dataclasses.replace(function, environment={**function.environment, **extra})
        for function_id, function in stack.functions.items()
    }
    return dataclasses.replace(stack, functions=functions)
