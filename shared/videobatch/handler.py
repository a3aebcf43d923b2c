"""The one decorator every Lambda handler wears: what each run does around its service, in one place.

``@lambda_handler("flusher")`` on ``def handler(event, context) -> Summary`` does, in this order:

1. ``Heartbeat`` (Count 1) in its own EMF blob with the dimensions ``service`` and ``function``, before anything
   else (before the runtime is built, before any AWS or TwelveLabs call), so the heartbeat alarms see every run
   that started, whatever it then hits. Its own blob (Powertools ``single_metric``), because the other metrics keep
   the plain ``service`` dimension set the other alarms watch.
2. Powertools logger context (function name, request id, cold start) on every log line of the run.
3. ``get_runtime().budget.bind(context)``: the TwelveLabs client's deadlines follow the invocation's time left.
4. The handler's summary model becomes the returned dict, ``{"work_done": ..., **summary}`` (JSON-safe, as Lambda
   returns it; the local stack's idle detection reads ``work_done``), and is logged once as ``run summary``.
   A handler may return a plain mapping instead (ingest's partial batch response), returned as it is.
5. TwelveLabs responses of the run counted by status class (``TwelveLabsErrors``, ``TwelveLabsAuthErrors``,
   ``TwelveLabsThrottles``, ``TwelveLabsServerErrors``, 0 when none), from the client's response observer
   (``Runtime.twelvelabs_statuses``): retries count, as they are what the API answered.
6. When the run raises: ``PipelineFaults`` (Count 1) and the error logged with its traceback, then re-raised so
   Lambda counts the failure (``Errors``) and retries as it does for the trigger.
7. The metrics flushed (one EMF blob) whether the run returned or raised: Powertools' ``log_metrics`` does this in
   a ``finally`` as well; here it is explicit, and skipped when the run added nothing (Powertools warns then).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, Protocol

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from videobatch.runtime import Runtime, get_runtime, logger, metrics

FunctionName = Literal["ingest", "asset_checker", "flusher", "batch_checker", "sweeper", "webhook"]
Event = dict[str, Any]

HEARTBEAT: Final = "Heartbeat"
PIPELINE_FAULTS: Final = "PipelineFaults"
# Metric name -> the HTTP statuses it counts (TwelveLabsErrors: every error status).
TWELVELABS_STATUS_METRICS: Final[Mapping[str, Callable[[int], bool]]] = {
    "TwelveLabsErrors": lambda status: status >= 400,
    "TwelveLabsAuthErrors": lambda status: status in (401, 403),
    "TwelveLabsThrottles": lambda status: status == 429,
    "TwelveLabsServerErrors": lambda status: status >= 500,
}


class Summary(Protocol):
    """What a service's run returns (a pydantic model with a ``work_done`` count)."""

    @property
    def work_done(self) -> int: ...

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


HandlerResult = Summary | Mapping[str, Any]
Handler = Callable[[Event, LambdaContext], HandlerResult]
LambdaEntryPoint = Callable[[Event, LambdaContext], dict[str, Any]]


def lambda_handler(function: FunctionName) -> Callable[[Handler], LambdaEntryPoint]:
    """Wrap a handler of the function named ``function`` (the ``function`` dimension of its heartbeat)."""

    def decorate(run: Handler) -> LambdaEntryPoint:
        @functools.wraps(run)
        def entry_point(event: Event, context: LambdaContext) -> dict[str, Any]:
            emit_heartbeat(function)
            return _logged(run, function)(event, context)

        return entry_point

    return decorate


def emit_heartbeat(function: FunctionName) -> None:
    """One ``Heartbeat`` in an EMF blob of its own, dimensions ``service`` (when configured) and ``function``."""
    dimensions: dict[str, str] = {"function": function}
    if metrics.service:
        dimensions = {"service": str(metrics.service), **dimensions}
    with single_metric(
        name=HEARTBEAT, unit=MetricUnit.Count, value=1, namespace=metrics.namespace, default_dimensions=dimensions
    ):
        pass


def _logged(run: Handler, function: FunctionName) -> LambdaEntryPoint:
    @logger.inject_lambda_context
    def logged(event: Event, context: LambdaContext) -> dict[str, Any]:
        runtime: Runtime | None = None
        try:
            runtime = get_runtime()
            runtime.refresh_profiles()  # a new valid version of PROFILES_SOURCE, if there is one (max age)
            runtime.budget.bind(context)
            runtime.twelvelabs_statuses.take()  # what an earlier run left uncounted is not this run's
            returned = _as_dict(run(event, context))
        except Exception:
            metrics.add_metric(name=PIPELINE_FAULTS, unit=MetricUnit.Count, value=1)
            logger.exception("run failed", extra={"function": function})
            raise
        finally:
            if runtime is not None:
                responses = runtime.twelvelabs_statuses.take()
                for name, counts in TWELVELABS_STATUS_METRICS.items():
                    value = sum(n for status, n in responses.items() if counts(status))
                    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            if metrics.metric_set:
                metrics.flush_metrics()
        logger.info("run summary", extra={"function": function, "summary": returned})
        return returned

    return logged


def _as_dict(result: HandlerResult) -> dict[str, Any]:
    if isinstance(result, Mapping):
        return dict(result)
    return {"work_done": result.work_done, **result.model_dump(mode="json")}


__all__ = ["Event", "FunctionName", "LambdaContext", "emit_heartbeat", "lambda_handler", "logger", "metrics"]
