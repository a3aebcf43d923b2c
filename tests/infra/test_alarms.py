"""Every alarm of template.yaml evaluated against what the local stack really emits.

The real handlers run on the local stack; the EMF they print, the Lambda metrics of their invocations and the queue
depths are recorded on the virtual clock (``LocalWiring.metrics``), and each alarm of the template (metric,
dimensions, statistic, period, threshold, comparison, missing-data treatment) is evaluated every virtual minute:

- a healthy run: no alarm is ever in ALARM;
- TwelveLabs down (5xx on every route), or refusing the key (401): the alarms that name it breach, and the
  heartbeats keep coming (they are emitted before any API call);
- a function crashing inside its code, and one failing before its code runs: their Errors alarms breach, and the
  missing heartbeat of the second.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from videobatch.domain.items import ItemState
from videobatch.runtime import build_runtime, set_runtime
from videobatch_tools import samples
from videobatch_tools.localstack.alarms import (
    AlarmSpec,
    AlarmState,
    MetricStore,
    evaluate,
    template_alarms,
)
from videobatch_tools.localstack.pipeline import Handler, LocalPipeline

from .test_template import METRIC_CONTRACT

EMULATOR_API_ROUTES = (
    "POST /assets/multipart-uploads",
    "GET /assets/multipart-uploads",
    "GET /assets/multipart-uploads/{id}",
    "POST /assets/multipart-uploads/{id}",
    "POST /assets/multipart-uploads/{id}/presigned-urls",
    "POST /assets",
    "GET /assets",
    "GET /assets/{id}",
    "DELETE /assets/{id}",
    "POST /analyze/batches",
    "GET /analyze/batches",
    "GET /analyze/batches/{id}",
    "DELETE /analyze/batches/{id}",
    "POST /analyze/batches/{id}/cancel",
    "GET /analyze/batches/{id}/results",
    "GET /analyze/tasks",
    "GET /analyze/tasks/{id}",
)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # on the hour: every alarm period starts with the run


# --- the evaluator ------------------------------------------------------------------------------------------------


def spec(**overrides: Any) -> AlarmSpec:
    props: dict[str, Any] = {
        "Namespace": "N",
        "MetricName": "M",
        "Dimensions": [{"Name": "service", "Value": "s"}],
        "Statistic": "Sum",
        "Period": 300,
        "EvaluationPeriods": 3,
        "Threshold": "0",
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }
    return AlarmSpec.from_properties("A", props | overrides)


def test_m_out_of_n_complete_aligned_periods() -> None:
    store = MetricStore()
    for minutes in (1, 6, 11):  # one point in each of the periods 09:00, 09:05, 09:10
        store.add("N", "M", 1, at=START + timedelta(minutes=minutes), dimensions={"service": "s"})
    alarm = spec()
    assert evaluate(alarm, store, START + timedelta(minutes=14, seconds=59)).state is AlarmState.OK  # 09:10 not over
    breached = evaluate(alarm, store, START + timedelta(minutes=15))
    assert (breached.state, breached.datapoints) == (AlarmState.ALARM, (1.0, 1.0, 1.0))
    # 3 of the last 4 (the first is empty): ALARM; 4 of 4 (DatapointsToAlarm defaults to EvaluationPeriods): OK.
    at = START + timedelta(minutes=15)
    assert evaluate(spec(EvaluationPeriods=4, DatapointsToAlarm=3), store, at).state is AlarmState.ALARM
    assert evaluate(spec(EvaluationPeriods=4), store, at).state is AlarmState.OK
    # Another dimension value is another metric.
    assert evaluate(
        spec(Dimensions=[{"Name": "service", "Value": "t"}]), store, START + timedelta(minutes=15)
    ).state is (AlarmState.OK)


def test_missing_data_treatments() -> None:
    empty = MetricStore()
    at = START + timedelta(hours=1)
    assert evaluate(spec(TreatMissingData="breaching"), empty, at).state is AlarmState.ALARM
    assert evaluate(spec(TreatMissingData="notBreaching"), empty, at).state is AlarmState.OK
    assert evaluate(spec(TreatMissingData="missing"), empty, at).state is AlarmState.INSUFFICIENT_DATA
    store = MetricStore()
    store.add("N", "M", 1, at=at - timedelta(minutes=2), dimensions={"service": "s"})
    assert evaluate(spec(**_heartbeat_props()), store, at).state is AlarmState.OK  # one recent period has data
    assert evaluate(spec(**_heartbeat_props()), store, at + timedelta(minutes=15)).state is AlarmState.ALARM


def _heartbeat_props() -> dict[str, Any]:
    return {
        "Statistic": "SampleCount",
        "Threshold": 1,
        "ComparisonOperator": "LessThanThreshold",
        "TreatMissingData": "breaching",
        "DatapointsToAlarm": 3,
    }


def test_emf_is_extracted_per_dimension_set_and_value() -> None:
    store = MetricStore()
    blob = {
        "_aws": {
            "Timestamp": 0,
            "CloudWatchMetrics": [
                {"Namespace": "N", "Dimensions": [["service"], ["service", "function"]], "Metrics": [{"Name": "M"}]}
            ],
        },
        "service": "s",
        "function": "f",
        "M": [1.0, 2.0],
    }
    assert store.add_emf(blob, at=START) == 4
    assert evaluate(spec(EvaluationPeriods=1), store, START + timedelta(minutes=5)).datapoints == (3.0,)


# --- the template's alarms on the local stack ---------------------------------------------------------------------


class Run:
    """A local pipeline started at START with its alarms, videos uploaded, driven for a virtual duration."""

    def __init__(self, pipeline: LocalPipeline, workdir: Path) -> None:
        self.pipeline = pipeline
        self.workdir = workdir
        self.alarms = template_alarms(pipeline.stack.template, pipeline.stack.resolver())

    def upload_videos(self, count: int = 2) -> None:
        for n in range(count):
            video = samples.write_sample_video(self.workdir / f"{n}.mp4", duration_seconds=6, seed=n)
            self.pipeline.upload(f"videos/clip {n}.mp4", video.read_bytes())  # a space: the key arrives encoded

    def upload_non_video(self) -> None:
        self.pipeline.upload("videos/notes.mp4", samples.write_non_video(self.workdir / "notes.mp4").read_bytes())

    def run_for(self, minutes: float) -> None:
        self.pipeline.run_for(minutes * 60)

    def run_until(self, condition: Callable[[], bool]) -> None:
        self.pipeline.run_until(condition)

    def states(self, since: datetime | None = None) -> dict[str, set[AlarmState]]:
        """Each alarm's states, evaluated every minute from its first full window after ``since`` (default START)."""
        end = self.pipeline.clock.now()
        begin = since or START
        states: dict[str, set[AlarmState]] = {}
        for alarm in self.alarms:
            period = alarm.period_seconds
            first_epoch = math.ceil(begin.timestamp() / period) * period + alarm.window_seconds()
            moment = datetime.fromtimestamp(first_epoch, UTC)
            seen: set[AlarmState] = set()
            while moment <= end:
                seen.add(evaluate(alarm, self.pipeline.wiring.metrics, moment).state)
                moment += timedelta(minutes=1)
            states[alarm.logical_id] = seen
        return states

    def in_alarm(self, since: datetime | None = None) -> set[str]:
        return {name for name, seen in self.states(since).items() if AlarmState.ALARM in seen}

    def evaluated(self, since: datetime | None = None) -> set[str]:
        return {name for name, seen in self.states(since).items() if seen}

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=self.pipeline.emulator.base_url, timeout=30.0) as control:
            control.post("/_emulator/faults", json={"seed": 1, "rules": rules}).raise_for_status()

    def items_in(self, state: ItemState) -> int:
        return sum(1 for item in self.pipeline.items() if item.state is state)


@pytest.fixture
def start_run(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    pipelines: list[LocalPipeline] = []

    def start(
        parameters: dict[str, str] | None = None, handler_hook: Callable[[str, Handler], Handler] | None = None
    ) -> Run:
        pipeline = LocalPipeline(
            stack_name=f"al{uuid.uuid4().hex[:6]}",
            start=START,
            parameter_overrides=parameters,
            handler_hook=handler_hook,
        )
        pipelines.append(pipeline.__enter__())
        return Run(pipeline, tmp_path)

    yield start
    for pipeline in reversed(pipelines):
        pipeline.__exit__(None, None, None)


pytestmark = pytest.mark.integration


def test_a_healthy_run_raises_no_alarm(start_run: Callable[..., Run]) -> None:
    run = start_run()
    run.upload_videos(2)
    run.upload_non_video()  # a rejected upload is the uploader's problem: no alarm
    run.run_for(75)
    assert run.items_in(ItemState.DONE) == 2
    assert run.items_in(ItemState.FAILED) == 1
    store = run.pipeline.wiring.metrics
    emitted = store.names("VideoBatch")
    assert {"Heartbeat", "OldestQueuedItemAgeSeconds", "OldestSubmittedItemAgeSeconds", "ItemsFailedUser"} <= emitted
    assert emitted - set(METRIC_CONTRACT) >= {"FlushRuns"}  # other metrics exist too; the contract is what alarms read
    # Every alarm was evaluated over a full window (the sweeper's hour too), and none fired.
    assert run.evaluated() == {a.logical_id for a in run.alarms}
    assert run.in_alarm() == set()


def test_a_twelvelabs_outage_breaches_the_alarms_that_name_it(start_run: Callable[..., Run]) -> None:
    # One usable slot: the two videos wait in the queue to fill it (with slots to spare they would go at once).
    run = start_run({"OldestItemAgeAlarmSeconds": "600", "ReservedBatchSlots": "4"})
    run.upload_videos(2)
    run.run_until(lambda: run.items_in(ItemState.QUEUED) == 2)
    outage_from = run.pipeline.clock.now()
    run.set_faults([{"endpoint": route, "status": 503, "code": "service_unavailable"} for route in EMULATOR_API_ROUTES])
    run.run_for(45)
    breached = run.in_alarm(since=outage_from)
    # The API is named, and the items it keeps waiting too (the flusher reads their age before calling TwelveLabs).
    assert {"TwelveLabsServerErrorsAlarm", "OldestQueuedItemAlarm", "FlusherErrorsAlarm"} <= breached
    # Every function still starts its runs: no heartbeat alarm, and nothing blames the key.
    assert not {name for name in breached if "Heartbeat" in name}
    assert "TwelveLabsAuthErrorsAlarm" not in breached
    assert run.items_in(ItemState.QUEUED) == 2


def test_a_placeholder_api_key_breaches_the_auth_alarm(start_run: Callable[..., Run]) -> None:
    run = start_run()
    pipeline = run.pipeline
    # The secret as the stack creates it: a random placeholder, not the key TwelveLabs knows.
    placeholder = build_runtime(pipeline.settings, clock=pipeline.clock, session=pipeline.session, api_key="x" * 32)
    set_runtime(placeholder)
    try:
        run.upload_videos(1)
        run.run_for(20)
    finally:
        placeholder.twelvelabs.close()
        set_runtime(pipeline.runtime)
    breached = run.in_alarm()
    assert "TwelveLabsAuthErrorsAlarm" in breached
    assert "TwelveLabsServerErrorsAlarm" not in breached
    assert not {name for name in breached if "Heartbeat" in name}


def test_crashing_functions_breach_their_errors_and_heartbeat_alarms(
    start_run: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_before_the_code_runs(function_id: str, handler: Handler) -> Handler:
        if function_id != "BatchCheckerFunction":
            return handler

        def broken_import(event: dict[str, Any], context: Any) -> Any:
            # As a deploy whose module fails to import (Runtime.ImportModuleError): the handler never runs.
            raise ImportError("No module named 'videobatch'")

        return broken_import

    run = start_run(handler_hook=fail_before_the_code_runs)

    def crash(owner: str | None = None) -> Any:
        raise RuntimeError("the flusher's service crashed")

    monkeypatch.setattr(run.pipeline.runtime, "flush_service", crash)
    run.run_for(30)
    breached = run.in_alarm()
    assert {"FlusherErrorsAlarm", "BatchCheckerErrorsAlarm", "BatchCheckerHeartbeatAlarm"} <= breached
    # The flusher crashed inside the decorator: its runs started (heartbeat) and were counted as faults.
    assert "FlusherHeartbeatAlarm" not in breached
    assert not {"AssetCheckerErrorsAlarm", "AssetCheckerHeartbeatAlarm", "IngestErrorsAlarm"} & breached
    assert "PipelineFaults" in run.pipeline.wiring.metrics.names("VideoBatch")
