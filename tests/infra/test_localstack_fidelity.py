"""Where moto and AWS differ, the local stack behaves as AWS does: encoded keys in S3 events, S3's key length limit,
the Powertools environment of the template, Lambda's metrics; and its own bookkeeping stays small."""

from __future__ import annotations

import gc
import io
import json
import tracemalloc
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.exceptions import ClientError

from videobatch.clock import ManualClock
from videobatch_tools import samples
from videobatch_tools.localstack.lambda_runtime import event_key
from videobatch_tools.localstack.moto_server import S3_MAX_KEY_BYTES, MotoEndpoint, local_session
from videobatch_tools.localstack.pipeline import LocalPipeline
from videobatch_tools.localstack.resources import LocalStack
from videobatch_tools.localstack.wiring import InvocationError, LocalWiring

from .test_localstack import Recorder, bodies, client, wiring

pytestmark = pytest.mark.integration


# --- S3 event keys ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("in/my video.mp4", "in/my+video.mp4"),
        ("in/café.mp4", "in/caf%C3%A9.mp4"),
        ("in/a+b.mp4", "in/a%2Bb.mp4"),
        ("in/100%.mp4", "in/100%25.mp4"),
        ("in/plain-name_1.mp4", "in/plain-name_1.mp4"),
    ],
)
def test_event_keys_are_form_encoded_as_s3_sends_them(key: str, encoded: str) -> None:
    assert event_key(key) == encoded
    assert unquote_plus(encoded) == key


def test_the_object_created_event_carries_the_encoded_key(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    ingest = Recorder()
    wired = wiring(stack, moto, clock, IngestFunction=ingest)
    key = "uploads/été 2026/a+b 100%.mp4"
    client(moto, "s3").put_object(Bucket=stack.outputs["VideoBucketName"], Key=key, Body=b"x")
    wired.step()
    (event,) = bodies(ingest)
    assert event["detail"]["object"]["key"] == "uploads/%C3%A9t%C3%A9+2026/a%2Bb+100%25.mp4"
    assert unquote_plus(event["detail"]["object"]["key"]) == key


# --- S3's key length limit ----------------------------------------------------------------------------------------


def test_moto_accepts_keys_s3_refuses_and_the_local_session_refuses_them(moto: MotoEndpoint) -> None:
    bucket = f"keys-{uuid.uuid4().hex[:8]}"
    too_long = "k" * (S3_MAX_KEY_BYTES + 1)
    plain = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    lenient = plain.client("s3", endpoint_url=moto.endpoint_url)
    lenient.create_bucket(Bucket=bucket)
    lenient.put_object(Bucket=bucket, Key=too_long, Body=b"x")  # moto: fine; S3: KeyTooLongError

    strict = local_session().client("s3", endpoint_url=moto.endpoint_url)
    strict.put_object(Bucket=bucket, Key="k" * S3_MAX_KEY_BYTES, Body=b"x")  # exactly the limit is allowed
    for key in (too_long, "é" * 513):  # the limit is in UTF-8 bytes: 513 x 2 bytes
        with pytest.raises(ClientError) as refused:
            strict.put_object(Bucket=bucket, Key=key, Body=b"x")
        assert refused.value.response["Error"]["Code"] == "KeyTooLongError"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError, match="KeyTooLongError"):
        strict.copy_object(Bucket=bucket, Key=too_long + "x", CopySource={"Bucket": bucket, "Key": "k" * 1024})
    with pytest.raises(ClientError, match="KeyTooLongError"):
        strict.create_multipart_upload(Bucket=bucket, Key=too_long)


# --- the template's new resources in moto --------------------------------------------------------------------------


def test_log_groups_alarms_dashboard_and_bus_policy_exist_in_moto(stack: LocalStack, moto: MotoEndpoint) -> None:
    logs = client(moto, "logs")
    for function_id, function in stack.functions.items():
        (group,) = logs.describe_log_groups(logGroupNamePrefix=function.log_group)["logGroups"]
        assert group["retentionInDays"] == 30, function_id
    cloudwatch = client(moto, "cloudwatch")
    names = {a["AlarmName"] for a in cloudwatch.describe_alarms(MaxRecords=100)["MetricAlarms"]}
    resolver = stack.resolver()
    alarm_ids = [lid for lid, s in stack.template["Resources"].items() if s["Type"] == "AWS::CloudWatch::Alarm"]
    # The alarms the template creates with its parameters (the webhook's two only with EnableWebhooks).
    created = {stack.resources[lid].ref for lid in alarm_ids if resolver.resource_enabled(lid)}
    skipped = {lid for lid in alarm_ids if not resolver.resource_enabled(lid)}
    assert skipped == {"WebhookErrorsAlarm", "WebhookThrottlesAlarm"}
    assert created <= names
    assert len(created) == len(alarm_ids) - 2
    dashboard = cloudwatch.get_dashboard(DashboardName=stack.outputs["DashboardName"])
    assert json.loads(dashboard["DashboardBody"])["widgets"]
    policy = json.loads(client(moto, "events").describe_event_bus(Name=stack.outputs["EventBusName"])["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny"
    assert "BatchCheckerFunctionRole" in json.dumps(statement["Condition"])
    assert "VideoBucketPolicy" not in stack.created  # see resources.NOT_CREATED


# --- metrics the wiring records ------------------------------------------------------------------------------------


def test_emf_lines_and_lambda_metrics_are_recorded_at_virtual_time(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    def emit(event: dict[str, Any], context: Any) -> dict[str, int]:
        blob = {
            "_aws": {
                "Timestamp": 0,
                "CloudWatchMetrics": [
                    {"Namespace": "VideoBatch", "Dimensions": [["service"]], "Metrics": [{"Name": "X"}]}
                ],
            },
            "service": "videobatch",
            "X": [2.0, 3.0],
        }
        print("not a metric")
        print(json.dumps(blob))
        raise RuntimeError("after the metrics")

    wired = wiring(stack, moto, clock, FlusherFunction=Recorder(emit))
    clock.advance(60)
    wired.step()
    fired_at = clock.now()
    ((key, values),) = [
        (k, wired.metrics.points(k, fired_at, fired_at + timedelta(seconds=1)))
        for k in wired.metrics.series_keys()
        if k.name == "X"
    ]
    assert key.dimensions == (("service", "videobatch"),)
    assert values == [2.0, 3.0]
    lambda_keys = {k.name: k for k in wired.metrics.series_keys() if k.namespace == "AWS/Lambda"}
    assert set(lambda_keys) == {"Invocations", "Errors", "Throttles", "Duration"}
    assert lambda_keys["Errors"].dimensions == (("FunctionName", stack.functions["FlusherFunction"].name),)


# --- failed invocations are summaries -----------------------------------------------------------------------------


def test_a_persistently_failing_handler_does_not_grow_memory(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    def crash_holding_a_lot(event: dict[str, Any], context: Any) -> None:
        ballast = bytearray(4 * 1024 * 1024)  # a frame local the traceback would keep alive
        raise RuntimeError(f"crashed with {len(ballast)} bytes in the frame")

    wired = LocalWiring(stack, {"FlusherFunction": crash_holding_a_lot}, clock=clock)
    for _ in range(5):  # warm-up: clients, caches
        clock.advance(60)
        wired.step()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        steps = 60
        for _ in range(steps):
            clock.advance(60)
            wired.step()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    failures = [i for i in wired.invocations if i.error is not None]
    assert len(failures) >= steps
    assert failures[-1].error == InvocationError("RuntimeError", "crashed with 4194304 bytes in the frame")
    # Keeping the exceptions kept every 4 MiB frame (240 MiB here); summaries are a few hundred bytes each.
    growth_per_step = (after - before) / steps
    assert growth_per_step < 20_000, f"{growth_per_step:.0f} bytes per failing step"


# --- the Powertools environment -----------------------------------------------------------------------------------


def test_handlers_run_with_the_templates_powertools_environment(tmp_path: Path) -> None:
    output = io.StringIO()
    with LocalPipeline(stack_name=f"pt{uuid.uuid4().hex[:6]}", lambda_output=output) as pipeline:
        video = samples.write_sample_video(tmp_path / "v.mp4", duration_seconds=4, seed=1)
        pipeline.upload("videos/v.mp4", video.read_bytes())
        pipeline.run_for(180)
    lines = [json.loads(line) for line in output.getvalue().splitlines() if line.startswith("{")]
    blobs = [line for line in lines if "_aws" in line]
    logs = [line for line in lines if "_aws" not in line and "level" in line]
    assert blobs
    assert logs
    for blob in blobs:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "VideoBatch"
        assert directive["Dimensions"] in ([["service"]], [["service", "function"]]), directive["Dimensions"]
        assert blob["service"] == "videobatch"
    assert {line["service"] for line in logs} == {"videobatch"}
    heartbeat_functions = {b["function"] for b in blobs if "Heartbeat" in b}
    assert heartbeat_functions >= {"ingest", "asset_checker", "flusher", "batch_checker"}
