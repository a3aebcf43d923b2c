import json
from datetime import UTC, datetime
from typing import Any
from unittest.mock import patch

import boto3
import pytest
from botocore.exceptions import ClientError

from videobatch.adapters.events import EventBridgePublisher, EventPublishError
from videobatch.adapters.scheduler import BatchExpiryScheduler, schedule_name
from videobatch.adapters.secrets import SecretApiKeyProvider
from videobatch.clock import ManualClock
from videobatch.domain.events import ItemFailed
from videobatch.errors import ConfigurationError

from .conftest import REGION


def entry(n: int) -> ItemFailed:
    return ItemFailed(
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        item_id=f"{n:032x}",
        bucket="uploads",
        key=f"in/{n}.mp4",
        attempts=0,
        stage="ingest",
        failure_code="not_a_video_content",
        failure_message="not a video",
    )


def test_publishes_in_calls_of_ten(aws: None) -> None:
    client = boto3.client("events", region_name=REGION)
    client.create_event_bus(Name="bus")
    calls: list[int] = []
    real = client.put_events

    def counting(**kwargs: Any) -> Any:
        calls.append(len(kwargs["Entries"]))
        assert {e["EventBusName"] for e in kwargs["Entries"]} == {"bus"}
        return real(**kwargs)

    with patch.object(client, "put_events", side_effect=counting):
        EventBridgePublisher(client, "bus").publish([entry(n) for n in range(23)])
    assert calls == [10, 10, 3]


def test_rejected_entries_are_retried_once_then_raised(aws: None) -> None:
    client = boto3.client("events", region_name=REGION)
    responses = iter(
        [
            {"FailedEntryCount": 1, "Entries": [{"EventId": "1"}, {"ErrorCode": "Throttling", "ErrorMessage": "slow"}]},
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "Throttling", "ErrorMessage": "slow"}]},
        ]
    )
    with (
        patch.object(client, "put_events", side_effect=lambda **_: next(responses)),
        pytest.raises(EventPublishError) as caught,
    ):
        EventBridgePublisher(client, "bus").publish([entry(1), entry(2)])
    assert caught.value.failures == [("Item Failed", "Throttling", "slow")]


def test_schedule_is_created_once_per_batch(aws: None) -> None:
    client = boto3.client("scheduler", region_name=REGION)
    scheduler = BatchExpiryScheduler(
        client, group_name="default", target_arn="arn:aws:lambda:us-east-1:123456789012:function:c", role_arn="arn:r"
    )
    at = datetime(2026, 1, 2, 0, 5, tzinfo=UTC)
    assert scheduler.schedule_batch_check("b" * 24, at)
    assert not scheduler.schedule_batch_check("b" * 24, at)
    schedule = client.get_schedule(Name=schedule_name("b" * 24), GroupName="default")
    assert schedule["ScheduleExpression"] == "at(2026-01-02T00:05:00)"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert json.loads(schedule["Target"]["Input"]) == {"batch_id": "b" * 24}


@pytest.mark.parametrize(("stored", "key"), [("tlk_plain", "tlk_plain"), ('{"api_key": "tlk_json"}', "tlk_json")])
def test_api_key_from_secrets_manager(aws: None, stored: str, key: str) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name="tl-key", SecretString=stored)
    assert SecretApiKeyProvider(client, "tl-key")() == key


@pytest.mark.parametrize("stored", ["   ", "{not json", '{"other": 1}'])
def test_unusable_secret_is_a_configuration_error(aws: None, stored: str) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name="tl-key", SecretString=stored)
    with pytest.raises(ConfigurationError):
        SecretApiKeyProvider(client, "tl-key")()


class CountingSecrets:
    """The moto client, counting reads: what the cache saves is calls."""

    def __init__(self, client: Any) -> None:
        self.client, self.reads = client, 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.reads += 1
        return self.client.get_secret_value(**kwargs)


def test_the_key_is_cached_for_max_age_then_read_again(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name="tl-key", SecretString="tlk_one")
    counting, clock = CountingSecrets(client), ManualClock()
    provider = SecretApiKeyProvider(counting, "tl-key", max_age_seconds=300, clock=clock)  # type: ignore[arg-type]
    assert provider.get() == "tlk_one"
    client.put_secret_value(SecretId="tl-key", SecretString="tlk_two")
    clock.advance(299)
    assert (provider.get(), counting.reads) == ("tlk_one", 1)  # within max age: the cached key, no read
    clock.advance(1)
    assert (provider.get(), counting.reads) == ("tlk_two", 2)


def test_refresh_bypasses_the_cache_and_renews_it(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name="tl-key", SecretString="tlk_one")
    counting = CountingSecrets(client)
    provider = SecretApiKeyProvider(counting, "tl-key", clock=ManualClock())  # type: ignore[arg-type]
    assert provider.get() == "tlk_one"
    client.put_secret_value(SecretId="tl-key", SecretString='{"api_key": "tlk_two"}')
    assert provider.refresh() == "tlk_two"
    assert (provider.get(), counting.reads) == ("tlk_two", 2)


def test_a_binary_secret_holds_the_key_too(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name="hook", SecretBinary=b'{"secret": "whsec_1"}')
    assert SecretApiKeyProvider(client, "hook", json_field="secret").get() == "whsec_1"


def test_a_binary_secret_that_is_not_text_is_a_configuration_error(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name="tl-key", SecretBinary=b"\xff\xfe\x00key")
    with pytest.raises(ConfigurationError, match="secret tl-key is binary, not UTF-8 text"):
        SecretApiKeyProvider(client, "tl-key").get()


def test_a_missing_secret_is_a_configuration_error_naming_it(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    with pytest.raises(ConfigurationError, match="secret absent cannot be read: ResourceNotFoundException"):
        SecretApiKeyProvider(client, "absent").get()


def test_a_throttled_read_is_raised_as_the_aws_error_and_nothing_is_cached(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name="tl-key", SecretString="tlk_one")
    provider = SecretApiKeyProvider(client, "tl-key", clock=ManualClock())
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetSecretValue")
    with patch.object(client, "get_secret_value", side_effect=throttled), pytest.raises(ClientError):
        provider.get()
    assert provider.get() == "tlk_one"


def test_the_provider_never_shows_the_key(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name="tl-key", SecretString="tlk_secret_value")
    provider = SecretApiKeyProvider(client, "tl-key")
    provider.get()
    assert "tlk_secret_value" not in repr(provider) + str(provider)
