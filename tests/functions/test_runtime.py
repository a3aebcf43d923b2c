import os
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from videobatch import runtime
from videobatch.clock import ManualClock, SystemClock
from videobatch.config import Settings
from videobatch.errors import ConfigurationError


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": "t",
        "EVENT_BUS_NAME": "b",
        "VIDEO_BUCKET": "v",
        "TWELVELABS_API_KEY_SECRET": "tl-key",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    runtime.set_runtime(None)
    with mock_aws():
        yield
    runtime.set_runtime(None)


def test_built_once_from_the_environment_with_the_key_from_secrets_manager(env: None) -> None:
    boto3.client("secretsmanager").create_secret(Name="tl-key", SecretString="tlk_secret")
    first = runtime.get_runtime()
    assert runtime.get_runtime() is first
    assert isinstance(first.clock, SystemClock)
    assert first.settings.table_name == "t"
    first.twelvelabs.close()


def test_missing_settings_fail_at_build(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABLE_NAME")
    with pytest.raises(ConfigurationError, match="TABLE_NAME"):
        runtime.get_runtime()


def test_use_runtime_overrides_and_restores(env: None) -> None:
    settings = Settings(table_name="t", event_bus_name="b", video_bucket="v", twelvelabs_api_key_secret="unused")
    clock = ManualClock()
    injected = runtime.build_runtime(settings, clock=clock, api_key="k")
    with runtime.use_runtime(injected):
        assert runtime.get_runtime().clock is clock
    runtime.set_runtime(injected)
    assert runtime.get_runtime() is injected
    injected.twelvelabs.close()


def test_budget_follows_the_lambda_context() -> None:
    budget = runtime.InvocationBudget()
    assert budget.remaining_seconds() == float("inf")

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    budget.bind(Context())
    assert budget.remaining_seconds() == 60 - runtime.LAMBDA_MARGIN_SECONDS


# A fresh interpreter: which modules a handler's runtime loads is only visible before anything imported them.
LAZY_PROBE = """
import os, sys
from videobatch.config import Settings
from videobatch import runtime
built = runtime.build_runtime(Settings.from_env(os.environ))  # as in Lambda: keys from Secrets Manager
lazy = ("httpx", "videobatch.twelvelabs.client")
print(sorted(m for m in sys.modules if m.startswith("videobatch.adapters") or m in lazy))
built.replays.first_seen  # the webhook's first port: loads the DynamoDB adapter only
print(sorted(m for m in sys.modules if m.startswith("videobatch.adapters")))
print(type(built.replays._resolve()).__name__, built.replays._resolve() is built.replays._resolve())
"""


def fresh_interpreter(code: str, **environment: str) -> list[str]:
    """The lines ``code`` prints in a new interpreter with this environment (plus ``environment``)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **environment}, check=True
    )
    return done.stdout.splitlines()


def test_the_runtime_loads_an_adapter_only_when_a_handler_first_uses_it(env: None) -> None:
    before, after, resolved = fresh_interpreter(LAZY_PROBE)
    assert before == "[]"  # no adapter, no TwelveLabs client, no httpx
    assert after == "['videobatch.adapters', 'videobatch.adapters.attributes', 'videobatch.adapters.dynamodb']"
    assert resolved == "DynamoReplayGuard True"  # built once, the adapter itself behind the port


# What a Lambda function's first invocation loads: its clients come from botocore, with the runtime's config.
BOTOCORE_PROBE = """
import os, sys
from videobatch.config import Settings
from videobatch import runtime
from videobatch.services.ports import ObjectRef
built = runtime.build_runtime(Settings.from_env(os.environ))  # as in Lambda: keys from Secrets Manager
client = built.items._client
client.meta  # makes the DynamoDB client, as the first call does
print(type(client._client).__module__, client.meta.region_name, client.meta.config.retries)
url = built.objects.presigned_get_url(ObjectRef(bucket="v", key="a b/c.mp4"), 60)
print("X-Amz-Signature=" in url and "a%20b/c.mp4" in url)
built.ledger._resolve(), built.control._resolve()  # the other DynamoDB adapters need no boto3 either
built.webhook_secret._resolve(), built.twelvelabs._resolve()._keys._resolve()  # nor do the secrets
print(sorted(m for m in sys.modules if m == "boto3" or m.startswith(("boto3.", "s3transfer"))))
"""


def test_a_function_runtime_makes_botocore_clients_and_never_imports_boto3(env: None) -> None:
    made, presigned, loaded = fresh_interpreter(BOTOCORE_PROBE, WEBHOOK_SECRET="hook")
    assert made == "botocore.client us-east-1 {'mode': 'standard', 'total_max_attempts': 6}"
    assert presigned == "True"  # SigV4, the key encoded: botocore's presigner, as boto3's client has it
    assert loaded == "[]"


# Building a model's validator is most of what a model costs at import (~4 ms each here): only the models a cold
# start validates may be built by then, every other one defers it to first use (``defer_build=True``).
BUILT_MODELS_PROBE = """
import os, sys
import pydantic
from videobatch.config import Settings
from videobatch import runtime
built = runtime.build_runtime(Settings.from_env(os.environ))
for factory in ("ingest_service", "deletion_service", "asset_check_service", "flush_service", "batch_check_service",
                "sweep_service", "webhook_service", "reconcile_service"):
    runtime.load_ports(getattr(built, factory)())
def models(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from models(sub)
print(sorted({m.__qualname__ for m in models(pydantic.BaseModel)
              if m.__module__.startswith("videobatch") and m.__pydantic_complete__}))
"""


def test_a_cold_start_builds_only_the_validators_it_uses(env: None) -> None:
    (built,) = fresh_interpreter(BUILT_MODELS_PROBE, WEBHOOK_SECRET="hook")
    # The settings and profiles are validated at build, the requeue policy is made for the services holding one.
    assert built == str(["AnalysisOptions", "Profile", "ProfileSet", "RequeuePolicy", "Settings"])
