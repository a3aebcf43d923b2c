"""The operators' CLI seeing a pipeline: ``status``, ``items``, ``item``, ``sweep``, their flags, and the common
machinery (resolution, errors, exit codes, help), against the local stack after a real run.

Two videos and one non-video go through the real handlers on LocalPipeline (moto server + emulator). The stack is
published to CloudFormation in moto, so the commands find it by ``--stack`` (``tests/ops/support.py``).
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from videobatch.domain.items import ItemState, item_id_for
from videobatch.domain.records import ItemRecord
from videobatch_ops import cli, package_version
from videobatch_ops.common import EXIT_ERROR, EXIT_NOT_FOUND, OpsError, merge_location, parse_since
from videobatch_ops.items import parse_target
from videobatch_tools import samples
from videobatch_tools.localstack.pipeline import LocalPipeline

from .support import Ops, faults

pytestmark = pytest.mark.integration

VIDEOS = ("videos/kitchen.mp4", "chapters/interview.mp4")
NOT_A_VIDEO = "videos/notes.mp4"


@dataclass
class Run:
    ops: Ops
    mid_run_status: str
    mid_run_live_status: str
    mid_run_json: dict[str, Any]

    @property
    def pipeline(self) -> LocalPipeline:
        return self.ops.pipeline


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    # moto's backends are process-wide: a stack name of its own keeps this run apart from other pipelines.
    # MaxWaitSeconds 0: a batch is sent as soon as its items are queued, so two steps in there are open batches.
    with (
        tempfile.TemporaryDirectory() as workdir,
        LocalPipeline(parameter_overrides={"MaxWaitSeconds": "0"}, stack_name="opstest") as pipeline,
    ):
        ops = Ops(pipeline)
        for seed, key in enumerate(VIDEOS):
            path = samples.write_sample_video(Path(workdir) / f"{seed}.mp4", duration_seconds=10, seed=seed)
            pipeline.upload(key, path.read_bytes())
        pipeline.upload(NOT_A_VIDEO, samples.write_non_video(Path(workdir) / "notes.mp4").read_bytes())
        ops.quiet_step()  # ingest: two assets processing, the non-video failed
        pipeline.clock.advance(60)
        ops.quiet_step()  # assets ready -> queued -> submitted in two batches (one per mode)
        mid = Run(
            ops,
            mid_run_status=ops.ok("status").out,
            mid_run_live_status=ops.ok("status", "--live").out,
            mid_run_json=ops.ok("status", "--json").json(),
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
    assert "pipeline: running" in text
    assert count_of(text, "submitted") == 2
    for state in ("registered", "asset_processing", "queued (general)", "queued (time_based_metadata)", "claimed"):
        assert count_of(text, state) == 0
    assert count_of(text, "failed (last 90 days)") == 1  # the non-video, counted when it failed
    assert re.search(r"submitted\s+2\s+\S+ \((videos/kitchen|chapters/interview)\.mp4", text)
    assert "open batches: 2" in text
    ids = [batch["batch_id"] for batch in run.mid_run_json["open_batches"]]
    assert len(ids) == 2
    assert all(batch_id in text for batch_id in ids)
    assert "general" in text
    assert "time_based_metadata" in text


def test_status_json_mid_run(run: Run) -> None:
    status = run.mid_run_json
    states = {entry["state"]: entry for entry in status["states"]}
    assert states["submitted"]["count"] == 2
    assert states["submitted"]["oldest_key"] in VIDEOS
    assert (states["done"]["count"], states["failed"]["count"], states["failed"]["user"]) == (0, 1, 1)
    assert status["totals"] == {"done": 0, "failed": 1, "backlog": 2}
    assert status["claims_pending"] == 0
    assert status["paused"]["paused"] is False
    for batch in status["open_batches"]:
        assert (batch["items"], batch["requests"], batch["progress"]) == (1, 1, 0.0)
        assert batch["api_status"] in {"pending", "processing"}
        expires_in = datetime.fromisoformat(batch["expires_at"]) - datetime.fromisoformat(status["checked_at"])
        assert batch["expires_in_seconds"] == round(expires_in.total_seconds(), 1)


def test_status_live_asks_twelvelabs(run: Run) -> None:
    assert re.search(r"live: \d+ queued, \d+ processing, \d+ ready, 0 failed, 0 canceled", run.mid_run_live_status)


def test_status_after_the_run_counts_done_and_failed_throughput_and_usage(run: Run) -> None:
    result = run.ops.ok("status")
    for state in ("registered", "asset_processing", "queued (general)", "claimed", "submitted"):
        assert count_of(result.out, state) == 0
    assert count_of(result.out, "done (last 90 days)") == 2
    assert "oldest queued item: none queued" in result.out
    assert "open batches: 0" in result.out
    assert "ETA 0m00s" in result.out
    status = run.ops.status()
    assert status["totals"] == {"done": 2, "failed": 1, "backlog": 0}
    assert status["throughput"]["last_hour"]["done"] == 2
    assert status["throughput"]["last_day"]["failed"] == 1
    today = status["usage_per_day"][0]
    assert today["day"] == run.pipeline.clock.now().date().isoformat()
    assert (today["done"], today["failed"], today["windows"]) == (2, 1, 2)
    assert today["content_seconds"] == pytest.approx(20, abs=1)
    assert today["output_tokens"] > 0
    assert len(status["usage_per_day"]) == 7
    assert len(run.ops.ok("status", "--json", "--days", "2").json()["usage_per_day"]) == 2


def test_status_refuses_a_bad_days(run: Run) -> None:
    for bad in ("0", "91", "many"):
        result = run.ops.run("status", "--days", bad)
        assert result.code == EXIT_ERROR
        assert "--days" in result.err


# --- items ------------------------------------------------------------------------------------------------------


def test_items_lists_done_and_failed_from_the_journal(run: Run) -> None:
    done = run.ops.ok("items", "--state", "done", "--json").json()
    assert sorted(item["key"] for item in done["items"]) == sorted(VIDEOS)
    assert done["next_page_token"] is None
    failed = run.ops.ok("items", "--state", "failed", "--code", "not_a_video_content", "--json").json()
    assert [item["key"] for item in failed["items"]] == [NOT_A_VIDEO]
    assert failed["items"][0]["failure_code"] == "not_a_video_content"
    text = run.ops.ok("items", "--state", "done", "--prefix", "chapters/").out
    assert "chapters/interview.mp4" in text
    assert "videos/kitchen.mp4" not in text


def test_items_pages_with_a_token(run: Run) -> None:
    first = run.ops.ok("items", "--state", "done", "--limit", "1", "--json").json()
    assert first["count"] == 1
    token = first["next_page_token"]
    assert token
    second = run.ops.ok("items", "--state", "done", "--limit", "1", "--page-token", token, "--json").json()
    assert second["count"] == 1
    assert second["next_page_token"] is None
    assert {first["items"][0]["key"], second["items"][0]["key"]} == set(VIDEOS)
    text = run.ops.ok("items", "--state", "done", "--limit", "1").out
    assert f"more: --page-token {token}" in text


def test_items_nothing_matching_is_exit_1(run: Run) -> None:
    result = run.ops.run("items", "--state", "queued")
    assert (result.code, result.out) == (EXIT_NOT_FOUND, "no queued items match\n")
    assert run.ops.run("items", "--state", "failed", "--code", "no_such_code").code == EXIT_NOT_FOUND
    assert run.ops.run("items", "--state", "done", "--since", "1m").code == EXIT_NOT_FOUND


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--state", "done", "--code", "x"), "--code filters failed items only"),
        (("--state", "failed", "--since", "yesterday"), "is neither a duration"),
        (("--state", "failed", "--since", "2999-01-01"), "in the future"),
        (("--state", "failed", "--prefix", ""), "--prefix is empty"),
        (("--state", "failed", "--page-token", "not-a-token"), "not a token this command printed"),
        (("--state", "failed", "--limit", "0"), "--limit must be 1..1000"),
        (("--state", "gone"), "invalid choice"),
    ],
)
def test_items_malformed_filters_are_exit_2(run: Run, argv: tuple[str, ...], message: str) -> None:
    result = run.ops.run("items", *argv)
    assert (result.code, result.out) == (EXIT_ERROR, "")
    assert message in result.err


# --- item -------------------------------------------------------------------------------------------------------


def test_item_by_bucket_and_key_shows_the_result(run: Run) -> None:
    result = run.ops.ok("item", f"{run.pipeline.bucket}/videos/kitchen.mp4")
    out = result.out
    assert re.search(r"^state\s+done$", out, re.MULTILINE)
    assert re.search(r"^attempts\s+1$", out, re.MULTILINE)
    assert re.search(r"^profile\s+summary \(general\)$", out, re.MULTILINE)
    assert re.search(r"^batch\s+[0-9a-f]{24}$", out, re.MULTILINE)
    assert re.search(r"^task\s+\S+ \([0-9a-f]{32}-a1-w0\)$", out, re.MULTILINE)
    found = re.search(r"^result\s+s3://(\S+?)/(\S+)$", out, re.MULTILINE)
    assert found
    document = run.pipeline.read_result(found.group(2))
    assert b'"key":"videos/kitchen.mp4"' in document


def test_item_of_a_non_video_shows_the_failure(run: Run) -> None:
    out = run.ops.ok("item", f"s3://{run.pipeline.bucket}/{NOT_A_VIDEO}").out
    assert re.search(r"^state\s+failed$", out, re.MULTILINE)
    assert re.search(r"^failure\s+not_a_video_content: .+", out, re.MULTILINE)
    assert re.search(r"^attempts\s+0$", out, re.MULTILINE)


def test_item_by_id_and_version(run: Run) -> None:
    item = next(item for item in run.pipeline.items() if item.key == "chapters/interview.mp4")
    by_id = run.ops.ok("item", item.item_id).out
    assert re.search(r"^profile\s+chapters \(time_based_metadata\)$", by_id, re.MULTILINE)
    assert item.version_id
    assert item.item_id == item_id_for(item.bucket, item.key, item.version_id)
    by_version = run.ops.ok("item", f"{item.bucket}/{item.key}", "--version-id", item.version_id).out
    assert by_version == by_id
    as_json = run.ops.ok("item", item.item_id, "--json").out
    assert ItemRecord.model_validate_json(as_json) == item


def test_item_not_found_and_bad_targets(run: Run) -> None:
    result = run.ops.run("item", f"{run.pipeline.bucket}/videos/never-uploaded.mp4")
    assert (result.code, result.out) == (EXIT_NOT_FOUND, "")
    assert "no item" in result.err
    old = f"{run.pipeline.bucket}/videos/kitchen.mp4"
    assert run.ops.run("item", old, "--version-id", "v-unknown").code == EXIT_NOT_FOUND
    assert run.ops.run("item", old, "--analysis-profile", "chapters").code == EXIT_NOT_FOUND  # never reprocessed
    result = run.ops.run("item", "no-slash")
    assert result.code == EXIT_ERROR
    assert "neither an item id" in result.err
    result = run.ops.run("item", "0" * 32, "--no-stack")
    assert result.code == EXIT_ERROR
    assert "TABLE_NAME is unknown: pass --stack NAME or --table" in result.err


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


def test_sweep_invokes_the_deployed_function(run: Run) -> None:
    stuck = stuck_item(run.pipeline, "videos/stuck-by-invoke.mp4")
    assert run.ops.counts()["registered"] == 1
    result = run.ops.ok("sweep")
    assert re.search(r"^swept by function opstest-SweeperFunction$", result.out, re.MULTILINE)
    assert re.search(r"^  ingest_incomplete\s+1$", result.out, re.MULTILINE)
    item = run.ops.ok("item", stuck.item_id).out
    assert re.search(r"^state\s+failed$", item, re.MULTILINE)
    assert re.search(r"^failure\s+ingest_incomplete: no TwelveLabs asset could be created", item, re.MULTILINE)
    # The function's own invocation: the wiring ran the handler with its environment, as Lambda does.
    assert run.pipeline.wiring.invocations[-1].source == "lambda:Invoke"
    again = run.ops.ok("sweep", "--json").json()
    assert again["function"] == "opstest-SweeperFunction"
    assert again["summary"]["ingest_incomplete"] == 0
    assert run.ops.ok("sweep", "--no-stack", "--sweeper-function", "opstest-SweeperFunction").code == 0


def test_a_failing_sweeper_function_is_exit_2_with_its_error(run: Run) -> None:
    # A day later the sweep lists TwelveLabs' assets (its daily orphan pass), and TwelveLabs refuses the key.
    run.pipeline.clock.advance(86_400)
    faults(run.pipeline, {"endpoint": "GET /assets", "status": 401, "code": "api_key_invalid"})
    try:
        result = run.ops.run("sweep")
    finally:
        faults(run.pipeline)
    assert result.code == EXIT_ERROR
    assert "the sweeper function opstest-SweeperFunction failed: AuthenticationError" in result.err
    assert run.pipeline.wiring.invocations[-1].error is not None
    assert run.ops.ok("sweep", "--json").json()["summary"]["orphan_assets_deleted"] == 0


def test_sweep_local_runs_here_with_the_functions_settings(run: Run) -> None:
    stuck_item(run.pipeline, "videos/stuck-but-young.mp4")
    ten_years = f"ASSET_TIMEOUT_SECONDS={10 * 365 * 86400}"
    out = run.ops.ok("sweep", "--local", "--set", ten_years, "--json").json()
    assert out["summary"]["ingest_incomplete"] == 0  # ten years of patience: not stuck yet
    result = run.ops.run("sweep", "--local", "--set", "MAX_ATTEMPTS=0")
    assert result.code == EXIT_ERROR
    assert "MAX_ATTEMPTS" in result.err
    text = run.ops.ok("sweep", "--local").out
    assert re.search(r"^  ingest_incomplete\s+1$", text, re.MULTILINE)
    assert re.search(r"^  metric ItemsFailed\s+1$", text, re.MULTILINE)
    result = run.ops.run("sweep", "--set", ten_years)
    assert result.code == EXIT_ERROR
    assert "add --local" in result.err


def test_sweep_without_a_function_or_a_secret(run: Run) -> None:
    result = run.ops.run("sweep", "--no-stack", "--table", run.pipeline.settings.table_name)
    assert result.code == EXIT_ERROR
    assert "SWEEPER_FUNCTION is unknown" in result.err
    result = run.ops.run("sweep", "--local", "--no-stack", "--table", "t", "--bus", "b", "--bucket", "v")
    assert result.code == EXIT_ERROR
    assert "TWELVELABS_API_KEY_SECRET is unknown: pass --stack NAME or --secret" in result.err


# --- where, who, how ---------------------------------------------------------------------------------------------


def test_unknown_stack_and_unknown_aws_profile(run: Run) -> None:
    result = run.ops.run("status", "--stack", "no-such-stack")
    assert result.code == EXIT_ERROR
    assert "stack no-such-stack" in result.err
    result = run.ops.run("status", "--profile", "nobody")
    assert result.code == EXIT_ERROR
    assert "AWS profile 'nobody' is not configured" in result.err
    assert run.ops.run("status", "--aws-profile", "nobody").code == EXIT_ERROR


def test_flags_override_the_stack(run: Run) -> None:
    table = run.pipeline.settings.table_name
    result = run.ops.run("status", "--table", "no-such-table")
    assert result.code == EXIT_ERROR
    assert "ResourceNotFoundException" in result.err
    assert f"table {table}" in run.ops.ok("status", "--no-stack", "--table", table).out


def every_subparser() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


OPS_COMMANDS = (
    "status",
    "items",
    "item",
    "requeue",
    "reprocess",
    "pause",
    "resume",
    "cancel-batch",
    "redrive",
    "backfill",
    "sweep",
)


def test_every_ops_command_takes_the_common_flags_and_every_flag_has_help() -> None:
    parsers = every_subparser()
    assert set(OPS_COMMANDS) <= set(parsers)
    assert {"emulator", "demo", "simulate"} <= set(parsers)  # the dev tools, registered beside them
    for name in OPS_COMMANDS:
        options = {o for action in parsers[name]._actions for o in action.option_strings}
        assert {"--stack", "--region", "--profile", "--aws-profile", "--json", "--version"} <= options, name
        for action in parsers[name]._actions:
            assert action.help, f"{name} {action.dest} has no help"
            assert action.help != argparse.SUPPRESS, f"{name} {action.dest} has no help"


@pytest.mark.parametrize("argv", [("--version",), ("status", "--version"), ("requeue", "--version")])
def test_version(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(argv))
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"videobatch {package_version()}"


# --- resolution (pure) ------------------------------------------------------------------------------------------


def test_flags_override_the_stack_and_set_overrides_everything() -> None:
    location = merge_location(
        outputs={"ItemsTableName": "from-stack", "EventBusName": "bus", "IngestQueueUrl": "https://q"},
        parameters={"TwelveLabsBaseUrl": "https://api.example/v1.3", "ResultsPrefix": "out/"},
        function_environment={"TABLE_NAME": "from-function", "MAX_ATTEMPTS": "3"},
        flags={"table": "from-flag", "bus": None},
        overrides=["max_attempts=9"],
    )
    assert location.environment["TABLE_NAME"] == "from-flag"
    assert location.environment["EVENT_BUS_NAME"] == "bus"
    assert location.environment["INGEST_QUEUE_URL"] == "https://q"
    assert location.environment["TWELVELABS_BASE_URL"] == "https://api.example/v1.3"
    assert location.environment["RESULTS_PREFIX"] == "out/"
    assert location.environment["MAX_ATTEMPTS"] == "9"
    with pytest.raises(OpsError, match="NAME=VALUE"):
        merge_location(overrides=["MAX_ATTEMPTS"])


def test_parse_target_and_since() -> None:
    assert parse_target("a" * 32) == "a" * 32
    assert parse_target("s3://bucket/dir/file.mp4") == ("bucket", "dir/file.mp4")
    assert parse_target("bucket/file.mp4") == ("bucket", "file.mp4")
    with pytest.raises(OpsError):
        parse_target("bucket/")
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert parse_since("90m", now) == datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
    assert parse_since("2d", now) == datetime(2026, 1, 3, 12, tzinfo=UTC)
    assert parse_since("2026-01-04", now) == datetime(2026, 1, 4, tzinfo=UTC)
    assert parse_since("2026-01-04T10:00:00+02:00", now) == datetime(2026, 1, 4, 8, tzinfo=UTC)
    assert parse_since(None, now) is None


# --- --api-url / --api-key-file ---------------------------------------------------------------------------------


def test_commands_that_talk_to_twelvelabs_take_the_key_from_a_file(run: Run, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(run.pipeline.api_key + "\n")
    api = ["--api-url", run.pipeline.api_url, "--api-key-file", str(key_file)]
    swept = run.ops.run("sweep", "--local", "--json", *api)
    assert swept.code == 0, swept
    assert run.pipeline.api_key not in swept.out + swept.err
    # A key file that is not there, or empty: one clear line, nothing run.
    for content, message in ((None, "no such file"), ("", "the file is empty")):
        broken = tmp_path / f"broken-{message.split()[-1]}"
        if content is not None:
            broken.write_text(content)
        result = run.ops.run("sweep", "--local", "--api-key-file", str(broken))
        assert result.code == EXIT_ERROR
        assert f"--api-key-file {broken}: {message}" in result.err
        assert result.out == ""
