"""The memory backend's own parts: the SQS and Scheduler twins the wiring drives, and the emulator in process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from botocore.exceptions import ClientError

from twelvelabs_emulator.inprocess import InProcessTransport
from twelvelabs_emulator.server import EmulatorConfig, EmulatorServer
from videobatch.adapters.memory import MemoryScheduler
from videobatch.clock import ManualClock
from videobatch_tools.localstack.memory_aws import MemorySchedulerClient, MemorySqs
from videobatch_tools.localstack.resources import plan_stack
from videobatch_tools.localstack.template import default_template_path, load_template

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def queues() -> tuple[str, str, dict[str, str]]:
    stack = plan_stack(load_template(default_template_path()), stack_name="twin")
    urls = {
        r.attributes["QueueName"]: r.attributes["QueueUrl"]
        for r in stack.resources.values()
        if "QueueUrl" in r.attributes
    }
    ingest = next(url for name, url in urls.items() if name.endswith("IngestQueue"))
    dead = next(url for name, url in urls.items() if name.endswith("IngestDeadLetterQueue"))
    return ingest, dead, urls


def _sqs() -> MemorySqs:
    return MemorySqs(plan_stack(load_template(default_template_path()), stack_name="twin"), ManualClock(START))


def test_sqs_twin_hides_received_messages_until_released_and_keeps_send_order(
    queues: tuple[str, str, dict[str, str]],
) -> None:
    ingest, _, _ = queues
    sqs = _sqs()
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=ingest, MessageBody=body)
    first = sqs.receive_message(QueueUrl=ingest, MaxNumberOfMessages=2)["Messages"]
    assert [m["Body"] for m in first] == ["a", "b"]
    assert sqs.get_queue_attributes(QueueUrl=ingest, AttributeNames=["All"])["Attributes"] == {
        "ApproximateNumberOfMessages": "1",
        "ApproximateNumberOfMessagesNotVisible": "2",
    }
    sqs.delete_message_batch(QueueUrl=ingest, Entries=[{"Id": "0", "ReceiptHandle": first[0]["ReceiptHandle"]}])
    sqs.change_message_visibility(QueueUrl=ingest, ReceiptHandle=first[1]["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=ingest, MaxNumberOfMessages=10)["Messages"]
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [("b", "2"), ("c", "1")]


def test_sqs_twin_moves_a_message_to_the_dead_letter_queue_after_max_receive_count(
    queues: tuple[str, str, dict[str, str]],
) -> None:
    ingest, dead, _ = queues
    sqs = _sqs()
    sqs.send_message(QueueUrl=ingest, MessageBody="poison")
    for receive in range(1, 6):  # the template's maxReceiveCount is 5
        (message,) = sqs.receive_message(QueueUrl=ingest)["Messages"]
        assert message["Attributes"]["ApproximateReceiveCount"] == str(receive)
        sqs.change_message_visibility(QueueUrl=ingest, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    assert sqs.receive_message(QueueUrl=ingest) == {}
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=dead)["Messages"]] == ["poison"]


def test_scheduler_twin_shows_the_ports_checks_as_one_time_schedules() -> None:
    scheduler = MemoryScheduler()
    client = MemorySchedulerClient(scheduler, target_arn="arn:aws:lambda:us-east-1:1:function:checker")
    scheduler.schedule_batch_check("b1", START + timedelta(seconds=30.7))
    (page,) = client.get_paginator("list_schedules").paginate(GroupName="g")
    (summary,) = page["Schedules"]
    schedule = client.get_schedule(GroupName="g", Name=summary["Name"])
    assert schedule["ScheduleExpression"] == "at(2026-01-05T09:00:30)"
    assert schedule["Target"] == {"Arn": "arn:aws:lambda:us-east-1:1:function:checker", "Input": '{"batch_id": "b1"}'}
    client.delete_schedule(GroupName="g", Name=summary["Name"])
    assert scheduler.schedules == {}
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.delete_schedule(GroupName="g", Name=summary["Name"])


@pytest.fixture
def emulator() -> Iterator[Callable[[list[dict[str, object]]], httpx.Client]]:
    servers: list[EmulatorServer] = []

    def make(rules: list[dict[str, object]]) -> httpx.Client:
        transport = InProcessTransport()
        server = EmulatorServer(EmulatorConfig(api_key="k"), clock=ManualClock(START), sleep=transport.sleep)
        servers.append(server)
        transport.bind(server, base_url="http://emulator.test")
        http = httpx.Client(transport=transport, base_url="http://emulator.test", timeout=1.0)
        http.post("/_emulator/faults", json={"seed": 1, "rules": rules}).raise_for_status()
        return http

    yield make
    for server in servers:
        server.stop()  # never started: removes its storage directory


def test_in_process_emulator_answers_as_over_http_and_checks_the_key(
    emulator: Callable[[list[dict[str, object]]], httpx.Client],
) -> None:
    http = emulator([])
    assert http.get("/v1.3/analyze/batches", headers={"x-api-key": "k"}).status_code == 200
    refused = http.get("/v1.3/analyze/batches", headers={"x-api-key": "wrong"})
    assert refused.status_code == 401


def test_in_process_emulator_turns_a_lost_response_into_a_dropped_connection(
    emulator: Callable[[list[dict[str, object]]], httpx.Client],
) -> None:
    http = emulator([{"endpoint": "GET /analyze/batches", "rate": 1.0, "lose_response": True}])
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/v1.3/analyze/batches", headers={"x-api-key": "k"})


def test_in_process_emulator_turns_latency_beyond_the_timeout_into_a_timeout_without_waiting(
    emulator: Callable[[list[dict[str, object]]], httpx.Client],
) -> None:
    http = emulator([{"endpoint": "GET /analyze/batches", "rate": 1.0, "count": 1, "latency_seconds": 30.0}])
    with pytest.raises(httpx.ReadTimeout):
        http.get("/v1.3/analyze/batches", headers={"x-api-key": "k"})
    assert http.get("/v1.3/analyze/batches", headers={"x-api-key": "k"}).status_code == 200
