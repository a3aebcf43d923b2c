"""What goes into ingest besides uploads, against the local stack: ``backfill`` (objects already in the bucket),
``redrive`` (the dead-letter queue), ``reprocess`` (done videos with another profile) and S3 "Object Deleted"."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from videobatch.domain.items import ItemState, item_id_for
from videobatch.domain.records import ItemRecord
from videobatch.domain.results import latest_pointer_key, result_key
from videobatch.domain.upload_events import object_created_event
from videobatch_ops.common import EXIT_ERROR, EXIT_NOT_FOUND
from videobatch_tools import samples
from videobatch_tools.localstack.pipeline import LocalPipeline

from .support import Ops, batches_per_custom_id

pytestmark = pytest.mark.integration

# Keys as people name files: a space, a plus, non-ASCII (S3 URL-encodes them in its events; so does backfill).
OLD = ("old/a.mp4", "old/my video+1.mp4", "old/café.mp4")


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as path:
        yield Path(path)


@pytest.fixture(scope="module")
def ops(workdir: Path) -> Iterator[Ops]:
    with LocalPipeline(parameter_overrides={"MaxWaitSeconds": "0"}, stack_name="opsin") as pipeline:
        ops = Ops(pipeline)
        for seed, key in enumerate(OLD):
            pipeline.upload(key, video(workdir, seed).read_bytes())
        pipeline.upload("old/a.mp4", video(workdir, 9).read_bytes())  # a second version: the latest is this one
        pipeline.upload("old/notes.mp4", samples.write_non_video(workdir / "notes.mp4").read_bytes())
        pipeline.upload("other/b.mp4", video(workdir, 4).read_bytes())
        # Uploaded before the stack watched the bucket: no event ever reached ingest.
        pipeline.moto.s3_notifications.drain()
        yield ops


def video(workdir: Path, seed: int) -> Path:
    path = workdir / f"{seed}.mp4"
    return path if path.exists() else samples.write_sample_video(path, duration_seconds=5, seed=seed)


def by_key(ops: Ops) -> dict[str, list[ItemRecord]]:
    found: dict[str, list[ItemRecord]] = {}
    for item in ops.pipeline.items():
        found.setdefault(item.key, []).append(item)
    return found


# --- backfill ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "extra", "message"),
    [
        ("s3://someone-elses-bucket/old/", (), "is not this stack's video bucket"),
        ("s3://{bucket}/", (), "has an empty prefix"),
        ("s3://{bucket}", (), "has an empty prefix"),
        ("s3:///old/", (), "is not s3://BUCKET/PREFIX"),
        ("s3://{bucket}/old/", ("--rate", "0"), "--rate must be"),
        ("s3://{bucket}/old/", (), "pass --yes"),  # four objects, no terminal to confirm on
    ],
)
def test_backfill_bad_input_is_exit_2_and_sends_nothing(
    ops: Ops, uri: str, extra: tuple[str, ...], message: str
) -> None:
    result = ops.run("backfill", uri.format(bucket=ops.pipeline.bucket), *extra)
    assert (result.code, result.out) == (EXIT_ERROR, "")
    assert message in result.err
    assert by_key(ops) == {}


def test_backfill_sends_the_latest_versions_through_ingest_once(ops: Ops) -> None:
    bucket = ops.pipeline.bucket
    dry = ops.ok("backfill", f"s3://{bucket}/old/", "--dry-run", "--json").json()
    assert (dry["listed"], dry["known"], dry["to_send"], dry["sent"]) == (4, 0, 4, 0)
    assert by_key(ops) == {}
    sent = ops.ok("backfill", f"s3://{bucket}/old/", "--yes", "--json").json()
    assert (sent["sent"], sent["dry_run"]) == (4, False)
    queue = ops.pipeline.stack.outputs["IngestQueueUrl"]
    attributes = ops.pipeline.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "4"  # on the ingest queue, as uploads' events are
    ops.pipeline.run_until_idle()
    items = by_key(ops)
    assert sorted(items) == sorted([*OLD, "old/notes.mp4"])  # not other/: outside the prefix
    assert all(len(versions) == 1 for versions in items.values())  # old/a.mp4: its latest version only
    assert {items[key][0].state for key in OLD} == {ItemState.DONE}
    assert items["old/notes.mp4"][0].failure.code == "not_a_video_content"  # type: ignore[union-attr]
    again = ops.ok("backfill", f"s3://{bucket}/old/", "--yes", "--json").json()
    assert (again["listed"], again["known"], again["sent"]) == (4, 4, 0)
    text = ops.ok("backfill", f"s3://{bucket}/old/", "--yes").out
    assert "4 objects listed, 4 ingested already, 0 sent to ingest" in text
    everything = ops.ok("backfill", f"s3://{bucket}/old/a", "--all-versions", "--yes", "--json").json()
    assert (everything["listed"], everything["sent"]) == (2, 1)  # the older version of old/a.mp4
    ops.pipeline.run_until_idle()
    assert [i.state for i in by_key(ops)["old/a.mp4"]] == [ItemState.DONE, ItemState.DONE]
    assert ops.run("backfill", f"s3://{bucket}/nothing-here/", "--yes").code == EXIT_NOT_FOUND
    assert set(batches_per_custom_id(ops.pipeline).values()) == {1}


# --- redrive ----------------------------------------------------------------------------------------------------


def test_redrive_moves_the_dead_letter_queue_back_to_ingest(ops: Ops, workdir: Path) -> None:
    pipeline = ops.pipeline
    for bad, message in (
        (("--max-per-second", "0"), "--max-per-second must be"),
        (("--wait-seconds", "-1"), "must not"),
    ):
        result = ops.run("redrive", *bad, "--yes")
        assert (result.code, result.out) == (EXIT_ERROR, "")
        assert message in result.err
    empty = ops.run("redrive", "--yes")
    assert empty.code == EXIT_NOT_FOUND
    assert "the dead-letter queue is empty" in empty.err
    # Two upload events ingest gave up on (they reached the dead-letter queue), for objects still in the bucket.
    sqs, outputs = pipeline.client("sqs"), pipeline.stack.outputs
    for n in range(2):
        key = f"dead/{n}.mp4"
        version = pipeline.upload(key, video(workdir, 5 + n).read_bytes())
        size = len(video(workdir, 5 + n).read_bytes())
        event = object_created_event(
            bucket=pipeline.bucket,
            key=key,
            version_id=version,
            size_bytes=size,
            etag=None,
            account="123456789012",
            region="us-east-1",
            now=pipeline.clock.now(),
        )
        sqs.send_message(QueueUrl=outputs["IngestDeadLetterQueueUrl"], MessageBody=json.dumps(event))
    pipeline.moto.s3_notifications.drain()
    dry = ops.ok("redrive", "--dry-run", "--json").json()
    assert (dry["messages_waiting"], dry["started"], dry["task"]) == (2, False, None)
    assert ops.run("redrive").code == EXIT_ERROR  # two messages, no --yes
    moved = ops.ok("redrive", "--yes", "--json").json()
    assert moved["started"] is True
    assert (moved["task"]["Status"], moved["task"]["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 2)
    pipeline.run_until_idle()
    assert {i[0].state for k, i in by_key(ops).items() if k.startswith("dead/")} == {ItemState.DONE}
    assert ops.run("redrive", "--yes").code == EXIT_NOT_FOUND


# --- reprocess --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--prefix", "old/", "--analysis-profile", "nonesuch"), "no profile named 'nonesuch'"),
        (("--prefix", "", "--analysis-profile", "chapters"), "--prefix is empty"),
        (("s3://someone-elses-bucket/old/a.mp4", "--analysis-profile", "chapters"), "this stack ingests"),
        (("--prefix", "old/"), "required: --analysis-profile"),
    ],
)
def test_reprocess_bad_input_is_exit_2(ops: Ops, argv: tuple[str, ...], message: str) -> None:
    result = ops.run("reprocess", *argv, "--yes")
    assert (result.code, result.out) == (EXIT_ERROR, "")
    assert message in result.err


def test_reprocess_analyses_done_videos_again_and_keeps_both_results(ops: Ops) -> None:
    pipeline = ops.pipeline
    bucket = pipeline.bucket
    ops.ok("backfill", f"s3://{bucket}/old/", "--yes")  # idempotent: the videos are there (and done)
    pipeline.run_until_idle()
    originals = {key: by_key(ops)[key] for key in OLD}
    plan = ops.ok("reprocess", "--prefix", "old/", "--analysis-profile", "chapters", "--dry-run", "--json").json()
    actions = {row["key"]: row["action"] for row in plan["plan"]}
    assert {actions[key] for key in OLD} == {"send"}
    assert actions["old/notes.mp4"] == "not done (failed)"
    sent = ops.ok("reprocess", "--prefix", "old/", "--analysis-profile", "chapters", "--yes", "--json").json()
    assert sent["sent"] == len(OLD)
    pipeline.run_until_idle()
    for key in OLD:
        (original,) = [i for i in originals[key] if i.state is ItemState.DONE and i.version_id == latest(ops, key)]
        again = pipeline.runtime.items.get(item_id_for(bucket, key, original.version_id, "chapters"))
        assert again is not None
        assert (again.state, again.profile_name, again.profile_pinned) == (ItemState.DONE, "chapters", True)
        assert again.result_key == result_key("results/", key, original.version_id, "chapters")
        assert again.result_key != original.result_key
        document = json.loads(pipeline.read_result(again.result_key))
        assert (document["profile"], document["analysis_mode"]) == ("chapters", "time_based_metadata")
        assert json.loads(pipeline.read_result(original.result_key or ""))["profile"] == "summary"  # still there
        pointer = json.loads(pipeline.read_result(latest_pointer_key("results/", key, "chapters")))
        assert pointer["result_s3_uri"] == f"s3://{bucket}/{again.result_key}"
        default = json.loads(pipeline.read_result(latest_pointer_key("results/", key)))
        assert default["result_s3_uri"] == f"s3://{bucket}/{original.result_key}"
    shown = ops.ok("item", f"{bucket}/old/café.mp4", "--analysis-profile", "chapters").out
    assert "chapters (time_based_metadata), pinned by reprocess" in shown
    twice = ops.run("reprocess", "--prefix", "old/", "--analysis-profile", "chapters", "--yes", "--json")
    assert twice.code == EXIT_NOT_FOUND
    assert {row["action"] for row in twice.json()["plan"]} >= {"reprocessed with chapters already (done)"}
    one = ops.ok("reprocess", "old/a.mp4", "--analysis-profile", "summary", "--json").json()  # one key: no prompt
    assert one["sent"] == 1
    pipeline.run_until_idle()
    assert set(batches_per_custom_id(pipeline).values()) == {1}


def latest(ops: Ops, key: str) -> str | None:
    head = ops.pipeline.client("s3").head_object(Bucket=ops.pipeline.bucket, Key=key)
    version: str | None = head.get("VersionId")
    return version


# --- Object Deleted ---------------------------------------------------------------------------------------------


def deleted_event(ops: Ops, key: str, version_id: str | None, deletion_type: str) -> dict[str, object]:
    """The "Object Deleted" event S3 sends to EventBridge (the key URL-encoded, as in "Object Created")."""
    created = object_created_event(
        bucket=ops.pipeline.bucket,
        key=key,
        version_id=version_id,
        size_bytes=0,
        etag=None,
        account="123456789012",
        region="us-east-1",
        now=ops.pipeline.clock.now(),
    )
    detail = dict(created["detail"])  # type: ignore[arg-type]
    detail |= {"reason": "DeleteObject", "deletion-type": deletion_type}
    detail["object"] = {k: v for k, v in detail["object"].items() if k in {"key", "version-id", "sequencer"}}
    return created | {"detail-type": "Object Deleted", "detail": detail}


def test_a_video_deleted_before_submission_fails_and_one_in_a_batch_still_finishes(ops: Ops, workdir: Path) -> None:
    pipeline = ops.pipeline
    s3 = pipeline.client("s3")
    pipeline.upload("del/early.mp4", video(workdir, 7).read_bytes())
    pipeline.upload("del/late.mp4", video(workdir, 8).read_bytes())
    ops.quiet_step()  # ingest: both items wait for their assets
    early = by_key(ops)["del/early.mp4"][0]
    assert early.state is ItemState.ASSET_PROCESSING
    marker = s3.delete_object(Bucket=pipeline.bucket, Key="del/early.mp4")["VersionId"]  # a delete marker
    assert pipeline.wiring.publish_default_bus_event(
        deleted_event(ops, "del/early.mp4", marker, "Delete Marker Created")
    )  # the template's DeletionRule routes it to the ingest queue
    pipeline.run_until(lambda: by_key(ops)["del/late.mp4"][0].state is ItemState.SUBMITTED)
    late = by_key(ops)["del/late.mp4"][0]
    s3.delete_object(Bucket=pipeline.bucket, Key="del/late.mp4", VersionId=late.version_id)
    pipeline.wiring.publish_default_bus_event(
        deleted_event(ops, "del/late.mp4", late.version_id, "Permanently Deleted")
    )
    pipeline.run_until_idle()
    early = by_key(ops)["del/early.mp4"][0]
    assert early.state is ItemState.FAILED
    assert early.failure is not None
    assert early.failure.code == "source_deleted"
    assert "deleted before it was submitted" in early.failure.message
    assert by_key(ops)["del/late.mp4"][0].state is ItemState.DONE  # already submitted: it gets its result
    failed = ops.ok("items", "--state", "failed", "--code", "source_deleted", "--json").json()
    assert [row["key"] for row in failed["items"]] == ["del/early.mp4"]
