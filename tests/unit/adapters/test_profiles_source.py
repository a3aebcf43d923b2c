"""Profiles changed without a redeploy (adapters.profiles_source), on moto's SSM and S3: a valid new version is
used, an invalid or unreadable one keeps the last good one and says so (ProfilesInvalid), a cold start without any
good version fails, and the runtime picks the newest up through ``refresh_profiles`` (what the handler calls)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from videobatch.adapters.memory import MemoryMetrics
from videobatch.adapters.profiles_source import ProfileSource, profile_source, provider_for
from videobatch.domain.profiles import load_default_profiles
from videobatch.errors import ConfigurationError

from .conftest import REGION

PARAMETER = "/videobatch/profiles"


def document(*names_and_prefixes: tuple[str, str]) -> str:
    profiles = [
        {"name": name, "key_prefix": prefix, "analysis_mode": "general", "options": {"prompt": {"input_text": "Sum"}}}
        for name, prefix in names_and_prefixes
    ]
    return json.dumps({"profiles": profiles})


def put(ssm: Any, text: str) -> None:
    ssm.put_parameter(Name=PARAMETER, Value=text, Type="String", Overwrite=True)


@pytest.fixture
def ssm(aws: None) -> Any:
    return boto3.client("ssm", region_name=REGION)


def source(**kwargs: Any) -> ProfileSource:
    return profile_source(
        f"ssm:{PARAMETER}", boto3.Session(region_name=REGION), max_age_seconds=0, results_prefix="results/", **kwargs
    )


def test_a_valid_version_is_used_and_a_new_valid_one_replaces_it(ssm: Any) -> None:
    put(ssm, document(("summary", "")))
    metrics = MemoryMetrics()
    loaded = source()
    assert [p.name for p in loaded.current(metrics).profiles] == ["summary"]
    put(ssm, document(("summary", ""), ("sports", "sports/")))
    assert loaded.current(metrics).for_key("sports/final.mp4").name == "sports"
    assert (loaded.problem, metrics.total("ProfilesInvalid")) == (None, 0)


def test_an_invalid_version_keeps_the_last_good_one_and_says_so_every_run(ssm: Any) -> None:
    put(ssm, document(("summary", "")))
    metrics = MemoryMetrics()
    loaded = source()
    good = loaded.current(metrics)
    put(ssm, document(("summary", ""), ("summary", "other/")))  # a name twice
    assert loaded.current(metrics) is good
    assert loaded.current(metrics) is good
    assert metrics.total("ProfilesInvalid") == 2
    assert loaded.problem is not None
    assert "used twice" in loaded.problem
    put(ssm, json.dumps({"profiles": [{"name": "bad", "key_prefix": "", "analysis_mode": "general", "options": {}}]}))
    assert loaded.current(metrics) is good  # a profile without a prompt: refused by the API's rules
    put(ssm, document(("summary", ""), ("x", "results/x/")))  # under the results prefix: never applies
    assert loaded.current(metrics) is good
    assert "results prefix" in (loaded.problem or "")
    put(ssm, document(("fixed", "")))
    assert [p.name for p in loaded.current(metrics).profiles] == ["fixed"]
    assert loaded.problem is None


def test_an_unreadable_source_keeps_the_last_good_one(ssm: Any) -> None:
    put(ssm, document(("summary", "")))
    metrics = MemoryMetrics()
    loaded = source()
    good = loaded.current(metrics)
    ssm.delete_parameter(Name=PARAMETER)
    assert loaded.current(metrics) is good
    assert "unreadable" in (loaded.problem or "")
    assert metrics.total("ProfilesInvalid") == 1


def test_a_cold_start_without_a_good_version_fails(ssm: Any) -> None:
    put(ssm, "{not json")
    metrics = MemoryMetrics()
    with pytest.raises(ConfigurationError, match="no valid version has been loaded yet"):
        source().current(metrics)
    assert metrics.total("ProfilesInvalid") == 1


def test_an_s3_object_source(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="profiles-config")
    s3.put_object(Bucket="profiles-config", Key="videobatch/profiles.json", Body=document(("summary", ""), ("c", "c/")))
    loaded = profile_source(
        "s3://profiles-config/videobatch/profiles.json",
        boto3.Session(region_name=REGION),
        max_age_seconds=300,
        results_prefix="results/",
    )
    metrics = MemoryMetrics()
    assert loaded.current(metrics).for_key("c/x.mp4").name == "c"
    s3.put_object(Bucket="profiles-config", Key="videobatch/profiles.json", Body=document(("only", "")))
    assert loaded.current(metrics).for_key("c/x.mp4").name == "c"  # cached for max_age: not read again yet
    with pytest.raises(ConfigurationError, match="neither ssm"):
        provider_for("https://example.com/profiles.json", boto3.Session(region_name=REGION))


def test_the_runtime_refreshes_its_profiles_from_the_source(ssm: Any) -> None:
    from videobatch.config import Settings
    from videobatch.runtime import build_runtime

    put(ssm, document(("summary", "")))
    settings = Settings(
        table_name="t",
        event_bus_name="b",
        video_bucket="v",
        twelvelabs_api_key_secret="s",
        profiles_source=f"ssm:{PARAMETER}",
        profiles_max_age_seconds=0,
    )
    runtime = build_runtime(
        settings, session=boto3.Session(region_name=REGION), api_key="k", metrics_sink=MemoryMetrics()
    )
    try:
        assert [p.name for p in runtime.profiles.profiles] == ["summary"]
        put(ssm, document(("summary", ""), ("sports", "sports/")))
        runtime.refresh_profiles()
        assert runtime.ingest_service()._profiles.for_key("sports/a.mp4").name == "sports"  # services built after
    finally:
        runtime.twelvelabs.close()
    without = build_runtime(
        settings.model_copy(update={"profiles_source": ""}), session=boto3.Session(region_name=REGION), api_key="k"
    )
    try:
        assert without.profile_source is None
        assert without.profiles == load_default_profiles()
    finally:
        without.twelvelabs.close()
