"""videobatch.handler: the heartbeat first, metrics flushed even when the run raises, summaries, per-record keys."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from videobatch import handler as handler_module
from videobatch import runtime
from videobatch.errors import InvalidInputError, NotFoundError
from videobatch.handler import lambda_handler
from videobatch.runtime import logger, metrics

from .conftest import FakeContext, load_handler


class Done:
    """A service summary (the shape the decorator reads)."""

    def __init__(self, work_done: int) -> None:
        self.work_done = work_done

    def model_dump(self, *, mode: str) -> dict[str, Any]:
        assert mode == "json"
        return {"checked": self.work_done}


def emf_blobs(text: str) -> list[dict[str, Any]]:
    return [blob for line in text.splitlines() if line.startswith("{") and "_aws" in (blob := json.loads(line))]


def value(blob: dict[str, Any], name: str) -> float:
    """A metric's value in a blob (Powertools writes a list of values)."""
    raw = blob[name]
    return float(sum(raw)) if isinstance(raw, list) else float(raw)


def metric_names(blob: dict[str, Any]) -> list[str]:
    return [m["Name"] for directive in blob["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]]


@pytest.fixture
def powertools(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The shared Metrics and Logger as the template configures them; log lines collected."""
    monkeypatch.setattr(metrics, "namespace", "VideoBatch")
    monkeypatch.setattr(metrics, "service", "videobatch")
    logs = io.StringIO()
    stream = logger.registered_handler
    assert isinstance(stream, logging.StreamHandler)
    previous = stream.setStream(logs)
    try:
        yield logs
    finally:
        stream.setStream(previous)
        metrics.clear_metrics()


class BrokenRuntime:
    """get_runtime() fails (e.g. Secrets Manager unreachable at cold start)."""

    def __call__(self) -> Any:
        raise RuntimeError("secrets manager unreachable")


def test_heartbeat_comes_first_in_its_own_blob_even_when_the_runtime_cannot_be_built(
    powertools: io.StringIO, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handler_module, "get_runtime", BrokenRuntime())
    ran: list[bool] = []

    @lambda_handler("flusher")
    def handler(event: dict[str, Any], context: Any) -> Done:
        ran.append(True)
        return Done(1)

    with pytest.raises(RuntimeError, match="secrets manager"):
        handler({}, FakeContext())
    assert ran == []
    heartbeat, faults = emf_blobs(capsys.readouterr().out)
    assert metric_names(heartbeat) == ["Heartbeat"]
    assert value(heartbeat, "Heartbeat") == 1.0
    (dimension_set,) = heartbeat["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert sorted(dimension_set) == ["function", "service"]
    assert (heartbeat["service"], heartbeat["function"]) == ("videobatch", "flusher")
    assert heartbeat["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "VideoBatch"
    # The failure still reaches CloudWatch: PipelineFaults, flushed, with the plain service dimension the alarms use.
    assert metric_names(faults) == ["PipelineFaults"]
    assert faults["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert "run failed" in powertools.getvalue()


@pytest.mark.integration
def test_a_raising_run_flushes_its_metrics_adds_pipeline_faults_and_re_raises(
    stack: Any, powertools: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    @lambda_handler("batch_checker")
    def handler(event: dict[str, Any], context: Any) -> Done:
        metrics.add_metric(name="ItemsSucceeded", unit="Count", value=2)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        handler({}, FakeContext())
    heartbeat, run = emf_blobs(capsys.readouterr().out)
    assert metric_names(heartbeat) == ["Heartbeat"]
    assert set(metric_names(run)) >= {"ItemsSucceeded", "PipelineFaults", "TwelveLabsErrors"}
    assert (value(run, "ItemsSucceeded"), value(run, "PipelineFaults")) == (2.0, 1.0)
    failure = [json.loads(line) for line in powertools.getvalue().splitlines() if "run failed" in line]
    assert failure[0]["function_name"] == "test"  # the Lambda context is on every line
    assert "ValueError: boom" in failure[0]["exception"]


@pytest.mark.integration
def test_the_summary_becomes_the_returned_dict_and_twelvelabs_statuses_are_counted_per_run(
    stack: Any, powertools: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    client = runtime.get_runtime().twelvelabs

    @lambda_handler("asset_checker")
    def handler(event: dict[str, Any], context: Any) -> Done:
        for batch_id in ("a" * 24, "b" * 24):
            with contextlib.suppress(NotFoundError):
                client.retrieve_batch(batch_id)  # the emulator answers 404; the client's observer sees it
        return Done(3)

    assert handler({}, FakeContext()) == {"work_done": 3, "checked": 3}
    _, run = emf_blobs(capsys.readouterr().out)
    assert value(run, "TwelveLabsErrors") == 2.0
    assert [value(run, n) for n in ("TwelveLabsAuthErrors", "TwelveLabsThrottles", "TwelveLabsServerErrors")] == [
        0,
        0,
        0,
    ]
    summary = [json.loads(line) for line in powertools.getvalue().splitlines() if "run summary" in line]
    assert summary[0]["summary"] == {"work_done": 3, "checked": 3}

    @lambda_handler("asset_checker")
    def quiet(event: dict[str, Any], context: Any) -> Done:
        return Done(0)

    quiet({}, FakeContext())
    _, again = emf_blobs(capsys.readouterr().out)
    assert value(again, "TwelveLabsErrors") == 0.0  # counted per run, not per container


@pytest.mark.integration
def test_ingest_log_lines_name_their_record_and_the_next_record_does_not_inherit_them(
    stack: Any, powertools: io.StringIO
) -> None:
    from .test_handlers import sqs_event

    ingest = load_handler("ingest")
    # Every record failed: the run raises, so Lambda retries the batch (and the decorator counts a fault).
    with pytest.raises(ingest.IngestBatchFailed, match="all 2 message"):
        ingest.handler(sqs_event("{not json", "{also not json"), FakeContext())
    lines = [json.loads(line) for line in powertools.getvalue().splitlines()]
    failures = [line for line in lines if line["message"].startswith("upload not ingested")]
    assert [line["message_id"] for line in failures] == ["m0", "m1"]
    run_failed = next(line for line in lines if line["message"] == "run failed")
    assert "message_id" not in run_failed


@pytest.mark.integration
@pytest.mark.parametrize("event", [[], "Records", {"Records": "x"}, {"Records": [1]}, None])
def test_an_event_that_is_not_an_sqs_batch_is_refused_by_name(
    event: object, stack: Any, powertools: io.StringIO
) -> None:
    ingest = load_handler("ingest")
    with pytest.raises(InvalidInputError, match="not an SQS event"):
        ingest.handler(event, FakeContext())
