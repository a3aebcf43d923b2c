import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.services.harness import BUCKET, MotoStack
from videobatch.domain.items import ItemState
from videobatch.domain.records import INTAKE_QUEUE
from videobatch.errors import InvalidInputError

from .conftest import FakeContext, load_handler

pytestmark = pytest.mark.integration


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{n}",
                "receiptHandle": f"r{n}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest",
                "awsRegion": "us-east-1",
            }
            for n, body in enumerate(bodies)
        ]
    }


def test_ingest_reports_only_the_bad_message_as_failed(stack: MotoStack, videos: dict[str, Path]) -> None:
    good = json.dumps(stack.put_video("in/cat.mp4", videos["short"]))
    response = load_handler("ingest").handler(sqs_event(good, "{not json"), FakeContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert [item.state for item in stack.items.iter_queue(INTAKE_QUEUE)] == [ItemState.ASSET_PROCESSING]


def test_the_pipeline_through_its_handlers(stack: MotoStack, videos: dict[str, Path]) -> None:
    events = [json.dumps(stack.put_video(f"in/{n}.mp4", videos["short"])) for n in range(2)]
    assert load_handler("ingest").handler(sqs_event(*events), FakeContext()) == {"batchItemFailures": []}
    stack.clock.advance(10)
    assert load_handler("asset_checker").handler({}, FakeContext())["work_done"] == 2
    stack.clock.advance(stack.settings.max_wait_seconds)
    flushed = load_handler("flusher").handler({}, FakeContext())
    assert (flushed["batches_submitted"], flushed["work_done"]) == (1, 2)
    [batch] = list(stack.batches.iter_open())
    stack.clock.advance(3600)
    checker = load_handler("batch_checker")
    assert checker.handler({"batch_id": batch.batch_id}, FakeContext())["work_done"] == 2
    assert checker.handler({"detail-type": "Scheduled Event"}, FakeContext())["batches_checked"] == 0
    keys = sorted(o["Key"] for o in stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="results/")["Contents"])
    # The results, and the stable address of each key's latest result (a pointer).
    assert keys == [
        "results/in/0.mp4.json",
        "results/in/1.mp4.json",
        "results/latest/in/0.mp4.json",
        "results/latest/in/1.mp4.json",
    ]


@pytest.mark.parametrize(("event", "message"), [({"batch_id": 42}, "non-empty string"), ([], "must be an object")])
def test_batch_checker_rejects_a_malformed_event(event: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_handler("batch_checker").batch_id_of(event)


def test_batch_checker_reads_an_operators_cancel_and_refuses_a_malformed_one() -> None:
    handler = load_handler("batch_checker")
    assert handler.operator_cancel_of({"batch_id": "b"}) is None  # the schedules' events
    cancel = handler.operator_cancel_of({"batch_id": "b", "operator_cancel": {"disposition": "fail"}})
    assert (cancel.disposition, cancel.fail_unfinished) == ("fail", False)
    with pytest.raises(InvalidInputError, match="operator_cancel"):
        handler.operator_cancel_of({"batch_id": "b", "operator_cancel": {"disposition": "delete"}})
