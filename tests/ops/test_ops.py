"""The ops commands (``videobatch status | item | sweep``) against the local stack after a real run.

Two videos and one non-video go through the real handlers on LocalPipeline (moto server + emulator). The commands
reach moto through ``AWS_ENDPOINT_URL`` (set by the local stack for the block), with ``--table``/``--bus`` flags
or ``--stack`` (a CloudFormation stack created in moto whose outputs name the pipeline's resources).
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from videobatch.config import Settings
from videobatch.domain.items import ItemState, item_id_for
from videobatch.domain.records import ItemRecord
from videobatch_tools import cli, ops, samples
from videobatch_tools.localstack.pipeline import LocalPipeline

pytestmark = pytest.mark.integration

VIDEOS = ("videos/kitchen.mp4", "chapters/interview.mp4")
NOT_A_VIDEO = "videos/notes.mp4"


@dataclass
class Run:
    pipeline: LocalPipeline
    mid_run_status: str
    mid_run_live_status: str
    mid_run_json: dict[str, Any]

    def flags(self) -> list[str]:
        settings = self.pipeline.settings
        return ["--table", settings.table_name, "--bus", settings.event_bus_name, "--bucket", settings.video_bucket]

    def secret_flags(self) -> list[str]:
        # Always the emulator: the default base URL is the real API, which tests must never reach.
        return [
            "--secret",
            self.pipeline.settings.twelvelabs_api_key_secret,
            "--base-url",
            self.pipeline.emulator.api_url,
        ]


def videobatch(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(list(argv)) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    # moto's backends are process-wide: a stack name of its own keeps this run apart from other pipelines.
    # MaxWaitSeconds 0: a batch is sent as soon as its items are queued, so two steps in there are open batches.
    with (
        tempfile.TemporaryDirectory() as workdir,
        LocalPipeline(parameter_overrides={"MaxWaitSeconds": "0"}, stack_name="opstest") as pipeline,
    ):
        for seed, key in enumerate(VIDEOS):
            path = samples.write_sample_video(Path(workdir) / f"{seed}.mp4", duration_seconds=10, seed=seed)
            pipeline.upload(key, path.read_bytes())
        pipeline.upload(NOT_A_VIDEO, samples.write_non_video(Path(workdir) / "notes.mp4").read_bytes())
        with redirect_stdout(io.StringIO()):  # the handlers' EMF lines
            pipeline.wiring.step()  # ingest: two assets processing, the non-video failed
            pipeline.clock.advance(60)
            pipeline.wiring.step()  # assets ready -> queued -> submitted in two batches (one per mode)
        settings = pipeline.settings
        flags = ["--table", settings.table_name, "--bus", settings.event_bus_name, "--bucket", settings.video_bucket]
        secret = ["--secret", settings.twelvelabs_api_key_secret, "--base-url", pipeline.emulator.api_url]
        mid = Run(
            pipeline,
            mid_run_status=run_cli("status", *flags),
            mid_run_live_status=run_cli("status", *flags, "--live", *secret),
            mid_run_json=json.loads(run_cli("status", *flags, "--json")),
        )
        pipeline.run_until_idle()
        yield mid


def count_of(status_text: str, state: str) -> int:
    match = re.search(rf"^  {re.escape(state)}\s+(\d+)", status_text, re.MULTILINE)
    assert match, status_text
    return int(match.group(1))


# --- status -----------------------------------------------------------------------------------------------------


def test_status_mid_run_names_the_states_and_the_open_batches(run: Run) -> None:
    text = run.mid_run_status
    assert count_of(text, "submitted") == 2
    for state in ("registered", "asset_processing", "queued (general)", "queued (time_based_metadata)", "claimed"):
        assert count_of(text, state) == 0
    assert re.search(r"oldest .* ago: videos/kitchen\.mp4|oldest .* ago: chapters/interview\.mp4", text)
    assert "open batches: 2" in text
    batches = list(run.pipeline.runtime.batches.iter_open())
    assert batches == []  # closed by the end of the run; the ids below come from the JSON taken mid-run
    ids = [batch["batch_id"] for batch in run.mid_run_json["open_batches"]]
    assert len(ids) == 2
    assert all(batch_id in text for batch_id in ids)
    assert "general" in text
    assert "time_based_metadata" in text


def test_status_json_mid_run(run: Run) -> None:
    states = {entry["state"]: entry for entry in run.mid_run_json["states"]}
    assert states["submitted"]["count"] == 2
    assert states["submitted"]["oldest_key"] in VIDEOS
    assert run.mid_run_json["claims_pending"] == 0
    checked_at = run.mid_run_json["checked_at"]
    for batch in run.mid_run_json["open_batches"]:
        assert batch["items"] == 1
        assert batch["requests"] == 1
        assert batch["api_status"] in {"pending", "processing"}
        # Ages are taken against the system clock (the local stack's clock is virtual).
        expires_in = datetime.fromisoformat(batch["expires_at"]) - datetime.fromisoformat(checked_at)
        assert batch["expires_in_seconds"] == round(expires_in.total_seconds(), 1)


def test_status_live_asks_twelvelabs(run: Run) -> None:
    assert "live:" in run.mid_run_live_status
    assert re.search(r"live: \d+ queued, \d+ processing, \d+ ready, 0 failed, 0 canceled", run.mid_run_live_status)


def test_status_after_the_run_shows_nothing_waiting(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = videobatch(capsys, "status", *run.flags())
    assert (code, err) == (0, "")
    for state in ("registered", "asset_processing", "queued (general)", "claimed", "submitted"):
        assert count_of(out, state) == 0
    assert "oldest queued item: none queued" in out
    assert "open batches: 0" in out


# --- item -------------------------------------------------------------------------------------------------------


def test_item_by_bucket_and_key_shows_the_result(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = videobatch(capsys, "item", f"{run.pipeline.bucket}/videos/kitchen.mp4", *run.flags())
    assert (code, err) == (0, "")
    assert re.search(r"^state\s+done$", out, re.MULTILINE)
    assert re.search(r"^attempts\s+1$", out, re.MULTILINE)
    assert re.search(r"^profile\s+summary \(general\)$", out, re.MULTILINE)
    assert re.search(r"^batch\s+[0-9a-f]{24}$", out, re.MULTILINE)
    assert re.search(r"^task\s+\S+ \([0-9a-f]{32}-a1-w0\)$", out, re.MULTILINE)
    result = re.search(r"^result\s+s3://(\S+?)/(\S+)$", out, re.MULTILINE)
    assert result
    document = json.loads(run.pipeline.read_result(result.group(2)))
    assert document["source"]["key"] == "videos/kitchen.mp4"


def test_item_of_a_non_video_shows_the_failure(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = videobatch(capsys, "item", f"s3://{run.pipeline.bucket}/{NOT_A_VIDEO}", *run.flags())
    assert code == 0
    assert re.search(r"^state\s+failed$", out, re.MULTILINE)
    assert re.search(r"^failure\s+not_a_video_content: .+", out, re.MULTILINE)
    assert re.search(r"^attempts\s+0$", out, re.MULTILINE)


def test_item_by_id_and_version(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    item = next(item for item in run.pipeline.items() if item.key == "chapters/interview.mp4")
    code, by_id, _ = videobatch(capsys, "item", item.item_id, *run.flags())
    assert code == 0
    assert re.search(r"^profile\s+chapters \(time_based_metadata\)$", by_id, re.MULTILINE)
    assert item.version_id
    assert item.item_id == item_id_for(item.bucket, item.key, item.version_id)
    target = f"{item.bucket}/{item.key}"
    code, by_version, _ = videobatch(capsys, "item", target, "--version-id", item.version_id, *run.flags())
    assert (code, by_version) == (0, by_id)
    code, as_json, _ = videobatch(capsys, "item", item.item_id, "--json", *run.flags())
    assert ItemRecord.model_validate_json(as_json) == item


def test_item_not_found_and_bad_targets(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = videobatch(capsys, "item", f"{run.pipeline.bucket}/videos/never-uploaded.mp4", *run.flags())
    assert (code, out) == (ops.EXIT_NOT_FOUND, "")
    assert "no item" in err
    old = f"{run.pipeline.bucket}/videos/kitchen.mp4"
    code, _, err = videobatch(capsys, "item", old, "--version-id", "v-unknown", *run.flags())
    assert code == ops.EXIT_NOT_FOUND
    code, _, err = videobatch(capsys, "item", "no-slash", *run.flags())
    assert code == ops.EXIT_ERROR
    assert "neither an item id" in err
    code, _, err = videobatch(capsys, "item", "0" * 32)
    assert code == ops.EXIT_ERROR
    assert "TABLE_NAME is unknown: pass --stack NAME or --table" in err


# --- sweep ------------------------------------------------------------------------------------------------------


def stuck_item(pipeline: LocalPipeline, key: str) -> ItemRecord:
    """An item left ``registered`` long ago, as ingest leaves one whose asset could never be created."""
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    record = ItemRecord(
        item_id=item_id_for(pipeline.bucket, key, None),
        bucket=pipeline.bucket,
        key=key,
        size_bytes=1000,
        profile_name="summary",
        state=ItemState.REGISTERED,
        created_at=long_ago,
        updated_at=long_ago,
    )
    stored, created = pipeline.runtime.items.create(record)
    assert created
    return stored


def test_sweep_with_flags_fails_a_stuck_item(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    stuck = stuck_item(run.pipeline, "videos/stuck-by-flags.mp4")
    code, status, _ = videobatch(capsys, "status", *run.flags())
    assert count_of(status, "registered") == 1
    code, out, err = videobatch(capsys, "sweep", *run.flags(), *run.secret_flags())
    assert (code, err) == (0, "")
    assert re.search(r"^  ingest_incomplete\s+1$", out, re.MULTILINE)
    assert re.search(r"^  metric ItemsFailed\s+1$", out, re.MULTILINE)
    code, item, _ = videobatch(capsys, "item", stuck.item_id, *run.flags())
    assert re.search(r"^state\s+failed$", item, re.MULTILINE)
    assert re.search(r"^failure\s+ingest_incomplete: no TwelveLabs asset could be created", item, re.MULTILINE)
    code, again, _ = videobatch(capsys, "sweep", *run.flags(), *run.secret_flags(), "--json")
    assert json.loads(again)["summary"]["ingest_incomplete"] == 0


def test_sweep_needs_the_secret(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = videobatch(capsys, "sweep", *run.flags())
    assert code == ops.EXIT_ERROR
    assert "TWELVELABS_API_KEY_SECRET is unknown: pass --stack NAME or --secret" in err


def test_set_overrides_a_setting(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    stuck_item(run.pipeline, "videos/stuck-but-young.mp4")
    # Ten years of patience: the item is not stuck yet.
    ten_years = f"ASSET_TIMEOUT_SECONDS={10 * 365 * 86400}"
    code, out, _ = videobatch(capsys, "sweep", *run.flags(), *run.secret_flags(), "--set", ten_years, "--json")
    assert code == 0
    assert json.loads(out)["summary"]["ingest_incomplete"] == 0
    code, _, err = videobatch(capsys, "sweep", *run.flags(), *run.secret_flags(), "--set", "MAX_ATTEMPTS=0")
    assert code == ops.EXIT_ERROR
    assert "MAX_ATTEMPTS" in err
    code, out, _ = videobatch(capsys, "sweep", *run.flags(), *run.secret_flags(), "--json")
    assert json.loads(out)["summary"]["ingest_incomplete"] == 1


# --- --stack ----------------------------------------------------------------------------------------------------


def deploy_stand_in_stack(pipeline: LocalPipeline, name: str) -> None:
    """A CloudFormation stack in moto shaped like the deployed one: its outputs and parameters name the local
    pipeline's resources, and its SweeperFunction carries the environment the template gives every function."""
    resources = pipeline.stack.resources
    outputs = {
        "VideoBucketName": pipeline.bucket,
        "ItemsTableName": pipeline.settings.table_name,
        "EventBusName": pipeline.settings.event_bus_name,
        "ApiKeySecretArn": pipeline.settings.twelvelabs_api_key_secret,
        "ExpiryScheduleGroupName": resources["ExpiryScheduleGroup"].ref,
    }
    settings_names = {field.upper() for field in Settings.model_fields}
    environment = {k: v for k, v in pipeline.stack.env("SweeperFunction").items() if k in settings_names}
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    template = {
        "Parameters": {"TwelveLabsBaseUrl": {"Type": "String"}, "ResultsPrefix": {"Type": "String"}},
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}},
            "SweeperFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.13",
                    "Handler": "sweeper_handler.handler",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Code": {"ZipFile": "def handler(event, context):\n    return {}\n"},
                    "Environment": {"Variables": environment},
                },
            },
        },
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    parameters = [
        {"ParameterKey": "TwelveLabsBaseUrl", "ParameterValue": pipeline.emulator.api_url},
        {"ParameterKey": "ResultsPrefix", "ParameterValue": "results/"},
    ]
    pipeline.moto.client("cloudformation").create_stack(
        StackName=name, TemplateBody=json.dumps(template), Parameters=parameters, Capabilities=["CAPABILITY_IAM"]
    )


def test_stack_outputs_and_the_sweeper_environment(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    deploy_stand_in_stack(run.pipeline, "videobatch-prod")
    code, out, err = videobatch(capsys, "status", "--stack", "videobatch-prod")
    assert (code, err) == (0, "")
    assert f"table {run.pipeline.settings.table_name}" in out
    code, out, _ = videobatch(capsys, "item", f"{run.pipeline.bucket}/videos/kitchen.mp4", "--stack", "videobatch-prod")
    assert re.search(r"^state\s+done$", out, re.MULTILINE)
    stuck = stuck_item(run.pipeline, "videos/stuck-by-stack.mp4")
    code, out, err = videobatch(capsys, "sweep", "--stack", "videobatch-prod", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["summary"]["ingest_incomplete"] >= 1
    assert run.pipeline.runtime.items.get(stuck.item_id).state is ItemState.FAILED  # type: ignore[union-attr]


def test_unknown_stack(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = videobatch(capsys, "status", "--stack", "no-such-stack")
    assert code == ops.EXIT_ERROR
    assert "stack no-such-stack" in err


# --- resolution (pure) ------------------------------------------------------------------------------------------


def test_flags_override_the_stack_and_set_overrides_everything() -> None:
    location = ops.merge_location(
        outputs={"ItemsTableName": "from-stack", "EventBusName": "bus", "VideoBucketName": "bucket"},
        parameters={"TwelveLabsBaseUrl": "https://api.example/v1.3", "ResultsPrefix": "out/"},
        function_environment={"TABLE_NAME": "from-function", "MAX_ATTEMPTS": "3"},
        flags={"table": "from-flag", "bus": None},
        overrides=["max_attempts=9"],
    )
    assert location.environment["TABLE_NAME"] == "from-flag"
    assert location.environment["EVENT_BUS_NAME"] == "bus"
    assert location.environment["TWELVELABS_BASE_URL"] == "https://api.example/v1.3"
    assert location.environment["RESULTS_PREFIX"] == "out/"
    assert location.environment["MAX_ATTEMPTS"] == "9"
    with pytest.raises(ops.OpsError, match="NAME=VALUE"):
        ops.merge_location(overrides=["MAX_ATTEMPTS"])


def test_parse_target() -> None:
    assert ops.parse_target("a" * 32) == "a" * 32
    assert ops.parse_target("s3://bucket/dir/file.mp4") == ("bucket", "dir/file.mp4")
    assert ops.parse_target("bucket/file.mp4") == ("bucket", "file.mp4")
    with pytest.raises(ops.OpsError):
        ops.parse_target("bucket/")
