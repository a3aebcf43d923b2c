"""The least-privilege table of test_template.py checked against reality: the real handlers run on the local stack
with every boto3 call recorded, attributed to the function being invoked, and translated to the IAM action and
resource it needs. Each must be in the function's row of the table (and so, by test_template.py, granted)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.infra.test_template import (
    ALL_FUNCTIONS,
    WEBHOOKS_ON,
    Grant,
    required_grants,
    resource_kind,
    template_grants,
)
from videobatch.runtime import build_runtime, set_runtime
from videobatch_tools import samples
from videobatch_tools.localstack.pipeline import LocalPipeline
from videobatch_tools.localstack.resources import offline_resolver

pytestmark = pytest.mark.integration

# moto's backends are process-wide: a stack name of its own keeps this run apart from other pipelines.
STACK_NAME = "iamobserved"

Observed = set[tuple[str, str, str]]  # (function, action, resource kind)


def iam_needs(
    service: str, operation: str, params: Mapping[str, Any], results_prefix: str, kinds: Mapping[str, str]
) -> list[Grant]:
    """The IAM actions one API call is authorised against (the documented mapping for the calls this code makes);
    ``kinds`` names the secrets and functions by ARN."""
    if service == "dynamodb":
        kind = str(params.get("IndexName", "table")) if operation == "Query" else "table"
        return [(f"dynamodb:{operation}", kind)]
    if service == "s3" and operation == "ListObjectVersions":
        return [("s3:ListBucketVersions", "bucket")]  # authorised on the bucket, not its objects
    if service == "s3":
        kind = "results" if str(params.get("Key", "")).startswith(results_prefix) else "uploads"
        if operation in {"HeadObject", "GetObject"}:
            return [("s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject", kind)]
        return [(f"s3:{operation}", kind)]
    if service == "events" and operation == "PutEvents":
        return [("events:PutEvents", "bus")]
    if service == "scheduler" and operation == "CreateSchedule":
        return [("scheduler:CreateSchedule", "expiry_schedules"), ("iam:PassRole", "scheduler_role")]
    if service == "scheduler" and operation == "DeleteSchedule":
        return [("scheduler:DeleteSchedule", "expiry_schedules")]
    if service == "sqs" and operation in {"SendMessage", "SendMessageBatch"}:
        return [("sqs:SendMessage", "ingest_queue")]  # a multipart upload's continuation; one action for both
    if service == "secretsmanager" and operation == "GetSecretValue":
        return [("secretsmanager:GetSecretValue", kinds.get(str(params.get("SecretId")), "secret"))]
    if service == "lambda" and operation == "Invoke":
        return [("lambda:InvokeFunction", kinds.get(str(params.get("FunctionName")), "unmapped"))]
    return [(f"{service}:{operation}", "unmapped")]


@pytest.fixture(scope="module")
def observed() -> Observed:
    calls: Observed = set()
    # Webhooks on: the emulator's notifications reach WebhookFunction, whose calls are observed too.
    with tempfile.TemporaryDirectory() as workdir, LocalPipeline(stack_name=STACK_NAME, webhooks=True) as pipeline:
        by_name = {function.name: logical_id for logical_id, function in pipeline.stack.functions.items()}
        prefix = pipeline.settings.results_prefix
        settings = pipeline.settings
        kinds = {
            settings.webhook_secret: "webhook_secret",
            settings.flusher_arn: "flusher",
            settings.batch_checker_arn: "batch_checker",
        }

        def record(model: Any, params: Mapping[str, Any], **_: Any) -> None:
            # The wiring sets the invoked function's Lambda environment for the duration of the handler only.
            function = by_name.get(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""))
            if function is not None:
                needs = iam_needs(model.service_model.service_name, model.name, params, prefix, kinds)
                calls.update((function, action, kind) for action, kind in needs)

        session = pipeline.moto.session()
        session.events.register("before-parameter-build", record)  # params: the API call's arguments
        runtime = build_runtime(pipeline.settings, clock=pipeline.clock, session=session, api_key=pipeline.api_key)
        set_runtime(runtime)
        try:
            for seed, key in enumerate(("videos/kitchen.mp4", "chapters/interview.mp4")):
                path = samples.write_sample_video(Path(workdir) / f"{seed}.mp4", duration_seconds=12, seed=seed)
                pipeline.upload(key, path.read_bytes())
            pipeline.upload("videos/notes.mp4", samples.write_non_video(Path(workdir) / "notes.mp4").read_bytes())
            pipeline.run_until_idle()
            # A video deleted before it was submitted: its "Object Deleted" reaches ingest through the template's
            # DeletionRule, and ingest lists the key's versions and reads their items.
            path = samples.write_sample_video(Path(workdir) / "deleted.mp4", duration_seconds=5, seed=9)
            pipeline.upload("videos/deleted.mp4", path.read_bytes())
            pipeline.wiring.step()
            s3 = pipeline.client("s3")
            marker = s3.delete_object(Bucket=pipeline.bucket, Key="videos/deleted.mp4")["VersionId"]
            deleted = {
                "version": "0",
                "id": "deleted-1",
                "detail-type": "Object Deleted",
                "source": "aws.s3",
                "account": "123456789012",
                "time": "2026-01-05T09:00:00Z",
                "region": "us-east-1",
                "resources": [f"arn:aws:s3:::{pipeline.bucket}"],
                "detail": {
                    "version": "0",
                    "bucket": {"name": pipeline.bucket},
                    "object": {"key": "videos/deleted.mp4", "version-id": marker, "sequencer": "01"},
                    "reason": "DeleteObject",
                    "deletion-type": "Delete Marker Created",
                },
            }
            assert pipeline.wiring.publish_default_bus_event(deleted)
            pipeline.run_until_idle()
            assert not pipeline.wiring.errors
        finally:
            runtime.twelvelabs.close()
            set_runtime(pipeline.runtime)
    return calls


def test_every_function_ran_and_made_calls(observed: Observed) -> None:
    assert {function for function, _, _ in observed} == set(ALL_FUNCTIONS)


@pytest.mark.parametrize("function_id", ALL_FUNCTIONS)
def test_every_observed_call_is_in_the_table_and_granted(
    observed: Observed, template: dict[str, Any], function_id: str
) -> None:
    seen = {(action, kind) for function, action, kind in observed if function == function_id}
    assert seen - required_grants(function_id) == set(), "the code made calls the table does not list"
    resolver = offline_resolver(template, stack_name=STACK_NAME, parameter_overrides=WEBHOOKS_ON)
    granted = template_grants(template, resolver, function_id)
    assert seen - granted == set(), "the template does not grant calls the code made"


def test_the_grants_reported_missing_are_really_used(observed: Observed) -> None:
    assert ("AssetCheckerFunction", "dynamodb:PutItem", "table") in observed
    assert ("FlusherFunction", "dynamodb:DeleteItem", "table") in observed
    assert ("BatchCheckerFunction", "dynamodb:BatchGetItem", "table") in observed
    assert ("BatchCheckerFunction", "s3:PutObject", "results") in observed
    assert ("IngestFunction", "s3:GetObjectVersion", "uploads") in observed  # versioned bucket: reads name a version
    assert ("IngestFunction", "s3:ListBucketVersions", "bucket") in observed  # an "Object Deleted"
    assert ("IngestFunction", "dynamodb:BatchGetItem", "table") in observed
    assert ("IngestFunction", "dynamodb:UpdateItem", "table") in observed  # the ledger counts its failures
    assert ("BatchCheckerFunction", "dynamodb:BatchWriteItem", "table") in observed
    # The fast path: a notification is verified, remembered and starts the check; a closed batch starts the flusher.
    assert ("WebhookFunction", "secretsmanager:GetSecretValue", "webhook_secret") in observed
    assert ("WebhookFunction", "dynamodb:PutItem", "table") in observed
    assert ("WebhookFunction", "lambda:InvokeFunction", "batch_checker") in observed
    assert ("BatchCheckerFunction", "lambda:InvokeFunction", "flusher") in observed


def test_resource_kinds_are_named_from_the_template(template: dict[str, Any]) -> None:
    resolver = offline_resolver(template, stack_name=STACK_NAME)
    table = resolver.resolve({"Fn::GetAtt": ["ItemsTable", "Arn"]})
    assert resource_kind(resolver, f"{table}/index/gsi1") == "gsi1"
