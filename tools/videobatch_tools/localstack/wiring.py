"""Drive the template's wiring (S3 -> EventBridge -> SQS -> Lambda, schedules, Scheduler) without AWS Lambda.

Handlers are plain callables ``handler(event, context)`` passed in by logical function id; this module never
imports the functions. Time comes from an injected clock, so a simulation can run hours of pipeline in seconds:

- S3 -> EventBridge: moto's own events are not AWS-shaped (see ``s3_tap``), so the wiring builds the exact
  "Object Created" event for every object moto reports and routes it through the template's default-bus rules,
  matching their EventPattern itself (``event_patterns``) and sending to their SQS targets in moto.
- SQS -> Lambda: messages are received from moto in batches of the event source's BatchSize and handed over in
  the Lambda SQS event shape. Successful records are deleted; failed ones (``batchItemFailures`` with
  ReportBatchItemFailures, or every record when the handler raises or overruns its Timeout) come back after the
  queue's VisibilityTimeout on the virtual clock. moto itself moves a message to the dead-letter queue when its
  receive count reaches the queue's RedrivePolicy maxReceiveCount, as SQS does.
- Schedule events: each ``rate(...)`` Schedule event of a function fires one period after the wiring starts and
  every period after, with the "Scheduled Event" shape. When the clock jumps over several periods, the missed
  firings are coalesced into one (a virtual clock skipped them; nothing ran in between).
- EventBridge Scheduler: one-time ``at(...)`` schedules in the template's schedule groups fire once the clock
  passes them, with their Target Input as the event, and are deleted when ActionAfterCompletion is DELETE.
- Asynchronous invocations (both kinds of schedule invoke Lambda asynchronously): when the handler raises or
  overruns, the same event is delivered again one minute later and, failing again, two minutes after that (Lambda's
  default of two retries), then dropped, as Lambda does without an on-failure destination.

Metrics: what each invocation prints in CloudWatch's Embedded Metric Format (Powertools writes EMF JSON to stdout)
is extracted into ``metrics`` (an ``alarms.MetricStore``) at the virtual time it was printed, together with the
Lambda metrics of every invocation (``AWS/Lambda`` ``Invocations``, ``Errors``, ``Throttles``, ``Duration`` per
``FunctionName``) and, once a virtual minute, the depth of every queue of the stack (``AWS/SQS``
``ApproximateNumberOfMessagesVisible`` per ``QueueName``), so the template's alarms can be evaluated against them.
Failed invocations are kept as summaries (``InvocationError``: type and message), never as live exceptions, whose
tracebacks would hold every frame of the failed run.

Extra sources (``WiringSource``): anything else that delivers work to the functions on the wiring's clock (the
local stack's webhook relay) is stepped with the rest, and its pending work and next due time count for idle.

Idle: ``run_until_idle`` stops when no S3 notification, queued or in-flight message, or pending one-time
schedule remains, every periodic schedule has fired since the last work anywhere and reported no work, and the
optional ``is_idle`` callback agrees. A periodic handler reports work by returning a mapping with an integer
``"work_done"`` greater than zero; any other return value counts as no work; an exception counts as unknown.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TextIO

import boto3
from botocore.exceptions import ClientError

from videobatch.clock import Clock
from videobatch_tools.localstack.alarms import MetricStore
from videobatch_tools.localstack.event_patterns import matches
from videobatch_tools.localstack.lambda_runtime import (
    LocalLambdaContext,
    UnsupportedScheduleError,
    at_time,
    object_created_event,
    rate_period,
    scheduled_event,
)
from videobatch_tools.localstack.moto_server import local_session, patched_environ
from videobatch_tools.localstack.resources import LocalStack
from videobatch_tools.localstack.s3_tap import S3NotificationTap

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

# Real seconds moto keeps a received message hidden; the wiring itself releases it on the virtual clock.
_PARKED_SECONDS = 3600
_SQS_MAX_RECEIVE = 10


class WiringSource(Protocol):
    """Work the wiring steps besides its own (``step`` returns how much was done)."""

    def step(self) -> int: ...
    def pending(self) -> list[str]: ...
    def next_due(self) -> datetime | None: ...


class WiringError(RuntimeError):
    """The template asks for wiring the local stack cannot provide, or a handler is missing for it."""


class WiringStalledError(RuntimeError):
    """run_until_idle could not reach idle: something stays pending that no step or clock advance resolves."""


class LambdaTimeoutError(TimeoutError):
    """The handler returned after its Timeout on the virtual clock; Lambda would have stopped it."""


@dataclass(frozen=True)
class InvocationError:
    """What is kept of a failed invocation: the exception's type and message (as Lambda reports errorType and
    errorMessage), not the exception, whose traceback would keep the failed run's frames alive."""

    type: str
    message: str

    @classmethod
    def of(cls, error: BaseException) -> InvocationError:
        return cls(type=type(error).__name__, message=str(error)[:_ERROR_MESSAGE_CHARS])


_ERROR_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class Invocation:
    function_id: str
    source: str
    event: Any
    result: Any
    error: InvocationError | None
    started_at: datetime
    finished_at: datetime


@dataclass
class StepReport:
    s3_events_routed: int = 0
    sqs_batches: int = 0
    records_succeeded: int = 0
    records_failed: int = 0
    one_time_fired: int = 0
    periodic_fired: int = 0
    periodic_work: int = 0
    async_retries: int = 0
    errors: int = 0
    source_work: int = 0

    @property
    def did_work(self) -> bool:
        return bool(
            self.s3_events_routed
            or self.sqs_batches
            or self.one_time_fired
            or self.periodic_work
            or self.async_retries
            or self.source_work
        )

    def add(self, other: StepReport) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class RunReport:
    steps: int
    advanced_seconds: float
    totals: StepReport


@dataclass(frozen=True)
class _SqsSource:
    function_id: str
    queue_name: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    visibility_timeout: timedelta


@dataclass
class _Periodic:
    function_id: str
    event_name: str
    rule_arn: str
    period: timedelta
    payload: Any
    next_due: datetime
    # Work reported by the latest firing since the last work anywhere; None = not known to be idle.
    last_work: int | None = None


@dataclass(frozen=True)
class _Target:
    kind: str  # "sqs" (value: queue URL) or "lambda" (value: logical function id)
    value: str
    payload: Any


@dataclass(frozen=True)
class _Route:
    rule_id: str
    pattern: Mapping[str, Any]
    targets: tuple[_Target, ...]


@dataclass
class _Parked:
    queue_url: str
    receipt_handle: str
    release_at: datetime


# Lambda's default for asynchronous invocations: two retries, one minute then two minutes after a failure.
ASYNC_RETRY_DELAYS_SECONDS: tuple[float, ...] = (60.0, 120.0)


@dataclass
class _AsyncRetry:
    due: datetime
    function_id: str
    event: Any
    source: str
    retries_done: int


@dataclass
class _OneTime:
    group: str
    name: str
    due: datetime
    target_arn: str
    payload: Any
    delete_after: bool
    version: str


class LocalWiring:
    def __init__(
        self,
        stack: LocalStack,
        handlers: Mapping[str, Handler],
        *,
        clock: Clock,
        session: boto3.session.Session | None = None,
        s3_notifications: S3NotificationTap | None = None,
        is_idle: Callable[[], bool] | None = None,
        raise_handler_errors: bool = False,
        set_environment: bool = True,
        sources: tuple[WiringSource, ...] = (),
        sqs: Any = None,
        scheduler: Any = None,
    ) -> None:
        """``sqs`` and ``scheduler``: clients with the boto3 calls the wiring makes (default: boto3 clients of
        ``session`` at the stack's endpoint); the in-memory backend passes its twins (``memory_aws``)."""
        unknown = set(handlers) - set(stack.functions)
        if unknown:
            raise WiringError(f"handlers for functions the template does not define: {sorted(unknown)}")
        self._stack = stack
        self._handlers = dict(handlers)
        self._clock = clock
        if sqs is None or scheduler is None:
            aws = session or local_session(stack.region)
            if sqs is None:
                sqs = aws.client("sqs", endpoint_url=stack.endpoint_url)
            if scheduler is None:
                scheduler = aws.client("scheduler", endpoint_url=stack.endpoint_url)
        self._sqs = sqs
        self._scheduler = scheduler
        self._tap = s3_notifications
        self._is_idle = is_idle
        self._sources: list[WiringSource] = list(sources)
        self._raise = raise_handler_errors
        self._set_environment = set_environment
        self._resolver = stack.resolver()
        self._sqs_sources: list[_SqsSource] = []
        self._periodic: list[_Periodic] = []
        self._collect_function_events(clock.now())
        self._routes = self._collect_routes()
        self._groups = [
            stack.resources[lid].ref
            for lid, spec in stack.template["Resources"].items()
            if spec["Type"] == "AWS::Scheduler::ScheduleGroup" and self._resolver.resource_enabled(lid)
        ]
        self._parked: list[_Parked] = []
        self._sent_at: dict[str, datetime] = {}
        self._first_received: dict[str, datetime] = {}
        self._completed_one_time: set[tuple[str, str, str]] = set()
        self._async_retries: list[_AsyncRetry] = []
        self._sequence = 0
        self._report = StepReport()
        self.invocations: list[Invocation] = []
        self.metrics = MetricStore()
        self._queues = [
            (resource.attributes["QueueName"], resource.attributes["QueueUrl"])
            for lid, resource in stack.resources.items()
            if stack.template["Resources"].get(lid, {}).get("Type") == "AWS::SQS::Queue"
            and self._resolver.resource_enabled(lid)
        ]
        self._queues_sampled_at: datetime | None = None

    def add_source(self, source: WiringSource) -> None:
        self._sources.append(source)

    # --- wiring read from the template -------------------------------------------------------------------------

    def _collect_function_events(self, start: datetime) -> None:
        for function_id in self._handlers:
            events = self._stack.template["Resources"][function_id].get("Properties", {}).get("Events", {})
            for event_name, spec in events.items():
                props = self._resolver.resolve(spec.get("Properties", {}))
                if props.get("Enabled", True) is False:
                    continue
                if spec["Type"] == "SQS":
                    self._sqs_sources.append(self._sqs_source(function_id, props))
                elif spec["Type"] == "Schedule":
                    self._periodic.append(self._periodic_schedule(function_id, event_name, props, start))
                else:
                    raise WiringError(f"{function_id}.{event_name}: event type {spec['Type']} is not wired locally")

    def _sqs_source(self, function_id: str, props: Mapping[str, Any]) -> _SqsSource:
        queue_id = self._stack.logical_id_for_arn(str(props["Queue"]))
        if queue_id is None:
            raise WiringError(f"{function_id}: SQS source {props['Queue']} is not a queue of this stack")
        queue = self._stack.resources[queue_id]
        queue_props = self._resolver.resolve(self._stack.template["Resources"][queue_id].get("Properties", {}))
        return _SqsSource(
            function_id=function_id,
            queue_name=queue.attributes["QueueName"],
            queue_url=queue.attributes["QueueUrl"],
            queue_arn=queue.attributes["Arn"],
            batch_size=int(props.get("BatchSize", 10)),
            report_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            visibility_timeout=timedelta(seconds=int(queue_props.get("VisibilityTimeout", 30))),
        )

    def _periodic_schedule(
        self, function_id: str, event_name: str, props: Mapping[str, Any], start: datetime
    ) -> _Periodic:
        period = rate_period(str(props["Schedule"]))
        stack = self._stack
        rule_arn = f"arn:aws:events:{stack.region}:{stack.account_id}:rule/{stack.stack_name}-{function_id}{event_name}"
        payload = json.loads(props["Input"]) if "Input" in props else None
        return _Periodic(function_id, event_name, rule_arn, period, payload, next_due=start + period)

    def _collect_routes(self) -> list[_Route]:
        routes: list[_Route] = []
        for logical_id, spec in self._stack.template["Resources"].items():
            if spec["Type"] != "AWS::Events::Rule" or not self._resolver.resource_enabled(logical_id):
                continue
            props = self._resolver.resolve(spec.get("Properties", {}))
            on_default_bus = props.get("EventBusName", "default") == "default"
            if not on_default_bus or "EventPattern" not in props or props.get("State", "ENABLED") != "ENABLED":
                continue
            targets = tuple(self._target(logical_id, t) for t in props.get("Targets", []))
            routes.append(_Route(logical_id, props["EventPattern"], targets))
        return routes

    def _target(self, rule_id: str, target: Mapping[str, Any]) -> _Target:
        if "InputPath" in target or "InputTransformer" in target:
            raise WiringError(f"{rule_id}: InputPath/InputTransformer targets are not wired locally")
        payload = json.loads(target["Input"]) if "Input" in target else None
        logical_id = self._stack.logical_id_for_arn(str(target["Arn"]))
        if logical_id is None:
            raise WiringError(f"{rule_id}: target {target['Arn']} is not a resource of this stack")
        if logical_id in self._stack.functions:
            return _Target("lambda", logical_id, payload)
        queue = self._stack.resources[logical_id]
        if "QueueUrl" not in queue.attributes:
            raise WiringError(f"{rule_id}: target {logical_id} is neither a queue nor a function")
        return _Target("sqs", queue.attributes["QueueUrl"], payload)

    # --- the driver ---------------------------------------------------------------------------------------------

    def step(self) -> StepReport:
        """Deliver everything due at the clock's current time; return what happened."""
        self._report = StepReport()
        self._route_s3_notifications()
        self._release_parked()
        for source in self._sqs_sources:
            self._pump(source)
        self._fire_one_time()
        self._fire_periodic()
        self._fire_async_retries()
        for extra in self._sources:
            work = extra.step()
            if work:
                self._report.source_work += work
                self._note_work(None)
        self._sample_queues()
        return self._report

    def run_for(self, advance: Callable[[float], object], seconds: float, max_steps: int = 100_000) -> RunReport:
        """Step and advance the clock to whatever is due next, idle or not, until ``seconds`` have passed.

        Unlike ``run_until_idle`` the schedules keep firing after the work is done, as they do in AWS.
        """
        end = self._clock.now() + timedelta(seconds=seconds)
        totals = StepReport()
        advanced = 0.0
        for steps in range(1, max_steps + 1):
            report = self.step()
            totals.add(report)
            if report.did_work:
                continue
            due = self.next_due()
            now = self._clock.now()
            if now >= end:
                return RunReport(steps=steps, advanced_seconds=advanced, totals=totals)
            wait = ((end if due is None else min(due, end)) - now).total_seconds()
            if wait > 0:
                advance(wait)
                advanced += wait
        raise WiringStalledError(f"still working after {max_steps} steps: {self.pending()}")

    def _sample_queues(self) -> None:
        """Queue depths as SQS reports them to CloudWatch (once a virtual minute here, every minute there)."""
        now = self._clock.now()
        if self._queues_sampled_at is not None and now - self._queues_sampled_at < timedelta(minutes=1):
            return
        self._queues_sampled_at = now
        for name, url in self._queues:
            attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]
            visible = float(attributes.get("ApproximateNumberOfMessages", "0"))
            self.metrics.add(
                "AWS/SQS", "ApproximateNumberOfMessagesVisible", visible, at=now, dimensions={"QueueName": name}
            )

    def run_until_idle(self, advance: Callable[[float], object], max_steps: int = 10_000) -> RunReport:
        """Step, advancing the clock (through ``advance(seconds)``) to the next due time, until idle."""
        totals = StepReport()
        advanced = 0.0
        for steps in range(1, max_steps + 1):
            report = self.step()
            totals.add(report)
            if report.did_work:
                continue
            reasons = self.pending()
            if not reasons:
                return RunReport(steps=steps, advanced_seconds=advanced, totals=totals)
            due = self.next_due()
            if due is None:
                raise WiringStalledError(f"not idle and nothing is scheduled: {reasons}")
            wait = (due - self._clock.now()).total_seconds()
            if wait > 0:
                advance(wait)
                advanced += wait
        raise WiringStalledError(f"not idle after {max_steps} steps: {self.pending()}")

    def pending(self) -> list[str]:
        """Why the wiring is not idle (empty when it is)."""
        reasons: list[str] = []
        if self._tap is not None and self._tap.pending():
            reasons.append("S3 notifications not yet routed")
        for source in self._sqs_sources:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=source.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            visible = int(attributes.get("ApproximateNumberOfMessages", "0"))
            in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0"))
            if visible or in_flight:
                reasons.append(f"{source.queue_name}: {visible} queued, {in_flight} in flight")
        reasons.extend(f"one-time schedule {s.group}/{s.name} at {s.due.isoformat()}" for s in self._one_time())
        reasons.extend(f"{r.function_id} retry of {r.source} at {r.due.isoformat()}" for r in self._async_retries)
        for extra in self._sources:
            reasons.extend(extra.pending())
        reasons.extend(
            f"{p.function_id}.{p.event_name} has not reported idle" for p in self._periodic if p.last_work != 0
        )
        if self._is_idle is not None and not self._is_idle():
            reasons.append("is_idle() is False")
        return reasons

    def next_due(self) -> datetime | None:
        """The earliest time something is due (periodic firing, one-time schedule, message back from in-flight)."""
        now = self._clock.now()
        if self._tap is not None and self._tap.pending():
            return now
        candidates = [p.next_due for p in self._periodic]
        candidates += [s.due for s in self._one_time()]
        candidates += [p.release_at for p in self._parked]
        candidates += [r.due for r in self._async_retries]
        candidates += [due for due in (extra.next_due() for extra in self._sources) if due is not None]
        return min(candidates, default=None)

    @property
    def errors(self) -> list[Invocation]:
        return [i for i in self.invocations if i.error is not None]

    # --- S3 -> EventBridge -> targets ---------------------------------------------------------------------------

    def _route_s3_notifications(self) -> None:
        if self._tap is None:
            return
        for notification in self._tap.drain():
            self._sequence += 1
            event = object_created_event(notification, moment=self._clock.now(), sequencer=f"{self._sequence:018X}")
            if event is None:
                logger.debug("no EventBridge shape for %s; not routed", notification.event_name)
                continue
            if self.publish_default_bus_event(event):
                self._report.s3_events_routed += 1

    def publish_default_bus_event(self, event: Mapping[str, Any]) -> bool:
        """Route an event through the template's default-bus rules; True when at least one target received it."""
        delivered = False
        for route in self._routes:
            if not matches(route.pattern, event):
                continue
            for target in route.targets:
                payload = target.payload if target.payload is not None else event
                if target.kind == "sqs":
                    sent = self._sqs.send_message(QueueUrl=target.value, MessageBody=json.dumps(payload))
                    self._sent_at[sent["MessageId"]] = self._clock.now()
                else:
                    self._invoke(target.value, dict(payload), f"rule:{route.rule_id}")
                delivered = True
        if delivered:
            self._note_work(None)
        return delivered

    # --- SQS -> Lambda ------------------------------------------------------------------------------------------

    def _pump(self, source: _SqsSource) -> None:
        while True:
            messages = self._receive(source)
            if not messages:
                return
            records = [self._record(message, source) for message in messages]
            invocation = self._invoke(source.function_id, {"Records": records}, f"sqs:{source.queue_name}")
            failed = self._failed_ids(invocation, source, {r["messageId"] for r in records})
            succeeded = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(succeeded), _SQS_MAX_RECEIVE):
                chunk = succeeded[start : start + _SQS_MAX_RECEIVE]
                self._sqs.delete_message_batch(
                    QueueUrl=source.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
                )
            release_at = self._clock.now() + source.visibility_timeout
            for message in messages:
                if message["MessageId"] in failed:
                    self._parked.append(_Parked(source.queue_url, message["ReceiptHandle"], release_at))
            self._report.sqs_batches += 1
            self._report.records_succeeded += len(succeeded)
            self._report.records_failed += len(failed)
            self._note_work(None)

    def _receive(self, source: _SqsSource) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < source.batch_size:
            response = self._sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=min(_SQS_MAX_RECEIVE, source.batch_size - len(batch)),
                VisibilityTimeout=_PARKED_SECONDS,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            if not received:
                break
            batch.extend(dict(m) for m in received)
        return batch

    def _record(self, message: Mapping[str, Any], source: _SqsSource) -> dict[str, Any]:
        """One record of the Lambda SQS event; timestamps are on the virtual clock."""
        message_id = str(message["MessageId"])
        now = self._clock.now()
        sent = self._sent_at.setdefault(message_id, now)
        first = self._first_received.setdefault(message_id, now)
        attributes = dict(message.get("Attributes", {}))
        attributes["SentTimestamp"] = str(int(sent.timestamp() * 1000))
        attributes["ApproximateFirstReceiveTimestamp"] = str(int(first.timestamp() * 1000))
        record: dict[str, Any] = {
            "messageId": message_id,
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": {
                name: _lambda_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
            },
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        record |= {
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": source.queue_arn,
            "awsRegion": self._stack.region,
        }
        return record

    def _failed_ids(self, invocation: Invocation, source: _SqsSource, batch_ids: set[str]) -> set[str]:
        """Records to retry, following Lambda's rules for partial batch responses."""
        if invocation.error is not None:
            return set(batch_ids)
        if not source.report_failures or not isinstance(invocation.result, Mapping):
            return set()
        failures = invocation.result.get("batchItemFailures")
        if failures is None:
            return set()
        failed: set[str] = set()
        for failure in failures if isinstance(failures, list) else [None]:
            identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
            if not identifier or identifier not in batch_ids:
                # Lambda treats an unusable partial response as a failure of the whole batch.
                return set(batch_ids)
            failed.add(identifier)
        return failed

    def _release_parked(self) -> None:
        now = self._clock.now()
        due = [p for p in self._parked if p.release_at <= now]
        self._parked = [p for p in self._parked if p.release_at > now]
        for parked in due:
            self._sqs.change_message_visibility(
                QueueUrl=parked.queue_url, ReceiptHandle=parked.receipt_handle, VisibilityTimeout=0
            )

    # --- schedules ----------------------------------------------------------------------------------------------

    def _fire_periodic(self) -> None:
        now = self._clock.now()
        for periodic in self._periodic:
            if periodic.next_due > now:
                continue
            missed = (now - periodic.next_due) // periodic.period
            moment = periodic.next_due + missed * periodic.period
            periodic.next_due = moment + periodic.period
            event = periodic.payload
            if event is None:
                stack = self._stack
                event = scheduled_event(
                    rule_arn=periodic.rule_arn, account_id=stack.account_id, region=stack.region, moment=moment
                )
            invocation = self._invoke_async(periodic.function_id, event, f"schedule:{periodic.event_name}")
            work = _work_done(invocation)
            self._report.periodic_fired += 1
            if work:
                self._report.periodic_work += work
                self._note_work(periodic)
            periodic.last_work = work

    def _one_time(self) -> list[_OneTime]:
        """Enabled one-time schedules in the stack's groups that have not fired yet."""
        found: list[_OneTime] = []
        for group in self._groups:
            for summary in self._list_schedules(group):
                schedule = self._scheduler.get_schedule(GroupName=group, Name=summary["Name"])
                if schedule.get("State", "ENABLED") != "ENABLED":
                    continue
                expression = schedule["ScheduleExpression"]
                due = at_time(expression, schedule.get("ScheduleExpressionTimezone") or "UTC")
                if due is None:
                    raise UnsupportedScheduleError(f"{group}/{summary['Name']}: only at(...) is fired locally")
                version = str(schedule.get("LastModificationDate", ""))
                if (group, schedule["Name"], version) in self._completed_one_time:
                    continue
                target = schedule["Target"]
                found.append(
                    _OneTime(
                        group=group,
                        name=schedule["Name"],
                        due=due,
                        target_arn=target["Arn"],
                        payload=json.loads(target["Input"]) if target.get("Input") else {},
                        delete_after=schedule.get("ActionAfterCompletion") == "DELETE",
                        version=version,
                    )
                )
        return found

    def _list_schedules(self, group: str) -> Iterator[Mapping[str, Any]]:
        paginator = self._scheduler.get_paginator("list_schedules")
        for page in paginator.paginate(GroupName=group):
            yield from page["Schedules"]

    def _fire_one_time(self) -> None:
        now = self._clock.now()
        for schedule in self._one_time():
            if schedule.due > now:
                continue
            function_id = self._function_for_arn(schedule.target_arn)
            self._invoke_async(function_id, schedule.payload, f"scheduler:{schedule.group}/{schedule.name}")
            self._report.one_time_fired += 1
            self._note_work(None)
            if schedule.delete_after:
                self._delete_schedule(schedule)
            else:
                self._completed_one_time.add((schedule.group, schedule.name, schedule.version))

    # --- asynchronous invocation retries ---------------------------------------------------------------------

    def _invoke_async(self, function_id: str, event: Any, source: str, retries_done: int = 0) -> Invocation:
        invocation = self._invoke(function_id, event, source)
        if invocation.error is not None and retries_done < len(ASYNC_RETRY_DELAYS_SECONDS):
            due = self._clock.now() + timedelta(seconds=ASYNC_RETRY_DELAYS_SECONDS[retries_done])
            self._async_retries.append(_AsyncRetry(due, function_id, event, source, retries_done + 1))
        return invocation

    def _fire_async_retries(self) -> None:
        now = self._clock.now()
        due = [retry for retry in self._async_retries if retry.due <= now]
        self._async_retries = [retry for retry in self._async_retries if retry.due > now]
        for retry in due:
            source = f"{retry.source} (retry {retry.retries_done})" if retry.retries_done else retry.source
            self._invoke_async(retry.function_id, retry.event, source, retry.retries_done)
            self._report.async_retries += 1
            self._note_work(None)

    def _delete_schedule(self, schedule: _OneTime) -> None:
        try:
            self._scheduler.delete_schedule(GroupName=schedule.group, Name=schedule.name)
        except ClientError as exc:
            # The handler may already have deleted its own schedule.
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise

    def _function_for_arn(self, arn: str) -> str:
        # A qualified ARN (":alias" or ":version") still names the same function.
        base = ":".join(arn.split(":")[:7])
        for function_id, function in self._stack.functions.items():
            if function.arn == base:
                if function_id not in self._handlers:
                    raise WiringError(f"schedule target {function_id} has no handler in this wiring")
                return function_id
        raise WiringError(f"schedule target {arn} is not a function of this stack")

    # --- invocation ---------------------------------------------------------------------------------------------

    def invoke_later(self, function_id: str, event: Any, source: str = "lambda:Invoke (Event)") -> None:
        """An asynchronous invocation from outside the wiring (Lambda ``Invoke`` with InvocationType Event): run at
        the next step, then retried as Lambda retries asynchronous invocations."""
        self._async_retries.append(_AsyncRetry(self._clock.now(), function_id, event, source, 0))

    def invoke(self, function_id: str, event: Any, source: str = "lambda:Invoke") -> Invocation:
        """A synchronous invocation from outside the wiring (Lambda ``Invoke``: ``localstack.lambda_invoke``)."""
        invocation = self._invoke(function_id, event, source)
        self._note_work(None)
        return invocation

    def _note_work(self, reporter: _Periodic | None) -> None:
        """Work anywhere may have created work for every periodic schedule: they must all look again."""
        for periodic in self._periodic:
            if periodic is not reporter:
                periodic.last_work = None

    def _invoke(self, function_id: str, event: Any, source: str) -> Invocation:
        function = self._stack.functions[function_id]
        context = LocalLambdaContext(function, self._clock)
        started = self._clock.now()
        environment = self._stack.env(function_id) if self._set_environment else {}
        result: Any = None
        error: BaseException | None = None
        emf = _EmfTap(sys.stdout, lambda blob: self.metrics.add_emf(blob, at=self._clock.now()))
        with patched_environ(environment), redirect_stdout(emf):
            try:
                result = self._handlers[function_id](event, context)
            except Exception as exc:
                error = exc
        emf.close()
        finished = self._clock.now()
        if error is None and finished > context.deadline:
            error = LambdaTimeoutError(f"{function_id} ran past its {function.timeout_seconds} s timeout")
        summary = None if error is None else InvocationError.of(error)
        invocation = Invocation(function_id, source, event, result, summary, started, finished)
        self.invocations.append(invocation)
        self._lambda_metrics(function.name, invocation)
        if error is not None and summary is not None:
            self._report.errors += 1
            logger.error("%s failed (%s): %s: %s", function_id, source, summary.type, summary.message)
            if self._raise:
                raise error
        return invocation

    def _lambda_metrics(self, function_name: str, invocation: Invocation) -> None:
        dimensions = {"FunctionName": function_name}
        at = invocation.started_at
        duration_ms = (invocation.finished_at - invocation.started_at).total_seconds() * 1000
        for name, value in (
            ("Invocations", 1.0),
            ("Errors", 0.0 if invocation.error is None else 1.0),
            # The local stack runs every invocation (no concurrency limit): none is throttled.
            ("Throttles", 0.0),
            ("Duration", duration_ms),
        ):
            self.metrics.add("AWS/Lambda", name, value, at=at, dimensions=dimensions)


class _EmfTap(io.TextIOBase):
    """stdout of one invocation: passed through, and every complete line that is an EMF blob handed to ``on_blob``."""

    def __init__(self, target: TextIO, on_blob: Callable[[dict[str, Any]], object]) -> None:
        super().__init__()
        self._target = target
        self._on_blob = on_blob
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._target.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def close(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        super().close()

    def _line(self, line: str) -> None:
        if not line.startswith("{") or '"_aws"' not in line:
            return
        try:
            blob = json.loads(line)
        except ValueError:
            return
        if isinstance(blob, dict) and isinstance(blob.get("_aws"), dict):
            self._on_blob(blob)


def _work_done(invocation: Invocation) -> int | None:
    if invocation.error is not None:
        return None
    result = invocation.result
    if isinstance(result, Mapping):
        work = result.get("work_done")
        if isinstance(work, int) and not isinstance(work, bool):
            return work
    return 0


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """SQS API message attribute -> the camel-cased shape Lambda puts in SQS records."""
    converted: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return converted


__all__ = [
    "Handler",
    "Invocation",
    "InvocationError",
    "LambdaTimeoutError",
    "LocalWiring",
    "RunReport",
    "StepReport",
    "WiringError",
    "WiringStalledError",
]
