"""SQS message move tasks (``StartMessageMoveTask``, ``ListMessageMoveTasks``, ``CancelMessageMoveTask``) for moto.

moto 5.2 does not implement them; ``videobatch redrive`` uses them, so the local stack adds them to moto's SQS
responses (process-wide, like moto's backends; installed once by ``moto_server``). What they do here, and how that
differs from SQS:

- a start moves every message of the source queue to the destination (the source's redrive target when none is
  named) at once, keeping bodies and message attributes, and the task is ``COMPLETED`` when the call returns (SQS
  moves in the background at up to ``MaxNumberOfMessagesPerSecond``; a caller following the task sees the same
  end state, only sooner);
- a second start while one is ``RUNNING`` fails as SQS fails it, which here cannot happen (moves finish at once);
- messages in flight (received, not yet visible again) stay, as SQS moves only visible ones.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from moto.core.responses import ActionResult
from moto.sqs.exceptions import SQSException
from moto.sqs.responses import SQSResponse

_lock = threading.Lock()
_tasks: dict[str, list[dict[str, Any]]] = {}  # source ARN -> its tasks, newest first
_installed = threading.Event()


class _ResourceNotFound(SQSException):
    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


def _queue_name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def start_message_move_task(self: SQSResponse) -> ActionResult:
    source = self._get_param("SourceArn")
    backend = self.sqs_backend
    try:
        queue = backend.get_queue(_queue_name(source))
    except Exception as error:
        raise _ResourceNotFound(f"source queue {source} does not exist") from error
    destination = self._get_param("DestinationArn")
    if destination is None:
        sources = backend.list_dead_letter_source_queues(queue.name)
        if not sources:
            raise _ResourceNotFound(f"{source} is no queue's dead-letter queue: name a DestinationArn")
        destination = sources[0].queue_arn
    target = backend.get_queue(_queue_name(destination))
    moved = 0
    while messages := backend.receive_message(queue.name, 10, 0, 30, ["All"]):
        for message in messages:
            backend.send_message(target.name, message.body, message_attributes=dict(message.message_attributes))
            backend.delete_message(queue.name, str(message.receipt_handle))
            moved += 1
    handle = uuid.uuid4().hex
    task = {
        "TaskHandle": handle,
        "Status": "COMPLETED",
        "SourceArn": source,
        "DestinationArn": destination,
        "ApproximateNumberOfMessagesMoved": moved,
        "ApproximateNumberOfMessagesToMove": moved,
        "StartedTimestamp": int(time.time() * 1000),
    }
    rate = self._get_param("MaxNumberOfMessagesPerSecond")
    if rate is not None:
        task["MaxNumberOfMessagesPerSecond"] = int(rate)
    with _lock:
        _tasks.setdefault(source, []).insert(0, task)
    return ActionResult({"TaskHandle": handle})


def list_message_move_tasks(self: SQSResponse) -> ActionResult:
    source = self._get_param("SourceArn")
    limit = int(self._get_param("MaxResults") or 1)
    with _lock:
        tasks = [dict(task) for task in _tasks.get(source, [])[:limit]]
    return ActionResult({"Results": tasks})


def cancel_message_move_task(self: SQSResponse) -> ActionResult:
    handle = self._get_param("TaskHandle")
    with _lock:
        for tasks in _tasks.values():
            for task in tasks:
                if task["TaskHandle"] == handle:
                    if task["Status"] != "RUNNING":
                        raise _ResourceNotFound(f"task {handle} is {task['Status']}, not running")
                    task["Status"] = "CANCELLED"
                    return ActionResult({"ApproximateNumberOfMessagesMoved": task["ApproximateNumberOfMessagesMoved"]})
    raise _ResourceNotFound(f"no task {handle}")


def install_message_move_tasks() -> None:
    """Add the three actions to moto's SQS (once per process)."""
    with _lock:
        if _installed.is_set():
            return
        SQSResponse.start_message_move_task = start_message_move_task  # type: ignore[attr-defined]
        SQSResponse.list_message_move_tasks = list_message_move_tasks  # type: ignore[attr-defined]
        SQSResponse.cancel_message_move_task = cancel_message_move_task  # type: ignore[attr-defined]
        _installed.set()
