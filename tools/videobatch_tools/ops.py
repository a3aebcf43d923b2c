"""``videobatch status | item | sweep``: look at and nudge a running pipeline (deployed, or the local stack).

Where the pipeline lives is resolved in layers, later ones winning:

1. ``--stack NAME``: the CloudFormation stack's Outputs (``ItemsTableName``, ``EventBusName``, ``ApiKeySecretArn``,
   ``ExpiryScheduleGroupName``) and Parameters (``TwelveLabsBaseUrl``, ``ResultsPrefix``).
   ``sweep`` also reads the environment of the deployed ``SweeperFunction``, so it runs with exactly the settings
   the scheduled sweeper has (scheduler role, batch checker ARN, limits).
2. Flags: ``--table``, ``--bus``, ``--secret``, ``--base-url`` and ``--set NAME=VALUE`` (any
   ``videobatch.config.Settings`` variable, e.g. ``--set MAX_ATTEMPTS=5``).

AWS access uses boto3's default credential chain and region (``--region`` overrides); ``AWS_ENDPOINT_URL`` points
it at the local stack's moto server. The TwelveLabs API key is read from the secret, never taken on the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TextIO

# Stack outputs (template.yaml Outputs) and parameters -> Settings environment variables.
OUTPUT_VARIABLES: Final[Mapping[str, str]] = {
    "ItemsTableName": "TABLE_NAME",
    "EventBusName": "EVENT_BUS_NAME",
    "VideoBucketName": "VIDEO_BUCKET",
    "ApiKeySecretArn": "TWELVELABS_API_KEY_SECRET",
    "ExpiryScheduleGroupName": "SCHEDULER_GROUP_NAME",
}
PARAMETER_VARIABLES: Final[Mapping[str, str]] = {
    "TwelveLabsBaseUrl": "TWELVELABS_BASE_URL",
    "ResultsPrefix": "RESULTS_PREFIX",
}
FLAG_VARIABLES: Final[Mapping[str, str]] = {
    "table": "TABLE_NAME",
    "bus": "EVENT_BUS_NAME",
    "bucket": "VIDEO_BUCKET",
    "secret": "TWELVELABS_API_KEY_SECRET",
    "base_url": "TWELVELABS_BASE_URL",
}
SWEEPER_LOGICAL_ID: Final = "SweeperFunction"
EXIT_NOT_FOUND: Final = 1
EXIT_ERROR: Final = 2


class OpsError(Exception):
    """A problem the operator can fix (missing flag, unknown stack, item not found); printed without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- registration -----------------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    status = subparsers.add_parser("status", help="items by state, oldest waiting items and open batches")
    _add_location_flags(status)
    status.add_argument("--live", action="store_true", help="ask TwelveLabs for each open batch's current status")
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(func=_run_status)

    item = subparsers.add_parser("item", help="one item: state, attempts, batch, result or failure")
    item.add_argument("target", help="BUCKET/KEY (or s3://BUCKET/KEY) of the upload, or its 32-hex item id")
    item.add_argument("--version-id", help="the object version (default: the current version)")
    _add_location_flags(item)
    item.add_argument("--json", action="store_true", help="print the stored record as JSON")
    item.set_defaults(func=_run_item)

    sweep = subparsers.add_parser("sweep", help="run the sweeper once, as the scheduled function would")
    _add_location_flags(sweep)
    sweep.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one Settings variable (e.g. ASSET_TIMEOUT_SECONDS=3600); repeatable",
    )
    sweep.add_argument("--json", action="store_true", help="print the summary as JSON")
    sweep.set_defaults(func=_run_sweep)


def _add_location_flags(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where the pipeline is (flags override what --stack finds)")
    where.add_argument("--stack", help="CloudFormation stack name of the deployed pipeline")
    where.add_argument("--region", help="AWS region (default: boto3's)")
    where.add_argument("--table", help="DynamoDB table name")
    where.add_argument("--bus", help="EventBridge bus name")
    where.add_argument("--bucket", help="the video bucket (S3) the stack ingests")
    where.add_argument("--secret", help="Secrets Manager name or ARN of the TwelveLabs API key")
    where.add_argument("--base-url", help="TwelveLabs API base URL")


# --- configuration ----------------------------------------------------------------------------------------------


@dataclass
class Location:
    """Where the pipeline is, as Settings environment variables (what a function's environment would hold)."""

    environment: dict[str, str] = field(default_factory=dict)

    def require(self, name: str, flag: str) -> str:
        value = self.environment.get(name)
        if not value:
            raise OpsError(f"{name} is unknown: pass --stack NAME or {flag}")
        return value


def merge_location(
    *,
    outputs: Mapping[str, str] | None = None,
    parameters: Mapping[str, str] | None = None,
    function_environment: Mapping[str, str] | None = None,
    flags: Mapping[str, str | None] | None = None,
    overrides: Sequence[str] = (),
) -> Location:
    """Layer the sources: stack outputs/parameters, then the function's environment, then flags, then ``--set``."""
    environment: dict[str, str] = {}
    for name, variable in PARAMETER_VARIABLES.items():
        if (parameters or {}).get(name):
            environment[variable] = str((parameters or {})[name])
    for name, variable in OUTPUT_VARIABLES.items():
        if (outputs or {}).get(name):
            environment[variable] = str((outputs or {})[name])
    environment.update(function_environment or {})
    given = flags or {}
    for flag, variable in FLAG_VARIABLES.items():
        if given.get(flag):
            environment[variable] = str(given[flag])
    for override in overrides:
        name, sep, value = override.partition("=")
        if not sep or not name:
            raise OpsError(f"--set expects NAME=VALUE, got {override!r}")
        environment[name.strip().upper()] = value
    return Location(environment=environment)


def _session(args: argparse.Namespace) -> Any:
    import boto3

    return boto3.Session(region_name=args.region) if args.region else boto3.Session()


def resolve_location(args: argparse.Namespace, session: Any, *, with_function: bool = False) -> Location:
    outputs: dict[str, str] = {}
    parameters: dict[str, str] = {}
    function_environment: dict[str, str] = {}
    if args.stack:
        stack = _describe_stack(session, args.stack)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        if with_function:
            function_environment = _function_environment(session, args.stack, SWEEPER_LOGICAL_ID)
    flags = {name: getattr(args, name, None) for name in FLAG_VARIABLES}
    return merge_location(
        outputs=outputs,
        parameters=parameters,
        function_environment=function_environment,
        flags=flags,
        overrides=getattr(args, "settings", ()),
    )


def _describe_stack(session: Any, stack_name: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise OpsError(f"stack {stack_name}: {error.response.get('Error', {}).get('Message', error)}") from error
    if not stacks:
        raise OpsError(f"stack {stack_name} not found")
    stack: dict[str, Any] = stacks[0]
    return stack


def _function_environment(session: Any, stack_name: str, logical_id: str) -> dict[str, str]:
    """The deployed function's environment variables (all functions get the same Settings from Globals)."""
    from botocore.exceptions import ClientError

    try:
        resource = session.client("cloudformation").describe_stack_resource(
            StackName=stack_name, LogicalResourceId=logical_id
        )["StackResourceDetail"]
        configuration = session.client("lambda").get_function_configuration(FunctionName=resource["PhysicalResourceId"])
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        raise OpsError(f"cannot read {logical_id} of stack {stack_name}: {message}") from error
    variables: dict[str, str] = configuration.get("Environment", {}).get("Variables", {})
    return dict(variables)


# --- status -----------------------------------------------------------------------------------------------------


def _item_queues() -> list[tuple[str, str, str | None]]:
    """(label, gsi1 queue, state to count in it: None when the queue holds one state only)."""
    from videobatch.domain.records import INFLIGHT_QUEUE, INTAKE_QUEUE, queued_queue
    from videobatch.twelvelabs import limits

    queues: list[tuple[str, str, str | None]] = [
        ("registered", INTAKE_QUEUE, "registered"),
        ("asset_processing", INTAKE_QUEUE, "asset_processing"),
    ]
    queues += [(f"queued ({mode})", queued_queue(mode), None) for mode in limits.ANALYSIS_MODES]
    return [*queues, ("claimed", INFLIGHT_QUEUE, "claimed"), ("submitted", INFLIGHT_QUEUE, "submitted")]


def count_queue(dynamodb: Any, table: str, queue: str) -> int:
    """Records in one gsi1 work queue (Select=COUNT reads the keys only, page by page)."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": queue}},
        "Select": "COUNT",
    }
    total = 0
    while True:
        response = dynamodb.query(**kwargs)
        total += int(response.get("Count", 0))
        if not response.get("LastEvaluatedKey"):
            return total
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def collect_status(session: Any, location: Location, *, now: datetime, live: bool = False) -> dict[str, Any]:
    """Queue counts with each queue's first item (queues are ordered by their sort time: for ``queued`` that is the
    end of any requeue backoff, so the first item is the oldest *eligible* one), pending claims, open batches."""
    from videobatch.adapters.dynamodb import DynamoBatchRepository, DynamoItemRepository
    from videobatch.domain.records import PENDING_CLAIMS_QUEUE

    table = location.require("TABLE_NAME", "--table")
    dynamodb = session.client("dynamodb")
    items = DynamoItemRepository(dynamodb, table)
    states: list[dict[str, Any]] = []
    for label, queue, state in _item_queues():
        if state is None:
            oldest = next(iter(items.iter_queue(queue, page_size=1)), None)
            count = count_queue(dynamodb, table, queue)
        else:  # a queue two states share: count the records (the index keeps keys only)
            members = [item for item in items.iter_queue(queue) if item.state.value == state]
            oldest, count = (members[0] if members else None), len(members)
        entry: dict[str, Any] = {"state": label, "count": count}
        if oldest is not None:
            since = _state_since(oldest)
            entry |= {"oldest_item_id": oldest.item_id, "oldest_since": since.isoformat(), "oldest_key": oldest.key}
            entry["oldest_age_seconds"] = round((now - since).total_seconds(), 1)
        states.append(entry)
    batches = [_batch_entry(record, now) for record in DynamoBatchRepository(dynamodb, table).iter_open()]
    if live and batches:
        _add_live_status(session, location, batches)
    return {
        "table": table,
        "checked_at": now.isoformat(),
        "states": states,
        "claims_pending": count_queue(dynamodb, table, PENDING_CLAIMS_QUEUE),
        "open_batches": batches,
    }


def _state_since(item: Any) -> datetime:
    """When the item entered the state it is listed under (queued: first queued, not the backoff end)."""
    moment: datetime | None = {
        "registered": item.created_at,
        "asset_processing": item.asset_created_at,
        "queued": item.queued_at,
        "claimed": item.claimed_at,
        "submitted": item.submitted_at,
    }.get(item.state.value)
    return moment or item.updated_at


def _batch_entry(record: Any, now: datetime) -> dict[str, Any]:
    return {
        "batch_id": record.batch_id,
        "analysis_mode": record.analysis_mode,
        "api_status": record.api_status,
        "created_at": record.created_at.isoformat(),
        "expires_at": record.expires_at.isoformat(),
        "expires_in_seconds": round((record.expires_at - now).total_seconds(), 1),
        "items": record.item_count,
        "requests": record.request_count,
        "succeeded": record.succeeded_items,
        "failed": record.failed_items,
        "requeued": record.requeued_items,
    }


def _add_live_status(session: Any, location: Location, batches: list[dict[str, Any]]) -> None:
    from videobatch.adapters.secrets import SecretApiKeyProvider
    from videobatch.errors import NotFoundError
    from videobatch.twelvelabs.client import TwelveLabsClient

    secret = location.require("TWELVELABS_API_KEY_SECRET", "--secret")
    key = SecretApiKeyProvider(session.client("secretsmanager"), secret)()
    base_url = location.environment.get("TWELVELABS_BASE_URL") or "https://api.twelvelabs.io/v1.3"
    client = TwelveLabsClient(key, base_url=base_url)
    try:
        for entry in batches:
            try:
                batch = client.retrieve_batch(entry["batch_id"])
            except NotFoundError:
                entry["live"] = {"status": "deleted"}
                continue
            entry["live"] = {
                "status": batch.status,
                "queued": batch.queued_items,
                "processing": batch.processing_items,
                "ready": batch.ready_items,
                "failed": batch.failed_items,
                "canceled": batch.canceled_items,
            }
    finally:
        client.close()


def render_status(status: Mapping[str, Any], out: TextIO) -> None:
    out.write(f"table {status['table']} at {status['checked_at']}\n\nitems by state (work queues):\n")
    for entry in status["states"]:
        line = f"  {entry['state']:<30} {entry['count']:>7}"
        if "oldest_item_id" in entry:
            line += (
                f"   oldest {_age(entry['oldest_age_seconds'])} ago: {entry['oldest_key']} ({entry['oldest_item_id']})"
            )
        out.write(line + "\n")
    out.write(f"  {'done / failed':<30} {'-':>7}   not indexed: see 'videobatch item' and the outgoing events\n")
    queued = [e for e in status["states"] if e["state"].startswith("queued") and "oldest_age_seconds" in e]
    oldest = max(queued, key=lambda e: e["oldest_age_seconds"], default=None)
    out.write(
        f"\noldest queued item: {_age(oldest['oldest_age_seconds'])} waiting ({oldest['oldest_key']})\n"
        if oldest
        else "\noldest queued item: none queued\n"
    )
    out.write(f"claims pending (batch create outcome unknown): {status['claims_pending']}\n")
    batches = status["open_batches"]
    out.write(f"\nopen batches: {len(batches)}\n")
    if batches:
        out.write(
            f"  {'batch_id':<26} {'mode':<20} {'api status':<12} {'items':>5} {'requests':>8} "
            f"{'ok':>4} {'failed':>6} {'requeued':>8}  expiry\n"
        )
    for batch in batches:
        live = batch.get("live")
        api_status = live["status"] if live else batch["api_status"]
        out.write(
            f"  {batch['batch_id']:<26} {batch['analysis_mode']:<20} {api_status:<12} {batch['items']:>5} "
            f"{batch['requests']:>8} {batch['succeeded']:>4} {batch['failed']:>6} {batch['requeued']:>8}  "
            f"{_until(batch['expires_in_seconds'])}\n"
        )
        if live and "queued" in live:
            out.write(
                "    live: {queued} queued, {processing} processing, {ready} ready, {failed} failed, "
                "{canceled} canceled\n".format(**live)
            )


def _until(seconds: float) -> str:
    return f"in {_age(seconds)}" if seconds >= 0 else f"passed {_age(-seconds)} ago"


def _age(seconds: float) -> str:
    sign, value = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(int(value), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours:02d}h"
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    return f"{sign}{minutes}m{secs:02d}s"


def _run_status(args: argparse.Namespace) -> int:
    return _guarded(args, _status)


def _status(args: argparse.Namespace, out: TextIO) -> int:
    from videobatch.clock import SystemClock

    session = _session(args)
    status = collect_status(session, resolve_location(args, session), now=SystemClock().now(), live=args.live)
    if args.json:
        out.write(json.dumps(status, indent=2) + "\n")
    else:
        render_status(status, out)
    return 0


# --- item -------------------------------------------------------------------------------------------------------


def parse_target(target: str) -> tuple[str, str] | str:
    """An item id (32 lowercase hex), or (bucket, key) from ``BUCKET/KEY`` or ``s3://BUCKET/KEY``."""
    from videobatch.domain.items import ITEM_ID_LENGTH

    if len(target) == ITEM_ID_LENGTH and all(c in "0123456789abcdef" for c in target):
        return target
    bucket, sep, key = target.removeprefix("s3://").partition("/")
    if not sep or not bucket or not key:
        raise OpsError(f"{target!r} is neither an item id (32 hex) nor BUCKET/KEY")
    return bucket, key


def _current_version(session: Any, bucket: str, key: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        version: str | None = session.client("s3").head_object(Bucket=bucket, Key=key).get("VersionId")
    except ClientError:
        return None  # deleted or not readable: the id of the unversioned object is the best guess
    return version


def _run_item(args: argparse.Namespace) -> int:
    return _guarded(args, _item)


def _item(args: argparse.Namespace, out: TextIO) -> int:
    from videobatch.adapters.dynamodb import DynamoItemRepository
    from videobatch.domain.items import item_id_for

    session = _session(args)
    location = resolve_location(args, session)
    items = DynamoItemRepository(session.client("dynamodb"), location.require("TABLE_NAME", "--table"))
    target = parse_target(args.target)
    hint = ""
    if isinstance(target, str):
        item_id = target
    else:
        bucket, key = target
        version = args.version_id or _current_version(session, bucket, key)
        item_id = item_id_for(bucket, key, version)
        if not args.version_id:
            hint = f" (current version {version}; pass --version-id for another)" if version else ""
    item = items.get(item_id)
    if item is None:
        raise OpsError(f"no item {item_id} for {args.target}{hint}", EXIT_NOT_FOUND)
    if args.json:
        out.write(item.model_dump_json(indent=2) + "\n")
    else:
        render_item(item, out)
    return 0


def render_item(item: Any, out: TextIO) -> None:
    version = f" (version {item.version_id})" if item.version_id else ""
    mode = f" ({item.analysis_mode})" if item.profile_name else ""
    rows: list[tuple[str, str]] = [
        ("item", item.item_id),
        ("object", f"s3://{item.bucket}/{item.key}{version}"),
        ("profile", f"{item.profile_name or '-'}{mode}"),
        ("state", item.state.value),
        ("attempts", str(item.attempts)),
    ]
    if item.asset_id:
        rows.append(("asset", item.asset_id))
    if item.windows:
        spans = ", ".join(f"{w.start_seconds:g}-{w.end_seconds:g} s" for w in item.windows)
        rows.append(("windows", f"{len(item.windows)}: {spans}"))
    if item.claim_id:
        rows.append(("claim", item.claim_id))
    if item.batch_id:
        rows.append(("batch", item.batch_id))
    rows += [("task", f"{task_id} ({custom_id})") for custom_id, task_id in sorted(item.task_ids.items())]
    if item.result_key:
        rows.append(("result", f"s3://{item.bucket}/{item.result_key}"))
    if item.failure is not None:
        rows.append(("failure", f"{item.failure.code}: {item.failure.message}"))
    if item.state.value == "queued" and item.eligible_at:
        rows.append(("eligible at", item.eligible_at.isoformat()))
    rows += [("registered", item.created_at.isoformat()), ("updated", item.updated_at.isoformat())]
    if item.finished_at:
        rows.append(("finished", item.finished_at.isoformat()))
    for label, value in rows:
        out.write(f"{label:<12} {value}\n")


# --- sweep ------------------------------------------------------------------------------------------------------


class RecordingMetrics:
    """The sweep's metrics, printed rather than sent (the scheduled sweeper is the one that reports them)."""

    def __init__(self) -> None:
        self.recorded: dict[str, float] = {}

    def add_metric(self, name: str, unit: str, value: float) -> None:
        self.recorded[name] = self.recorded.get(name, 0.0) + value


def _run_sweep(args: argparse.Namespace) -> int:
    return _guarded(args, _sweep)


def _sweep(args: argparse.Namespace, out: TextIO) -> int:
    from videobatch.config import Settings
    from videobatch.runtime import build_runtime

    session = _session(args)
    location = resolve_location(args, session, with_function=True)
    for name, flag in (
        ("TABLE_NAME", "--table"),
        ("EVENT_BUS_NAME", "--bus"),
        ("VIDEO_BUCKET", "--bucket"),
        ("TWELVELABS_API_KEY_SECRET", "--secret"),
    ):
        location.require(name, flag)
    settings = Settings.from_env(location.environment)
    recorded = RecordingMetrics()
    runtime = build_runtime(settings, session=session, metrics_sink=recorded)
    try:
        summary = runtime.sweep_service().run()
    finally:
        runtime.twelvelabs.close()
    counts = summary.model_dump(mode="json")
    if args.json:
        out.write(json.dumps({"summary": counts, "metrics": recorded.recorded}, indent=2) + "\n")
        return 0
    out.write(f"swept table {settings.table_name}\n")
    for name, text in _flatten(counts):
        out.write(f"  {name:<40} {text}\n")
    for metric, value in sorted(recorded.recorded.items()):
        out.write(f"  metric {metric:<33} {value:g}\n")
    return 0


def _flatten(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested summaries (the reconciler's inside the sweeper's) as ``outer.inner`` rows; lists joined."""
    rows: list[tuple[str, str]] = []
    for name, value in values.items():
        if isinstance(value, Mapping):
            rows += _flatten(value, f"{prefix}{name}.")
        elif isinstance(value, list):
            rows.append((f"{prefix}{name}", ", ".join(map(str, value)) or "-"))
        else:
            rows.append((f"{prefix}{name}", str(value)))
    return rows


# --- errors -----------------------------------------------------------------------------------------------------


def _guarded(args: argparse.Namespace, command: Any) -> int:
    """Run ``command``; expected failures become one line on stderr and an exit code, not a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from videobatch.errors import VideoBatchError

    try:
        result: int = command(args, sys.stdout)
    except OpsError as error:
        sys.stderr.write(f"videobatch {args.command}: {error}\n")
        return error.exit_code
    except (ClientError, BotoCoreError, VideoBatchError) as error:
        sys.stderr.write(f"videobatch {args.command}: {type(error).__name__}: {error}\n")
        return EXIT_ERROR
    return result
