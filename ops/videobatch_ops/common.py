"""What every command shares: its flags, where the pipeline is, AWS access, errors and exit codes, output.

Where the pipeline lives is resolved in layers, later ones winning:

1. ``--stack NAME``: the CloudFormation stack's Outputs (``ItemsTableName``, ``EventBusName``, ``VideoBucketName``,
   ``ApiKeySecretArn``, ``ExpiryScheduleGroupName``, ``IngestQueueUrl``, ``IngestDeadLetterQueueUrl``,
   ``SweeperFunctionName``, ``BatchCheckerFunctionName``) and Parameters (``TwelveLabsBaseUrl``,
   ``ResultsPrefix``); commands that run pipeline code here (requeue, cancel-batch, reprocess, backfill,
   sweep --local) also read the deployed ``SweeperFunction``'s environment, so they run with exactly the settings
   the functions have (every function gets the same).
2. Flags: ``--table``, ``--bus``, ``--bucket``, ``--secret``, ``--base-url``, ``--ingest-queue-url``,
   ``--dead-letter-queue-url``, ``--sweeper-function``, ``--batch-checker-function`` and ``--set NAME=VALUE``
   (any ``videobatch.config.Settings`` variable, e.g. ``--set MAX_ATTEMPTS=5``).

AWS access: boto3's default credential chain, or ``--profile NAME`` (an AWS named profile; ``--aws-profile`` is the
same flag) and ``--region``. ``AWS_ENDPOINT_URL`` points it at the local stack's moto server. The TwelveLabs API key
is read from the secret, or from the file ``--api-key-file PATH`` names (with ``--api-url``, another endpoint's),
never taken on the command line.

Exit codes: 0 done; 1 not found or nothing matched; 2 bad input or an error (one line on stderr, nothing changed
unless the line says what was).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from videobatch_ops import package_version

if TYPE_CHECKING:
    from videobatch.clock import Clock
    from videobatch.config import Settings
    from videobatch.runtime import Runtime

EXIT_OK: Final = 0
EXIT_NOT_FOUND: Final = 1
EXIT_ERROR: Final = 2
EXIT_CODES_HELP: Final = "exit codes: 0 done, 1 not found or nothing matched, 2 bad input or error"

# Stack outputs (template.yaml Outputs) and parameters -> variables of the location (Settings names where they are
# settings; the queue URLs and function name are the CLI's own).
OUTPUT_VARIABLES: Final[Mapping[str, str]] = {
    "ItemsTableName": "TABLE_NAME",
    "EventBusName": "EVENT_BUS_NAME",
    "VideoBucketName": "VIDEO_BUCKET",
    "ApiKeySecretArn": "TWELVELABS_API_KEY_SECRET",
    "ExpiryScheduleGroupName": "SCHEDULER_GROUP_NAME",
    "IngestQueueUrl": "INGEST_QUEUE_URL",
    "IngestDeadLetterQueueUrl": "DEAD_LETTER_QUEUE_URL",
    "SweeperFunctionName": "SWEEPER_FUNCTION",
    "BatchCheckerFunctionName": "BATCH_CHECKER_FUNCTION",
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
    "ingest_queue_url": "INGEST_QUEUE_URL",
    "dead_letter_queue_url": "DEAD_LETTER_QUEUE_URL",
    "sweeper_function": "SWEEPER_FUNCTION",
    "batch_checker_function": "BATCH_CHECKER_FUNCTION",
}
FLAG_NAMES: Final[Mapping[str, str]] = {
    variable: f"--{flag.replace('_', '-')}" for flag, variable in FLAG_VARIABLES.items()
}
SWEEPER_LOGICAL_ID: Final = "SweeperFunction"
DEFAULT_BASE_URL: Final = "https://api.twelvelabs.io/v1.3"


class OpsError(Exception):
    """A problem the operator can fix (bad flag, unknown stack, nothing found); printed without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- flags ------------------------------------------------------------------------------------------------------


def add_common_flags(parser: argparse.ArgumentParser, *, settings_overrides: bool = False) -> None:
    """The flags every command takes (where, who, how to print); ``settings_overrides`` adds ``--set``."""
    where = parser.add_argument_group("where the pipeline is (flags override what --stack finds)")
    where.add_argument("--stack", metavar="NAME", help="CloudFormation stack name of the deployed pipeline")
    where.add_argument("--region", help="AWS region (default: the profile's, or boto3's)")
    where.add_argument(
        "--profile",
        "--aws-profile",
        dest="aws_profile",
        metavar="NAME",
        help="AWS named profile for credentials and region (not an analysis profile: see reprocess)",
    )
    where.add_argument("--table", metavar="NAME", help="DynamoDB table of items (stack output ItemsTableName)")
    where.add_argument("--bus", metavar="NAME", help="EventBridge bus of the outgoing events (EventBusName)")
    where.add_argument("--bucket", metavar="NAME", help="the video bucket the stack ingests (VideoBucketName)")
    where.add_argument("--secret", metavar="ARN", help="Secrets Manager name or ARN of the TwelveLabs API key")
    where.add_argument(
        "--base-url", "--api-url", dest="base_url", metavar="URL", help="TwelveLabs API base URL (TwelveLabsBaseUrl)"
    )
    where.add_argument(
        "--api-key-file",
        type=Path,
        metavar="PATH",
        help="read the TwelveLabs API key from this file instead of the stack's secret (read once, never printed)",
    )
    where.add_argument("--ingest-queue-url", metavar="URL", help="the ingest SQS queue (IngestQueueUrl)")
    where.add_argument(
        "--dead-letter-queue-url", metavar="URL", help="the ingest dead-letter queue (IngestDeadLetterQueueUrl)"
    )
    where.add_argument("--sweeper-function", metavar="NAME", help="the sweeper Lambda function (SweeperFunctionName)")
    where.add_argument(
        "--batch-checker-function",
        metavar="NAME",
        help="the batch checker Lambda function (BatchCheckerFunctionName)",
    )
    if settings_overrides:
        where.add_argument(
            "--set",
            dest="settings",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="override one Settings variable (e.g. MAX_ATTEMPTS=5); repeatable",
        )
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--version", action="version", version=f"videobatch {package_version()}")


def add_change_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of a command that changes things: a dry run, and the confirmation of a change to many items."""
    change = parser.add_argument_group("changing things")
    change.add_argument("--dry-run", action="store_true", help="show what would be done and change nothing")
    change.add_argument("--yes", "-y", action="store_true", help="do not ask before changing more than one item")


# --- where the pipeline is --------------------------------------------------------------------------------------


@dataclass
class Location:
    """Where the pipeline is, as the variables a function's environment would hold (plus the CLI's own)."""

    environment: dict[str, str] = field(default_factory=dict)

    def require(self, name: str) -> str:
        value = self.environment.get(name)
        if not value:
            flag = FLAG_NAMES.get(name, f"--set {name}=...")
            raise OpsError(f"{name} is unknown: pass --stack NAME or {flag}")
        return value

    def get(self, name: str) -> str | None:
        return self.environment.get(name) or None


def merge_location(
    *,
    outputs: Mapping[str, str] | None = None,
    parameters: Mapping[str, str] | None = None,
    function_environment: Mapping[str, str] | None = None,
    flags: Mapping[str, str | None] | None = None,
    overrides: Sequence[str] = (),
) -> Location:
    """Layer the sources: stack parameters/outputs, then the function's environment, then flags, then ``--set``."""
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
        if not sep or not name.strip():
            raise OpsError(f"--set expects NAME=VALUE, got {override!r}")
        environment[name.strip().upper()] = value
    return Location(environment=environment)


def make_session(args: argparse.Namespace) -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    try:
        return boto3.Session(profile_name=getattr(args, "aws_profile", None), region_name=args.region)
    except ProfileNotFound as error:
        raise OpsError(f"AWS profile {args.aws_profile!r} is not configured (~/.aws/config): {error}") from error
    except BotoCoreError as error:
        raise OpsError(f"AWS session: {error}") from error


def resolve_location(args: argparse.Namespace, session: Any, *, with_function: bool = False) -> Location:
    outputs: dict[str, str] = {}
    parameters: dict[str, str] = {}
    function_environment: dict[str, str] = {}
    if args.stack:
        stack = describe_stack(session, args.stack)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        if with_function:
            function_environment = function_configuration(session, args.stack, SWEEPER_LOGICAL_ID)[1]
    flags = {name: getattr(args, name, None) for name in FLAG_VARIABLES}
    return merge_location(
        outputs=outputs,
        parameters=parameters,
        function_environment=function_environment,
        flags=flags,
        overrides=getattr(args, "settings", ()),
    )


def describe_stack(session: Any, stack_name: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise OpsError(f"stack {stack_name}: {error.response.get('Error', {}).get('Message', error)}") from error
    if not stacks:
        raise OpsError(f"stack {stack_name} not found")
    stack: dict[str, Any] = stacks[0]
    return stack


def function_configuration(session: Any, stack_name: str, logical_id: str) -> tuple[str, dict[str, str]]:
    """(physical name, environment variables) of one of the stack's functions."""
    from botocore.exceptions import ClientError

    try:
        resource = session.client("cloudformation").describe_stack_resource(
            StackName=stack_name, LogicalResourceId=logical_id
        )["StackResourceDetail"]
        name = resource["PhysicalResourceId"]
        configuration = session.client("lambda").get_function_configuration(FunctionName=name)
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        raise OpsError(f"cannot read {logical_id} of stack {stack_name}: {message}") from error
    variables: dict[str, str] = configuration.get("Environment", {}).get("Variables", {})
    return str(name), dict(variables)


class RecordingMetrics:
    """Metrics of pipeline code run here: printed rather than sent (the deployed functions are the ones that report)."""

    def __init__(self) -> None:
        self.recorded: dict[str, float] = {}

    def add_metric(self, name: str, unit: str, value: float) -> None:
        self.recorded[name] = self.recorded.get(name, 0.0) + value


class _ClockSlot:
    """The clock commands take "now" from: the system's, unless a local stack on a virtual clock embeds them."""

    def __init__(self) -> None:
        self.clock: Clock | None = None


_clock_slot = _ClockSlot()


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Run commands on ``clock`` inside the block (the local stack's virtual clock, for the demo and tests)."""
    previous, _clock_slot.clock = _clock_slot.clock, clock
    try:
        yield clock
    finally:
        _clock_slot.clock = previous


class Context:
    """One command's connection to the pipeline: the session, the location and what is built from them, lazily."""

    def __init__(self, args: argparse.Namespace, *, with_function: bool = False) -> None:
        from videobatch.clock import SystemClock

        self.args = args
        self.session = make_session(args)
        self.location = resolve_location(args, self.session, with_function=with_function)
        self.clock: Clock = _clock_slot.clock or SystemClock()
        self.metrics = RecordingMetrics()
        self._runtime: Runtime | None = None

    def client(self, service: str) -> Any:
        return self.session.client(service)

    @property
    def table(self) -> str:
        return self.location.require("TABLE_NAME")

    @cached_property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    def settings(self, *required: str) -> Settings:
        from videobatch.config import Settings

        for name in ("TABLE_NAME", "EVENT_BUS_NAME", "VIDEO_BUCKET", *required):
            self.location.require(name)
        environment = {"TWELVELABS_API_KEY_SECRET": "-", **self.location.environment}
        return Settings.from_env(environment)

    def key_from_file(self) -> str | None:
        """The key ``--api-key-file`` holds (None without the flag); OpsError naming the problem."""
        from videobatch.twelvelabs.keys import ApiKeyFileError, read_api_key_file

        path: Path | None = getattr(self.args, "api_key_file", None)
        if path is None:
            return None
        try:
            return read_api_key_file(path)
        except ApiKeyFileError as error:
            raise OpsError(f"--api-key-file {error}") from error

    def runtime(self) -> Runtime:
        """The pipeline's runtime built here (as a function builds it), with the API key read from the secret (or
        ``--api-key-file``)."""
        if self._runtime is None:
            from videobatch.runtime import build_runtime

            key = self.key_from_file()
            settings = self.settings() if key is not None else self.settings("TWELVELABS_API_KEY_SECRET")
            self._runtime = build_runtime(
                settings, clock=self.clock, session=self.session, metrics_sink=self.metrics, api_key=key
            )
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.twelvelabs.close()

    def account_and_region(self) -> tuple[str, str]:
        """For the upload events the CLI sends: the account from the ingest queue's URL, the session's region."""
        url = self.location.get("INGEST_QUEUE_URL") or ""
        match = re.search(r"/(\d{12})/", url)
        return (match.group(1) if match else ""), str(self.session.region_name or "")


# --- running a command ------------------------------------------------------------------------------------------


CommandFunction = Callable[[argparse.Namespace, TextIO], int]


def guarded(command: CommandFunction) -> Callable[[argparse.Namespace], int]:
    """Run ``command``; expected failures become one line on stderr and an exit code, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        from videobatch.errors import VideoBatchError

        try:
            return command(args, sys.stdout)
        except OpsError as error:
            sys.stderr.write(f"videobatch {args.command}: {error}\n")
            return error.exit_code
        except (ClientError, BotoCoreError, VideoBatchError) as error:
            sys.stderr.write(f"videobatch {args.command}: {type(error).__name__}: {error}\n")
            return EXIT_ERROR

    return run


def emit(args: argparse.Namespace, out: TextIO, document: Mapping[str, Any], render: Callable[[TextIO], None]) -> None:
    """``--json``: the document; else the human rendering."""
    if args.json:
        out.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    else:
        render(out)


def confirm(args: argparse.Namespace, count: int, what: str) -> None:
    """Ask before changing more than one item (``--yes`` skips it); without a terminal to ask on, refuse."""
    if count <= 1 or getattr(args, "yes", False) or getattr(args, "dry_run", False):
        return
    if not sys.stdin.isatty():
        raise OpsError(f"this would {what} ({count} items): pass --yes to confirm (no terminal to ask on)")
    sys.stderr.write(f"{what} ({count} items)? [y/N] ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in {"y", "yes"}:
        raise OpsError("not confirmed: nothing changed")


# --- parsing ----------------------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+)\s*(m|min|h|d|w)$")
_UNIT_SECONDS: Final = {"m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """``--since``: ``90m``, ``6h``, ``3d``, ``2w`` ago, or an ISO 8601 date or time (UTC unless it says)."""
    if value is None:
        return None
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        return now - timedelta(seconds=int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)])
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise OpsError(f"--since {value!r} is neither a duration (90m, 6h, 3d, 2w) nor an ISO 8601 time") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment > now:
        raise OpsError(f"--since {value!r} is in the future")
    return moment


def checked_prefix(value: str | None, flag: str = "--prefix") -> str | None:
    """A key prefix: absent is fine, empty is a mistake (it would mean every object)."""
    if value is None:
        return None
    if not value.strip():
        raise OpsError(f"{flag} is empty: that would match every object; name a prefix")
    return value


def parse_s3_uri(value: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` (or ``bucket/prefix``) -> (bucket, prefix)."""
    bucket, _, prefix = value.removeprefix("s3://").partition("/")
    if not bucket:
        raise OpsError(f"{value!r} is not s3://BUCKET/PREFIX")
    return bucket, prefix
