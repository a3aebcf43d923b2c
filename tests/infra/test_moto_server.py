"""The moto server helper, and why the local stack taps moto's S3 -> EventBridge notifications."""

from __future__ import annotations

import json
import os

import boto3
import moto.s3.notifications as moto_s3_notifications
import pytest
from moto import mock_aws

from videobatch_tools.localstack.moto_server import moto_server

pytestmark = pytest.mark.integration


def test_server_listens_on_loopback_and_scopes_the_environment() -> None:
    original_sender = moto_s3_notifications._send_event_bridge_message
    before = os.environ.get("AWS_ENDPOINT_URL")
    with moto_server() as endpoint:
        assert endpoint.endpoint_url.startswith("http://127.0.0.1:")
        assert os.environ["AWS_ENDPOINT_URL"] == endpoint.endpoint_url
        assert os.environ["AWS_CONFIG_FILE"] == os.devnull
        # A default client (as a handler would build one) reaches moto, not AWS.
        boto3.client("sqs").create_queue(QueueName="probe")
        assert endpoint.client("sqs").get_queue_url(QueueName="probe")["QueueUrl"].startswith(endpoint.endpoint_url)
        assert moto_s3_notifications._send_event_bridge_message is not original_sender
    assert os.environ.get("AWS_ENDPOINT_URL") == before
    assert moto_s3_notifications._send_event_bridge_message is original_sender


def test_moto_native_s3_eventbridge_events_are_not_aws_shaped() -> None:
    """Canary: the reason for s3_tap. If moto starts emitting AWS's shape, the tap can go (and this fails)."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        s3.create_bucket(Bucket="canary")
        s3.put_bucket_notification_configuration(
            Bucket="canary", NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        url = sqs.create_queue(QueueName="canary")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="r", EventPattern=json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created"]}))
        events.put_targets(Rule="r", Targets=[{"Id": "q", "Arn": arn}])
        s3.put_object(Bucket="canary", Key="a", Body=b"x")
        s3.put_object(Bucket="canary", Key="b", Body=b"x")
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    created = [json.loads(m["Body"]) for m in received]
    created = [e for e in created if e["detail-type"] == "Object Created"]
    assert len(created) == 2
    assert "eTag" in created[0]["detail"]["object"]  # AWS: "etag"
    assert created[0]["detail"]["reason"] == "ObjectCreated"  # AWS: "PutObject"
    assert created[0]["id"] == created[1]["id"]  # AWS: a fresh UUID per event
