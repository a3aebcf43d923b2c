"""The first day of a deploy: the stack's secret holds a random placeholder until the operator stores the real key.

The key is read as in Lambda: ``build_runtime`` without an ``api_key``, so through ``SecretApiKeyProvider`` from
Secrets Manager (moto), cached and re-read when TwelveLabs refuses it. While the placeholder is in place every run
that calls TwelveLabs fails as a pipeline fault and no item is failed; once ``put_secret_value`` stores the key, the
next run that meets a 401 re-reads the secret and the videos flow.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from tests.integration.conftest import StartPipeline
from tests.integration.support import Harness, Media
from videobatch.domain.items import ItemState
from videobatch.runtime import build_runtime, set_runtime

pytestmark = pytest.mark.integration

NAMESPACE = "VideoBatch"


def metric_sum(harness: Harness, name: str, since: datetime) -> float:
    store = harness.pipeline.wiring.metrics
    until = harness.pipeline.clock.now() + timedelta(seconds=1)
    return sum(
        sum(store.points(key, since, until))
        for key in store.series_keys()
        # Each function's stream has the one ``service`` dimension the alarms watch.
        if key.namespace == NAMESPACE and key.name == name and [n for n, _ in key.dimensions] == ["service"]
    )


@pytest.fixture
def placeholder_pipeline(start_pipeline: StartPipeline) -> Iterator[Harness]:
    harness = start_pipeline()
    pipeline = harness.pipeline
    # As the stack creates it: GenerateSecretString's random 32 characters, not a key TwelveLabs knows.
    pipeline.client("secretsmanager").put_secret_value(
        SecretId=pipeline.settings.twelvelabs_api_key_secret, SecretString=secrets.token_hex(16)
    )
    from_secret = build_runtime(pipeline.settings, clock=pipeline.clock, session=pipeline.session)
    set_runtime(from_secret)
    try:
        yield harness
    finally:
        from_secret.twelvelabs.close()
        set_runtime(pipeline.runtime)


def test_the_placeholder_harms_no_item_and_the_stored_key_lets_the_videos_through_within_5_minutes(
    placeholder_pipeline: Harness, media: Media
) -> None:
    harness = placeholder_pipeline
    pipeline = harness.pipeline
    started = pipeline.clock.now()
    ids = [harness.upload(f"videos/day-one-{n}.mp4", media.video(3, seed=n)) for n in range(2)]
    pipeline.run_for(5 * 60)

    # Five minutes of placeholder: every call refused, counted as the pipeline's fault, no item failed or moved on.
    assert {harness.item(item_id).state for item_id in ids} == {ItemState.REGISTERED}
    assert metric_sum(harness, "PipelineFaults", started) >= 1
    assert metric_sum(harness, "TwelveLabsAuthErrors", started) >= 1
    assert metric_sum(harness, "ItemsFailed", started) == 0
    failed = {(i.function_id, i.error.type) for i in pipeline.wiring.invocations if i.error is not None}
    # Ingest (the uploads' messages go back to the queue) and the scheduled runs that reached TwelveLabs.
    assert ("IngestFunction", "IngestBatchFailed") in failed
    assert any(function_id != "IngestFunction" for function_id, _ in failed), failed
    assert {error for _, error in failed} <= {"IngestBatchFailed", "AuthenticationError"}

    stored_at = pipeline.clock.now()
    runs_before = len(pipeline.wiring.invocations)
    pipeline.client("secretsmanager").put_secret_value(
        SecretId=pipeline.settings.twelvelabs_api_key_secret, SecretString=pipeline.api_key
    )
    pipeline.run_until(lambda: all(harness.item(item_id).state is ItemState.DONE for item_id in ids))
    # The failed uploads' messages came back on the queue's visibility timeout (6 min after the first attempt, a
    # minute after the key was stored here) and the rest of the pipeline followed on its one-minute schedules.
    assert pipeline.clock.now() - stored_at <= timedelta(minutes=5)
    assert len(harness.batches()) == 1
    assert metric_sum(harness, "ItemsFailed", started) == 0
    # Every run after the key was stored succeeded: the first to meet the cached placeholder's 401 re-read the
    # secret and retried the call, within the same run.
    after = pipeline.wiring.invocations[runs_before:]
    assert after
    assert [(i.function_id, i.error) for i in after if i.error is not None] == []
