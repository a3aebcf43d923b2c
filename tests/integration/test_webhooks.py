"""The webhook fast path on the local stack: the emulator's signed notification of a batch's end reaches
WebhookFunction through its Function URL, which starts the batch check at once, so the result is in S3 seconds
(virtual) after the batch completed instead of at the next batch-check schedule (5 minutes with webhooks on).
Requests that are forged, stale or replayed are refused with 401 and change nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import StartPipeline
from tests.integration.support import Media
from twelvelabs_emulator.models import EmulatorSettings
from videobatch.domain.items import ItemState
from videobatch_tools.localstack.pipeline import LocalPipeline

pytestmark = pytest.mark.integration

KEY = "videos/clip.mp4"


def result_keys(pipeline: LocalPipeline) -> list[str]:
    bucket = pipeline.settings.results_bucket or pipeline.bucket
    listed = pipeline.client("s3").list_objects_v2(Bucket=bucket, Prefix=pipeline.settings.results_prefix)
    return sorted(entry["Key"] for entry in listed.get("Contents", []))


def table_snapshot(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    """Every record but the replay guard's (a refused request must not add one either: checked apart)."""
    rows = pipeline.client("dynamodb").scan(TableName=pipeline.settings.table_name)["Items"]
    return sorted(rows, key=lambda row: (row["pk"]["S"], row["sk"]["S"]))


def batch_checks(pipeline: LocalPipeline) -> list[Any]:
    return [i for i in pipeline.wiring.invocations if i.function_id == "BatchCheckerFunction"]


def signed(secret: str, body: bytes, at: datetime) -> dict[str, str]:
    timestamp = int(at.timestamp())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "TL-Signature": f"t={timestamp},v1={digest}"}


def test_a_notification_brings_the_result_in_at_once_and_forgeries_change_nothing(
    start_pipeline: StartPipeline, media: Media
) -> None:
    # 20 s of video analysed in 130 s: the batch ends between two schedule ticks, not on one.
    slow = EmulatorSettings(item_concurrency=8, content_seconds_per_second=20 / 130, asset_ready_seconds=20.0)
    harness = start_pipeline(webhooks=True, emulator_settings=slow)
    pipeline = harness.pipeline
    assert pipeline.webhook_secret is not None
    # Webhooks on: the batch-check schedule is the slow one.
    assert pipeline.stack.parameters["WebhookBatchCheckRate"] == "rate(5 minutes)"
    pipeline.upload(KEY, media.video(seconds=20.0))
    pipeline.run_until(lambda: any(b.status == "completed" for b in pipeline.emulator.state.batches.values()))
    (batch,) = pipeline.emulator.state.batches.values()
    completed_at = batch.completed_at
    assert completed_at is not None
    pipeline.run_until(
        lambda: any(not key.startswith(f"{pipeline.settings.results_prefix}latest/") for key in result_keys(pipeline))
    )
    # Seconds after the batch ended (the relay wakes the clock at the emulator's item completion).
    assert pipeline.clock.now() - completed_at <= timedelta(seconds=5)
    (delivery,) = pipeline.webhook_relay.deliveries  # type: ignore[union-attr]
    assert delivery.response.status_code == 202
    assert delivery.response.json()["batch_id"] == batch.batch_id
    # The check that stored it was the one the webhook started, not a schedule.
    (started,) = [i for i in batch_checks(pipeline) if isinstance(i.event, dict) and i.event.get("source") == "webhook"]
    assert started.event == {"batch_id": batch.batch_id, "source": "webhook"}
    assert not [i for i in batch_checks(pipeline) if i.source.startswith("schedule:")]
    pipeline.run_until_idle()
    (item,) = pipeline.items()
    assert item.state is ItemState.DONE

    # Refused, and nothing changes: not the table, not the results, no batch check started.
    before = (table_snapshot(pipeline), result_keys(pipeline), len(batch_checks(pipeline)))
    secret, now = pipeline.webhook_secret, pipeline.clock.now()
    body = json.dumps({"type": "analyze.batch.completed", "data": {"batch_id": batch.batch_id}}).encode()
    refused = {
        "replayed": pipeline.post_webhook(delivery.request.body, delivery.request.headers),
        "forged": pipeline.post_webhook(body, signed("not-the-secret", body, now)),
        "stale": pipeline.post_webhook(body, signed(secret, body, now - timedelta(minutes=6))),
        "unsigned": pipeline.post_webhook(body, {"Content-Type": "application/json"}),
    }
    assert {name: response.status_code for name, response in refused.items()} == dict.fromkeys(refused, 401)
    pipeline.run_for(0)  # one step: whatever a refused request had started would run now
    assert (table_snapshot(pipeline), result_keys(pipeline), len(batch_checks(pipeline))) == before
    # The same body, rightly signed now, is trusted (the refusals above were for their signatures).
    accepted = pipeline.post_webhook(body, signed(secret, body, pipeline.clock.now()))
    assert accepted.status_code == 202
