"""In-memory twins of the two AWS clients ``LocalWiring`` drives: SQS and EventBridge Scheduler.

They answer the boto3 calls the wiring makes, in boto3's shapes, so the wiring (routing, batch sizes, partial batch
responses, visibility on the virtual clock, async retries, one-time schedules) is the same code on both backends:

- ``MemorySqs``: standard queues in send order; a received message stays hidden until it is deleted or made
  visible again (the wiring releases failed records itself, on the virtual clock); a queue with a RedrivePolicy
  moves a message to its dead-letter queue on the receive after its ``maxReceiveCount``-th, as SQS (and moto) do.
  Not modelled: SQS's own visibility timer in real seconds (the wiring never relies on it), message retention,
  delays, FIFO queues, at-least-once duplicates (the simulation injects duplicates itself, upstream).
- ``MemorySchedulerClient``: a view of the pipeline's ``MemoryScheduler`` (the port the services write to) as the
  one-time ``at(...)`` schedules ``BatchExpiryScheduler`` would have created in the stack's group.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from botocore.exceptions import ClientError

from videobatch.adapters.memory import MemoryScheduler
from videobatch.adapters.scheduler import schedule_name
from videobatch.clock import Clock
from videobatch_tools.localstack.resources import LocalStack

_SENDER_ID = "AIDALOCALSTACKSENDER"


@dataclass
class _Message:
    message_id: str
    body: str
    sent_ms: int
    receive_count: int = 0
    first_received_ms: int | None = None
    receipt: str | None = None  # set while received (hidden)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body.encode(), usedforsecurity=False).hexdigest()


@dataclass
class _Queue:
    name: str
    arn: str
    max_receive: int | None = None
    dead_letter_url: str | None = None
    messages: dict[str, _Message] = field(default_factory=dict)  # send order (dicts keep insertion order)


class MemorySqs:
    """The SQS calls of ``LocalWiring`` (send, receive, delete in batches, change visibility, queue attributes)."""

    def __init__(self, stack: LocalStack, clock: Clock) -> None:
        self._clock = clock
        self._ids = itertools.count(1)
        self._queues: dict[str, _Queue] = {}
        self._by_receipt: dict[str, tuple[str, str]] = {}
        arns: dict[str, str] = {}
        redrive: dict[str, Mapping[str, Any]] = {}
        resolver = stack.resolver()
        for logical_id, spec in stack.template["Resources"].items():
            if spec["Type"] != "AWS::SQS::Queue" or not resolver.resource_enabled(logical_id):
                continue
            attributes = stack.resources[logical_id].attributes
            url = attributes["QueueUrl"]
            self._queues[url] = _Queue(attributes["QueueName"], attributes["Arn"])
            arns[attributes["Arn"]] = url
            policy = resolver.resolve(spec.get("Properties", {})).get("RedrivePolicy")
            if policy:
                redrive[url] = policy
        for url, policy in redrive.items():
            self._queues[url].max_receive = int(policy["maxReceiveCount"])
            self._queues[url].dead_letter_url = arns[str(policy["deadLetterTargetArn"])]

    def _now_ms(self) -> int:
        return int(self._clock.now().timestamp() * 1000)

    def send_message(self, *, QueueUrl: str, MessageBody: str, **_: Any) -> dict[str, Any]:
        message = _Message(f"00000000-0000-4000-8000-{next(self._ids):012d}", MessageBody, self._now_ms())
        self._queues[QueueUrl].messages[message.message_id] = message
        return {"MessageId": message.message_id, "MD5OfMessageBody": message.md5}

    def receive_message(self, *, QueueUrl: str, MaxNumberOfMessages: int = 1, **_: Any) -> dict[str, Any]:
        queue = self._queues[QueueUrl]
        received: list[dict[str, Any]] = []
        for message in list(queue.messages.values()):
            if len(received) >= MaxNumberOfMessages:
                break
            if message.receipt is not None:
                continue
            redriven = queue.dead_letter_url is not None and queue.max_receive is not None
            if redriven and message.receive_count >= (queue.max_receive or 0):
                # SQS's redrive: the receive after the last allowed one moves the message instead.
                del queue.messages[message.message_id]
                self._queues[str(queue.dead_letter_url)].messages[message.message_id] = _Message(
                    message.message_id, message.body, message.sent_ms
                )
                continue
            message.receive_count += 1
            now = self._now_ms()
            if message.first_received_ms is None:
                message.first_received_ms = now
            message.receipt = f"{message.message_id}#{message.receive_count}"
            self._by_receipt[message.receipt] = (QueueUrl, message.message_id)
            received.append(
                {
                    "MessageId": message.message_id,
                    "ReceiptHandle": message.receipt,
                    "MD5OfBody": message.md5,
                    "Body": message.body,
                    "Attributes": {
                        "ApproximateReceiveCount": str(message.receive_count),
                        "SentTimestamp": str(message.sent_ms),
                        "ApproximateFirstReceiveTimestamp": str(message.first_received_ms),
                        "SenderId": _SENDER_ID,
                    },
                }
            )
        return {"Messages": received} if received else {}

    def delete_message_batch(self, *, QueueUrl: str, Entries: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        successful = []
        for entry in Entries:
            found = self._by_receipt.pop(entry["ReceiptHandle"], None)
            if found is not None:
                self._queues[found[0]].messages.pop(found[1], None)
            successful.append({"Id": entry["Id"]})
        return {"Successful": successful, "Failed": []}

    def change_message_visibility(self, *, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        found = self._by_receipt.get(ReceiptHandle)
        if found is None or VisibilityTimeout != 0:
            return
        message = self._queues[found[0]].messages.get(found[1])
        if message is not None:
            del self._by_receipt[ReceiptHandle]
            message.receipt = None

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: Sequence[str]) -> dict[str, Any]:
        messages = self._queues[QueueUrl].messages.values()
        hidden = sum(1 for m in messages if m.receipt is not None)
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": str(len(messages) - hidden),
                "ApproximateNumberOfMessagesNotVisible": str(hidden),
            }
        }

    def depth(self, queue_name: str) -> int:
        """Messages in the named queue, visible or not (tests: the dead-letter queue)."""
        return sum(len(q.messages) for q in self._queues.values() if q.name == queue_name)


class _SchedulePages:
    def __init__(self, scheduler: MemoryScheduler) -> None:
        self._scheduler = scheduler

    def paginate(self, *, GroupName: str) -> Iterator[dict[str, Any]]:
        yield {"Schedules": [{"Name": schedule_name(batch_id)} for batch_id in list(self._scheduler.schedules)]}


class MemorySchedulerClient:
    """The Scheduler calls of ``LocalWiring`` (list, get, delete) over the pipeline's ``MemoryScheduler``."""

    _PREFIX = schedule_name("")

    def __init__(self, scheduler: MemoryScheduler, *, target_arn: str) -> None:
        self._scheduler = scheduler
        self._target_arn = target_arn

    def get_paginator(self, operation: str) -> _SchedulePages:
        if operation != "list_schedules":
            raise NotImplementedError(operation)
        return _SchedulePages(self._scheduler)

    def get_schedule(self, *, GroupName: str, Name: str) -> dict[str, Any]:
        batch_id = Name.removeprefix(self._PREFIX)
        check = self._scheduler.schedules.get(batch_id)
        if check is None:
            raise _not_found(Name)
        return {
            "Name": Name,
            "GroupName": GroupName,
            "State": "ENABLED",
            "ScheduleExpression": f"at({check.at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})",
            "ScheduleExpressionTimezone": "UTC",
            "ActionAfterCompletion": "DELETE",
            "Target": {"Arn": self._target_arn, "Input": json.dumps({"batch_id": batch_id})},
        }

    def delete_schedule(self, *, GroupName: str, Name: str) -> None:
        if not self._scheduler.cancel_batch_check(Name.removeprefix(self._PREFIX)):
            raise _not_found(Name)


def _not_found(name: str) -> ClientError:
    error = {"Error": {"Code": "ResourceNotFoundException", "Message": f"Schedule {name} does not exist."}}
    return ClientError(error, "GetSchedule")  # type: ignore[arg-type]
