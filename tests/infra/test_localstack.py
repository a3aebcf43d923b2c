"""The local stack: resources built from template.yaml in moto, and the wiring that drives handlers.

The handlers here only record what they receive: the thing under test is the wiring between them.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from videobatch.clock import ManualClock
from videobatch.config import Settings
from videobatch_tools.localstack.moto_server import MotoEndpoint
from videobatch_tools.localstack.resources import LocalStack, create_stack
from videobatch_tools.localstack.template import function_ids
from videobatch_tools.localstack.wiring import InvocationError, LambdaTimeoutError, LocalWiring, WiringStalledError

pytestmark = pytest.mark.integration

PERIODIC = ("AssetCheckerFunction", "FlusherFunction", "BatchCheckerFunction", "SweeperFunction")


class Recorder:
    """A handler that records each call; ``respond`` decides the return value."""

    def __init__(self, respond: Any = None) -> None:
        self.calls: list[tuple[dict[str, Any], Any, datetime | None]] = []
        self.environ: list[dict[str, str]] = []
        self._respond = respond
        self.clock: ManualClock | None = None

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.calls.append((event, context, self.clock.now() if self.clock else None))
        self.environ.append(dict(os.environ))
        if callable(self._respond):
            return self._respond(event, context)
        return self._respond


def client(moto: MotoEndpoint, service: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=moto.region
    ).client(service, endpoint_url=moto.endpoint_url)


def wiring(stack: LocalStack, moto: MotoEndpoint, clock: ManualClock, **handlers: Any) -> LocalWiring:
    for handler in handlers.values():
        if isinstance(handler, Recorder):
            handler.clock = clock
    return LocalWiring(stack, handlers, clock=clock, s3_notifications=moto.s3_notifications)


def queue_messages(moto: MotoEndpoint, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        client(moto, "sqs")
        .receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        .get("Messages", [])
    )
    return messages


def bodies(recorder: Recorder) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for event, _, _ in recorder.calls for r in event["Records"]]


# --- resources --------------------------------------------------------------------------------------------------


def test_table_matches_the_template(template: dict[str, Any], stack: LocalStack, moto: MotoEndpoint) -> None:
    dynamodb = client(moto, "dynamodb")
    spec = template["Resources"]["ItemsTable"]["Properties"]
    table = dynamodb.describe_table(TableName=stack.outputs["ItemsTableName"])["Table"]
    assert table["KeySchema"] == spec["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(spec["AttributeDefinitions"], key=str)
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    for expected in spec["GlobalSecondaryIndexes"]:
        assert indexes[expected["IndexName"]]["KeySchema"] == expected["KeySchema"]
        assert indexes[expected["IndexName"]]["Projection"] == expected["Projection"]
    assert set(indexes) == {"gsi1"}
    ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")
    backups = dynamodb.describe_continuous_backups(TableName=table["TableName"])["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert table["SSEDescription"]["Status"] == "ENABLED"


def test_bucket_matches_the_template(stack: LocalStack, moto: MotoEndpoint) -> None:
    s3 = client(moto, "s3")
    bucket = stack.outputs["VideoBucketName"]
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert {"NoncurrentDays": 30} in [r.get("NoncurrentVersionExpiration") for r in lifecycle]


def test_bucket_eventbridge_notifications_are_enabled(stack: LocalStack, moto: MotoEndpoint) -> None:
    # moto does not echo EventBridgeConfiguration back, so check its effect: moto reports the upload.
    s3 = client(moto, "s3")
    s3.put_object(Bucket=stack.outputs["VideoBucketName"], Key="in/a.mp4", Body=b"video")
    s3.create_bucket(Bucket=f"{stack.stack_name}-plain")
    s3.put_object(Bucket=f"{stack.stack_name}-plain", Key="in/a.mp4", Body=b"video")
    created = [n for n in moto.s3_notifications.drain() if n.event_name.startswith("s3:ObjectCreated")]
    assert [(n.bucket, n.key) for n in created] == [(stack.outputs["VideoBucketName"], "in/a.mp4")]


def test_queues_rule_secret_and_group_match_the_template(stack: LocalStack, moto: MotoEndpoint) -> None:
    sqs = client(moto, "sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=stack.outputs["IngestQueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    dlq_arn = stack.resources["IngestDeadLetterQueue"].attributes["Arn"]
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}
    assert attributes["VisibilityTimeout"] == "360"
    assert attributes["SqsManagedSseEnabled"] == "true"
    rule_arn = stack.resources["UploadRule"].attributes["Arn"]
    assert json.loads(attributes["Policy"])["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == rule_arn

    events = client(moto, "events")
    rule = events.describe_rule(Name=stack.resources["UploadRule"].ref, EventBusName="default")
    expected = stack.resolver().resolve(stack.template["Resources"]["UploadRule"]["Properties"]["EventPattern"])
    assert json.loads(rule["EventPattern"]) == expected
    (target,) = events.list_targets_by_rule(Rule=rule["Name"], EventBusName="default")["Targets"]
    assert target["Arn"] == stack.resources["IngestQueue"].attributes["Arn"]
    assert events.describe_event_bus(Name=stack.outputs["EventBusName"])["Name"] == stack.outputs["EventBusName"]

    secret = client(moto, "secretsmanager").get_secret_value(SecretId=stack.outputs["ApiKeySecretArn"])
    assert secret["SecretString"] == "local-test-key"
    group = client(moto, "scheduler").get_schedule_group(Name=stack.outputs["ExpiryScheduleGroupName"])
    assert group["Name"] == stack.outputs["ExpiryScheduleGroupName"]


def test_every_function_environment_is_valid_settings_naming_local_resources(
    stack: LocalStack, moto: MotoEndpoint
) -> None:
    # Every function the template creates by default: the webhook function only with EnableWebhooks.
    assert set(stack.functions) == set(function_ids(stack.template)) - {"WebhookFunction"}
    for function_id in stack.functions:
        settings = Settings.from_env(stack.env(function_id))
        assert settings.table_name == stack.outputs["ItemsTableName"]
        assert settings.event_bus_name == stack.outputs["EventBusName"]
        assert settings.twelvelabs_base_url == "http://127.0.0.1:9/v1.3"
        assert settings.scheduler_group_name == stack.outputs["ExpiryScheduleGroupName"]
        assert settings.batch_checker_arn == stack.functions["BatchCheckerFunction"].arn
        secret = client(moto, "secretsmanager").get_secret_value(SecretId=settings.twelvelabs_api_key_secret)
        assert secret["SecretString"] == "local-test-key"


def test_with_webhooks_the_webhook_function_its_secret_and_url_exist(
    template: dict[str, Any], moto: MotoEndpoint
) -> None:
    stack = create_stack(
        template,
        stack_name=f"w{uuid.uuid4().hex[:8]}",
        endpoint_url=moto.endpoint_url,
        parameter_overrides={"TwelveLabsBaseUrl": "http://127.0.0.1:9/v1.3", "EnableWebhooks": "true"},
        api_key="local-test-key",
        secret_values={"WebhookSecret": "local-webhook-secret"},
    )
    assert set(stack.functions) == set(function_ids(stack.template))
    webhook = Settings.from_env(stack.env("WebhookFunction"))
    secrets = client(moto, "secretsmanager")
    # Its own value, not the API key's; and the environment names the secret, never holds it.
    assert secrets.get_secret_value(SecretId=webhook.webhook_secret)["SecretString"] == "local-webhook-secret"
    assert secrets.get_secret_value(SecretId=webhook.twelvelabs_api_key_secret)["SecretString"] == "local-test-key"
    assert "local-webhook-secret" not in json.dumps(stack.env("WebhookFunction"))
    assert stack.outputs["WebhookUrl"].startswith("https://")
    assert ".lambda-url.us-east-1.on.aws/" in stack.outputs["WebhookUrl"]
    assert stack.outputs["WebhookSecretArn"] == webhook.webhook_secret
    flusher = stack.functions["FlusherFunction"].arn
    assert Settings.from_env(stack.env("BatchCheckerFunction")).flusher_arn == flusher
    assert Settings.from_env(stack.env("SweeperFunction")).flusher_arn == flusher


# --- S3 -> EventBridge -> SQS -> Lambda -------------------------------------------------------------------------


def test_upload_reaches_ingest_as_an_sqs_event_carrying_the_object_created_event(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    ingest = Recorder()
    wired = wiring(stack, moto, clock, IngestFunction=ingest)
    bucket = stack.outputs["VideoBucketName"]
    put = client(moto, "s3").put_object(Bucket=bucket, Key="uploads/my video.mp4", Body=b"0123456789")

    report = wired.step()

    assert (report.s3_events_routed, report.sqs_batches, report.records_succeeded) == (1, 1, 1)
    ((event, context, _),) = ingest.calls
    (record,) = event["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == stack.resources["IngestQueue"].attributes["Arn"]
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["attributes"]["SentTimestamp"] == str(int(clock.now().timestamp() * 1000))
    assert record["messageAttributes"] == {}
    assert record["receiptHandle"]

    body = json.loads(record["body"])
    assert {k: body[k] for k in ("version", "detail-type", "source", "account", "time", "region", "resources")} == {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": stack.account_id,
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
    }
    detail = body["detail"]
    assert detail["bucket"] == {"name": bucket}
    assert detail["object"]["key"] == "uploads/my+video.mp4"  # URL-encoded, as S3 sends it
    assert detail["object"]["size"] == 10
    assert detail["object"]["etag"] == put["ETag"].strip('"')
    assert detail["object"]["version-id"] == put["VersionId"]
    assert detail["reason"] == "PutObject"
    assert detail["requester"] == stack.account_id

    assert context.function_name == stack.functions["IngestFunction"].name
    assert context.get_remaining_time_in_millis() == 60_000
    assert ingest.environ[0]["TABLE_NAME"] == stack.outputs["ItemsTableName"]
    assert queue_messages(moto, stack.outputs["IngestQueueUrl"]) == []


def test_each_upload_gets_its_own_event_id_and_a_growing_sequencer(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    ingest = Recorder()
    wired = wiring(stack, moto, clock, IngestFunction=ingest)
    s3 = client(moto, "s3")
    for key in ("a.mp4", "b.mp4"):
        s3.put_object(Bucket=stack.outputs["VideoBucketName"], Key=key, Body=b"x")
    wired.step()
    events = sorted(bodies(ingest), key=lambda e: e["detail"]["object"]["sequencer"])
    assert [e["detail"]["object"]["key"] for e in events] == ["a.mp4", "b.mp4"]
    assert events[0]["id"] != events[1]["id"]


def test_results_written_back_to_the_bucket_are_not_ingested(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    ingest = Recorder()
    wired = wiring(stack, moto, clock, IngestFunction=ingest)
    client(moto, "s3").put_object(Bucket=stack.outputs["VideoBucketName"], Key="results/x.json", Body=b"{}")
    assert wired.step().s3_events_routed == 0
    assert ingest.calls == []


def test_failed_records_come_back_after_the_visibility_timeout_then_go_to_the_dlq(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    def fail_bad(event: dict[str, Any], context: Any) -> dict[str, Any]:
        bad = [r for r in event["Records"] if "bad" in json.loads(r["body"])["detail"]["object"]["key"]]
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in bad]}

    ingest = Recorder(fail_bad)
    wired = wiring(stack, moto, clock, IngestFunction=ingest)
    s3 = client(moto, "s3")
    s3.put_object(Bucket=stack.outputs["VideoBucketName"], Key="good.mp4", Body=b"x")
    s3.put_object(Bucket=stack.outputs["VideoBucketName"], Key="bad.mp4", Body=b"x")

    first = wired.step()
    assert (first.records_succeeded, first.records_failed) == (1, 1)
    assert wired.step().sqs_batches == 0  # in flight: not visible before the timeout
    clock.advance(359)
    assert wired.step().sqs_batches == 0
    clock.advance(1)
    assert wired.step().records_failed == 1
    retried = ingest.calls[-1][0]["Records"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in retried] == ["2"]
    # SentTimestamp stays the original send time on redelivery.
    assert retried[0]["attributes"]["SentTimestamp"] == str(int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000))

    wired.run_until_idle(clock.advance, max_steps=100)

    keys = [b["detail"]["object"]["key"] for b in bodies(ingest)]
    assert keys.count("good.mp4") == 1
    assert keys.count("bad.mp4") == 5  # maxReceiveCount
    # Five deliveries 360 s apart; at the sixth receive, 5 x 360 s in, SQS moves the message to the DLQ.
    assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=5 * 360)
    (dead,) = queue_messages(moto, stack.outputs["IngestDeadLetterQueueUrl"])
    assert json.loads(dead["Body"])["detail"]["object"]["key"] == "bad.mp4"
    assert queue_messages(moto, stack.outputs["IngestQueueUrl"]) == []


def test_an_exception_fails_the_whole_batch(stack: LocalStack, moto: MotoEndpoint, clock: ManualClock) -> None:
    def explode(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    wired = wiring(stack, moto, clock, IngestFunction=Recorder(explode))
    s3 = client(moto, "s3")
    for key in ("a.mp4", "b.mp4"):
        s3.put_object(Bucket=stack.outputs["VideoBucketName"], Key=key, Body=b"x")
    report = wired.step()
    assert (report.records_succeeded, report.records_failed, report.errors) == (0, 2, 1)
    assert wired.errors[0].error == InvocationError(type="RuntimeError", message="boom")


def test_an_unknown_item_identifier_fails_the_whole_batch(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    wired = wiring(stack, moto, clock, IngestFunction=Recorder({"batchItemFailures": [{"itemIdentifier": "nope"}]}))
    client(moto, "s3").put_object(Bucket=stack.outputs["VideoBucketName"], Key="a.mp4", Body=b"x")
    assert wired.step().records_failed == 1


def test_running_past_the_timeout_counts_as_failure(stack: LocalStack, moto: MotoEndpoint, clock: ManualClock) -> None:
    def slow(event: dict[str, Any], context: Any) -> None:
        clock.advance(61)
        assert context.get_remaining_time_in_millis() == 0

    wired = wiring(stack, moto, clock, IngestFunction=Recorder(slow))
    client(moto, "s3").put_object(Bucket=stack.outputs["VideoBucketName"], Key="a.mp4", Body=b"x")
    assert wired.step().records_failed == 1
    error = wired.errors[0].error
    assert error is not None
    assert error.type == LambdaTimeoutError.__name__


# --- schedules --------------------------------------------------------------------------------------------------


def test_rate_schedules_fire_at_their_virtual_times(stack: LocalStack, moto: MotoEndpoint, clock: ManualClock) -> None:
    recorders = {name: Recorder({"work_done": 0}) for name in PERIODIC}
    wired = wiring(stack, moto, clock, **recorders)
    start = clock.now()
    assert wired.step().periodic_fired == 0
    for _ in range(15):
        clock.advance(60)
        wired.step()
    minutes = [start + timedelta(minutes=m) for m in range(1, 16)]
    assert [when for _, _, when in recorders["FlusherFunction"].calls] == minutes
    assert [when for _, _, when in recorders["SweeperFunction"].calls] == [start + timedelta(minutes=15)]

    event = recorders["SweeperFunction"].calls[0][0]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-01-01T00:15:00Z"
    assert event["detail"] == {}
    assert event["resources"][0].startswith(f"arn:aws:events:us-east-1:{stack.account_id}:rule/")


def test_a_clock_jump_coalesces_missed_firings(stack: LocalStack, moto: MotoEndpoint, clock: ManualClock) -> None:
    flusher = Recorder()
    wired = wiring(stack, moto, clock, FlusherFunction=flusher)
    clock.advance(330)
    wired.step()
    ((event, _, _),) = flusher.calls
    assert event["time"] == "2026-01-01T00:05:00Z"
    clock.advance(30)
    wired.step()
    assert len(flusher.calls) == 2


def create_one_time_schedule(
    stack: LocalStack, moto: MotoEndpoint, name: str, at: datetime, *, delete_after: bool = True
) -> None:
    settings = Settings.from_env(stack.env("FlusherFunction"))
    request: dict[str, Any] = {
        "Name": name,
        "GroupName": settings.scheduler_group_name,
        "ScheduleExpression": f"at({at:%Y-%m-%dT%H:%M:%S})",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {
            "Arn": settings.batch_checker_arn,
            "RoleArn": settings.scheduler_role_arn,
            "Input": json.dumps({"check_batch": "b-1"}),
        },
    }
    if delete_after:
        request["ActionAfterCompletion"] = "DELETE"
    client(moto, "scheduler").create_schedule(**request)


def test_a_one_time_schedule_fires_once_at_its_time_and_is_deleted(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    checker = Recorder({"work_done": 0})
    wired = wiring(stack, moto, clock, BatchCheckerFunction=checker)
    due = clock.now() + timedelta(hours=24, minutes=5)
    create_one_time_schedule(stack, moto, "expire-b-1", due)

    clock.advance(24 * 3600 + 299)
    wired.step()
    assert [e for e, _, _ in checker.calls if "check_batch" in e] == []
    assert wired.next_due() == due

    clock.advance(1)
    assert wired.step().one_time_fired == 1
    fired = [(e, when) for e, _, when in checker.calls if "check_batch" in e]
    assert fired == [({"check_batch": "b-1"}, due)]
    with pytest.raises(ClientError, match="ResourceNotFound"):
        client(moto, "scheduler").get_schedule(Name="expire-b-1", GroupName=stack.outputs["ExpiryScheduleGroupName"])
    clock.advance(3600)
    assert wired.step().one_time_fired == 0


def test_a_kept_one_time_schedule_still_fires_only_once(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    checker = Recorder({"work_done": 0})
    wired = wiring(stack, moto, clock, BatchCheckerFunction=checker)
    create_one_time_schedule(stack, moto, "keep", clock.now() + timedelta(minutes=2), delete_after=False)
    clock.advance(120)
    assert wired.step().one_time_fired == 1
    clock.advance(120)
    assert wired.step().one_time_fired == 0
    assert wired.pending() == []


def test_a_failed_asynchronous_invocation_is_retried_twice_with_the_same_event(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    def crash_on_check(event: dict[str, Any], context: Any) -> Any:
        if "check_batch" in event:
            raise RuntimeError("handler crashed")
        return {"work_done": 0}

    checker = Recorder(crash_on_check)
    wired = wiring(stack, moto, clock, BatchCheckerFunction=checker)
    due = clock.now() + timedelta(minutes=2, seconds=30)  # between two periodic firings
    create_one_time_schedule(stack, moto, "expire-b-1", due)
    clock.set(due)
    assert wired.step().errors == 1
    assert any("retry" in reason for reason in wired.pending())
    clock.set(due + timedelta(minutes=1))
    assert wired.step().async_retries == 1
    clock.set(due + timedelta(minutes=3))
    assert wired.step().async_retries == 1
    clock.set(due + timedelta(hours=1))
    wired.step()
    assert not any("retry" in reason for reason in wired.pending())
    delivered = [(event, when) for event, _, when in checker.calls if "check_batch" in event]
    moments = [due, due + timedelta(minutes=1), due + timedelta(minutes=3)]
    assert delivered == [({"check_batch": "b-1"}, moment) for moment in moments]  # then dropped, as Lambda does


def test_a_retried_invocation_that_succeeds_is_not_retried_again(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    outcomes = iter([RuntimeError("first run crashed"), {"work_done": 1}])

    def flaky(event: dict[str, Any], context: Any) -> Any:
        outcome = next(outcomes, {"work_done": 0})
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    flusher = Recorder(flaky)
    wired = wiring(stack, moto, clock, FlusherFunction=flusher)
    clock.advance(60)
    assert wired.step().errors == 1
    clock.advance(60)
    report = wired.step()  # the retry and the next scheduled run are both due
    assert (report.async_retries, report.errors) == (1, 0)
    events = [event for event, _, _ in flusher.calls]
    assert len(events) == 3  # the crash, the next scheduled run, the retry
    assert events.count(events[0]) == 2  # the retry carries the same event (same id and time)
    assert not any("retry" in reason for reason in wired.pending())


# --- idle -------------------------------------------------------------------------------------------------------


def test_run_until_idle_waits_for_every_periodic_function_to_report_no_work(
    stack: LocalStack, moto: MotoEndpoint, clock: ManualClock
) -> None:
    backlog = [3]

    def flush(event: dict[str, Any], context: Any) -> dict[str, int]:
        if backlog[0]:
            backlog[0] -= 1
            return {"work_done": 1}
        return {"work_done": 0}

    recorders = {name: Recorder({"work_done": 0}) for name in PERIODIC}
    recorders["FlusherFunction"] = Recorder(flush)
    wired = wiring(stack, moto, clock, **recorders)
    run = wired.run_until_idle(clock.advance)

    assert backlog == [0]
    assert run.totals.periodic_work == 3
    # Flusher worked at minutes 1-3 and found nothing at 4; the sweeper first runs at 15 minutes.
    assert run.advanced_seconds == 15 * 60
    assert wired.pending() == []


def test_run_until_idle_reports_what_never_settles(stack: LocalStack, moto: MotoEndpoint, clock: ManualClock) -> None:
    def broken(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("always")

    wired = wiring(stack, moto, clock, FlusherFunction=Recorder(broken))
    with pytest.raises(WiringStalledError, match=r"FlusherFunction\.Every has not reported idle"):
        wired.run_until_idle(clock.advance, max_steps=20)


def test_is_idle_callback_keeps_the_run_going(stack: LocalStack, moto: MotoEndpoint, clock: ManualClock) -> None:
    done_at = clock.now() + timedelta(minutes=10)
    wired = LocalWiring(
        stack,
        {"FlusherFunction": Recorder()},
        clock=clock,
        s3_notifications=moto.s3_notifications,
        is_idle=lambda: clock.now() >= done_at,
    )
    wired.run_until_idle(clock.advance)
    assert clock.now() == done_at
