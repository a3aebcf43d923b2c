"""template.yaml: cfn-lint clean, and the properties this project promises (settings, encryption, least privilege)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from videobatch.config import Settings
from videobatch_tools.localstack.resources import offline_resolver
from videobatch_tools.localstack.template import (
    Resolver,
    default_template_path,
    function_ids,
    function_property,
)

REPO = default_template_path().parent
FUNCTIONS = ("IngestFunction", "AssetCheckerFunction", "FlusherFunction", "BatchCheckerFunction", "SweeperFunction")
# Created only with EnableWebhooks=true (Condition WebhooksEnabled); the five above always.
WEBHOOK = "WebhookFunction"
ALL_FUNCTIONS = (*FUNCTIONS, WEBHOOK)
WEBHOOKS_ON = {"EnableWebhooks": "true"}
SETTINGS_VARIABLES = {name.upper() for name in Settings.model_fields}
REQUIRED_SETTINGS = {name.upper() for name, f in Settings.model_fields.items() if f.is_required()}
POWERTOOLS_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
# Actions AWS cannot scope to a resource; none is needed today (Powertools metrics go through EMF logs; logs go to
# each function's own log group through the basic execution role SAM attaches; no X-Ray tracing).
RESOURCE_WILDCARD_ALLOWED: set[str] = set()


def run_cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    # A subprocess keeps cfn-lint's and the SAM translator's own warnings out of this warnings-as-errors run.
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    return subprocess.run(
        [str(cfn_lint), "--include-checks", "I", "--format", "parseable", "--", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def resolver(template: dict[str, Any]) -> Resolver:
    return offline_resolver(template, stack_name="prod")


@pytest.fixture(scope="module")
def webhooks(template: dict[str, Any]) -> Resolver:
    """The same stack with EnableWebhooks=true (the webhook function, its secret, URL and alarm exist)."""
    return offline_resolver(template, stack_name="prod", parameter_overrides=WEBHOOKS_ON)


def resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


def policy_statements(
    template: dict[str, Any], resolver: Resolver | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every identity-policy statement the template grants (functions' inline policies and roles); a statement
    behind a condition (``Fn::If``) is taken as ``resolver`` (default parameters without one) decides it."""
    decide = resolver or offline_resolver(template)
    for logical_id, spec in template["Resources"].items():
        properties = spec.get("Properties", {})
        if spec["Type"] == "AWS::Serverless::Function":
            for document in properties.get("Policies", []):
                for written in document["Statement"]:
                    statement = decide.resolve(written) if "Fn::If" in written else written
                    if not isinstance(statement, dict) or "Effect" not in statement:
                        continue  # the condition left it out (AWS::NoValue)
                    yield logical_id, statement
        if spec["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def granted_actions(template: dict[str, Any], function_id: str) -> set[str]:
    return {
        action
        for owner, statement in policy_statements(template)
        if owner == function_id and statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
    }


# --- cfn-lint ---------------------------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing_not_even_informational() -> None:
    result = run_cfn_lint(default_template_path())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_cfn_lint_really_checks_the_transformed_template(tmp_path: Path) -> None:
    # Guards against a lint that passes because it skipped the SAM template (e.g. no SAM translator installed).
    broken = default_template_path().read_text().replace("MemorySize: 512", "MemorySize: 1")
    path = tmp_path / "template.yaml"
    path.write_text(broken)
    result = run_cfn_lint(path)
    assert result.returncode != 0
    assert "E3034" in result.stdout


# --- settings contract ------------------------------------------------------------------------------------------


def test_the_functions_exist_and_only_the_webhook_is_optional(template: dict[str, Any], webhooks: Resolver) -> None:
    assert sorted(function_ids(template)) == sorted(ALL_FUNCTIONS)
    assert [f for f in ALL_FUNCTIONS if "Condition" in resource(template, f)] == [WEBHOOK]
    assert not offline_resolver(template).resource_enabled(WEBHOOK)
    assert webhooks.resource_enabled(WEBHOOK)


@pytest.mark.parametrize("function_id", ALL_FUNCTIONS)
def test_every_function_gets_every_settings_variable(template: dict[str, Any], function_id: str) -> None:
    variables = set(function_property(template, function_id, "Environment")["Variables"])
    assert variables >= REQUIRED_SETTINGS
    # Everything deploy-specific or tunable is set; the rest keep Settings' defaults on purpose.
    assert variables >= {
        "RESULTS_PREFIX",
        "TWELVELABS_BASE_URL",
        "SCHEDULER_GROUP_NAME",
        "SCHEDULER_ROLE_ARN",
        "BATCH_CHECKER_ARN",
        "RESERVED_BATCH_SLOTS",
        "MAX_WAIT_SECONDS",
        "MAX_ATTEMPTS",
        "CONTENT_COUNTING",
        "EXPIRY_GRACE_SECONDS",
    }
    assert variables >= POWERTOOLS_VARIABLES
    # A misspelt name would silently fall back to a default: every other variable must be a Settings field.
    assert variables - POWERTOOLS_VARIABLES <= SETTINGS_VARIABLES


@pytest.mark.parametrize("function_id", ALL_FUNCTIONS)
def test_resolved_environment_is_valid_settings(template: dict[str, Any], webhooks: Resolver, function_id: str) -> None:
    variables = webhooks.resolve(function_property(template, function_id, "Environment"))["Variables"]
    settings = Settings.from_env({k: str(v) for k, v in variables.items()})
    assert settings.table_name == "prod-ItemsTable"
    assert settings.batch_checker_arn == "arn:aws:lambda:us-east-1:123456789012:function:prod-batch-checker"
    assert settings.scheduler_group_name == "prod-expiry"


def test_api_key_is_referenced_by_secret_never_passed_in_the_environment(
    template: dict[str, Any], resolver: Resolver
) -> None:
    variables = resolver.resolve(function_property(template, "IngestFunction", "Environment"))["Variables"]
    assert variables["TWELVELABS_API_KEY_SECRET"].startswith("arn:aws:secretsmanager:")
    assert not any("API_KEY" in name and name != "TWELVELABS_API_KEY_SECRET" for name in variables)
    existing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tl-key-AbCdEf"
    with_existing = offline_resolver(template, parameter_overrides={"ExistingApiKeySecretArn": existing})
    assert not with_existing.resource_enabled("ApiKeySecret")
    resolved = with_existing.resolve(function_property(template, "IngestFunction", "Environment"))["Variables"]
    assert resolved["TWELVELABS_API_KEY_SECRET"] == existing


def test_parameters_map_onto_settings(template: dict[str, Any]) -> None:
    overrides = {"MaxWaitSeconds": "60", "ReservedBatchSlots": "2", "ContentCounting": "windows", "MaxAttempts": "5"}
    resolver = offline_resolver(template, parameter_overrides=overrides)
    variables = resolver.resolve(function_property(template, "FlusherFunction", "Environment"))["Variables"]
    settings = Settings.from_env({k: str(v) for k, v in variables.items()})
    assert (settings.max_wait_seconds, settings.reserved_batch_slots) == (60.0, 2)
    assert (settings.content_counting, settings.max_attempts) == ("windows", 5)


# --- functions and their wiring ---------------------------------------------------------------------------------


@pytest.mark.parametrize("function_id", ALL_FUNCTIONS)
def test_handler_file_exists_and_defines_handler(template: dict[str, Any], function_id: str) -> None:
    code_uri = props(template, function_id)["CodeUri"]
    module, _, attribute = props(template, function_id)["Handler"].partition(".")
    path = REPO / code_uri / f"{module}.py"
    assert path.is_file(), path
    tree = ast.parse(path.read_text())
    assert attribute in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_globals_runtime_layer_and_architecture(template: dict[str, Any]) -> None:
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Layers"] == [{"Ref": "SharedLayer"}]
    layer = resource(template, "SharedLayer")
    assert layer["Properties"]["ContentUri"] == "shared/"
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    assert (REPO / "shared" / "requirements.txt").is_file()


def test_the_flusher_reserves_concurrency_only_when_asked(template: dict[str, Any]) -> None:
    # A new account's quota of 10 cannot spare a reservation (Lambda keeps 10 unreserved); the lease keeps one flusher.
    assert "ReservedConcurrentExecutions" not in offline_resolver(template).resolve(props(template, "FlusherFunction"))
    reserved = offline_resolver(template, parameter_overrides={"FlusherReservedConcurrency": "1"})
    assert reserved.resolve(props(template, "FlusherFunction"))["ReservedConcurrentExecutions"] == "1"
    others = [f for f in FUNCTIONS if f != "FlusherFunction"]
    assert all("ReservedConcurrentExecutions" not in props(template, f) for f in others)
    assert template["Globals"]["Function"].get("ReservedConcurrentExecutions") is None


def test_the_stack_can_be_deleted_and_deployed_again_under_the_same_name(template: dict[str, Any]) -> None:
    # Retained resources must not carry a fixed name the next deploy would collide with.
    for logical_id, spec in template["Resources"].items():
        if spec.get("DeletionPolicy") != "Retain":
            continue
        properties = spec.get("Properties", {})
        named = {"Name", "BucketName", "TableName", "LogGroupName", "QueueName"} & set(properties)
        assert not named, f"{logical_id} is retained with a fixed {named}"


@pytest.mark.parametrize("function_id", ALL_FUNCTIONS)
def test_each_function_logs_to_its_own_log_group_with_a_retention(
    template: dict[str, Any], resolver: Resolver, function_id: str
) -> None:
    logging_config = props(template, function_id)["LoggingConfig"]
    group_id = logging_config["LogGroup"]["Ref"]
    group = resource(template, group_id)
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
    users = [f for f in ALL_FUNCTIONS if props(template, f)["LoggingConfig"]["LogGroup"] == {"Ref": group_id}]
    assert users == [function_id]
    # Created with its function (a log group without it would be an empty leftover).
    assert group.get("Condition") == resource(template, function_id).get("Condition")


def test_ingest_concurrency_is_capped_for_bursts(template: dict[str, Any], resolver: Resolver) -> None:
    (event,) = props(template, "IngestFunction")["Events"].values()
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "IngestMaximumConcurrency"}}
    parameter = template["Parameters"]["IngestMaximumConcurrency"]
    assert (parameter["Default"], parameter["MinValue"]) == (5, 2)  # Lambda's minimum for SQS sources is 2


def test_no_active_tracing_without_a_tracer(template: dict[str, Any]) -> None:
    # Decided in docs/deploy.md ("Tracing"): traces without Tracer's subsegments add cost and an xray:* grant only.
    assert all(function_property(template, f, "Tracing") is None for f in ALL_FUNCTIONS)


def test_schedules_come_from_parameters(template: dict[str, Any], resolver: Resolver) -> None:
    expected = {
        "AssetCheckerFunction": "rate(1 minute)",
        "FlusherFunction": "rate(1 minute)",
        "BatchCheckerFunction": "rate(1 minute)",
        "SweeperFunction": "rate(15 minutes)",
    }
    for function_id, rate in expected.items():
        (event,) = props(template, function_id)["Events"].values()
        assert event["Type"] == "Schedule"
        schedule = event["Properties"]["Schedule"]
        # A parameter, or (the batch checker) one of two parameters as EnableWebhooks decides.
        assert "Ref" in schedule or all("Ref" in choice for choice in schedule["Fn::If"][1:])
        assert resolver.resolve(schedule) == rate


@pytest.mark.parametrize(
    ("overrides", "rate"),
    [
        ({}, "rate(1 minute)"),
        (WEBHOOKS_ON, "rate(5 minutes)"),
        ({**WEBHOOKS_ON, "WebhookBatchCheckRate": "rate(2 minutes)"}, "rate(2 minutes)"),
        ({"WebhookBatchCheckRate": "rate(2 minutes)"}, "rate(1 minute)"),  # no effect without webhooks
    ],
)
def test_webhooks_slow_the_batch_check_schedule_and_its_alarms_follow(
    template: dict[str, Any], overrides: dict[str, str], rate: str
) -> None:
    decide = offline_resolver(template, parameter_overrides=overrides)
    (event,) = props(template, "BatchCheckerFunction")["Events"].values()
    assert decide.resolve(event["Properties"]["Schedule"]) == rate
    for name in ("BatchCheckerHeartbeatAlarm", "BatchCheckerErrorsAlarm"):
        alarm = alarms(template, decide)[name]
        # Each period holds at least two scheduled runs, whichever rate the parameters allow.
        assert int(alarm["Period"]) >= 2 * rate_seconds(rate)
    allowed = template["Parameters"]["WebhookBatchCheckRate"]["AllowedValues"]
    slowest = max(rate_seconds(choice) for choice in allowed)
    period = alarms(template, offline_resolver(template, parameter_overrides=WEBHOOKS_ON))["BatchCheckerHeartbeatAlarm"]
    assert int(period["Period"]) >= 2 * slowest


def test_ingest_reads_the_queue_with_partial_batch_responses(template: dict[str, Any], resolver: Resolver) -> None:
    (event,) = props(template, "IngestFunction")["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= event["Properties"]["BatchSize"] <= 10
    queue = props(template, "IngestQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    assert 3 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    # Lambda wants the visibility timeout to be at least six times the function timeout.
    assert queue["VisibilityTimeout"] >= 6 * template["Globals"]["Function"]["Timeout"]


def test_upload_rule_matches_only_this_bucket_outside_the_results_prefix(
    template: dict[str, Any], resolver: Resolver
) -> None:
    rule = resolver.resolve(props(template, "UploadRule"))
    assert rule["EventBusName"] == "default"
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [resolver.resolve({"Ref": "VideoBucket"})]
    assert pattern["detail"]["object"]["key"] == [{"anything-but": {"prefix": "results/"}}]
    assert rule["Targets"] == [{"Id": "IngestQueue", "Arn": resolver.resolve({"Fn::GetAtt": ["IngestQueue", "Arn"]})}]


@pytest.mark.parametrize("prefix", ["results/", "a-b_c.d/e/", "Results9/"])
def test_every_allowed_results_prefix_reads_the_same_url_encoded(template: dict[str, Any], prefix: str) -> None:
    """The upload rule compares ResultsPrefix with the key as S3 sends it (URL-encoded): they must be equal."""

    pattern = re.compile(template["Parameters"]["ResultsPrefix"]["AllowedPattern"])
    assert pattern.fullmatch(prefix)
    assert quote_plus(prefix, safe="/") == prefix
    for refused in ("my results/", "résultats/", "a+b/", "(x)/", "100%/"):
        assert not pattern.fullmatch(refused), refused


def test_only_the_upload_and_deletion_rules_may_send_to_the_queue(template: dict[str, Any]) -> None:
    statements = props(template, "IngestQueuePolicy")["PolicyDocument"]["Statement"]
    assert [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in statements] == [
        {"Fn::GetAtt": ["UploadRule", "Arn"]},
        {"Fn::GetAtt": ["DeletionRule", "Arn"]},
    ]
    for statement in statements:
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Resource"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}


def test_the_deletion_rule_matches_this_buckets_deletions_outside_the_results_prefix(
    template: dict[str, Any], resolver: Resolver
) -> None:
    rule = resolver.resolve(props(template, "DeletionRule"))
    upload = resolver.resolve(props(template, "UploadRule"))
    assert rule["EventPattern"]["detail-type"] == ["Object Deleted"]
    assert {k: v for k, v in rule["EventPattern"].items() if k != "detail-type"} == {
        k: v for k, v in upload["EventPattern"].items() if k != "detail-type"
    }
    assert rule["Targets"] == upload["Targets"]


def test_scheduler_role_is_scoped_to_the_batch_checker(template: dict[str, Any], resolver: Resolver) -> None:
    role = props(template, "SchedulerRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert [s["Action"] for s in statements] == ["lambda:InvokeFunction"]
    arns = resolver.resolve(statements[0]["Resource"])
    checker_arn = resolver.resolve(function_property(template, "FlusherFunction", "Environment"))["Variables"][
        "BATCH_CHECKER_ARN"
    ]
    assert arns == [checker_arn, f"{checker_arn}:*"]
    assert resolver.resolve({"Fn::GetAtt": ["BatchCheckerFunction", "Arn"]}) == checker_arn


# --- data at rest and in transit --------------------------------------------------------------------------------


def test_bucket_is_private_encrypted_versioned_and_emits_to_eventbridge(template: dict[str, Any]) -> None:
    bucket = props(template, "VideoBucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any("NoncurrentVersionExpiration" in rule and rule["Status"] == "Enabled" for rule in rules)


def test_bucket_policy_denies_plain_http(template: dict[str, Any]) -> None:
    policy = props(template, "VideoBucketPolicy")
    assert policy["Bucket"] == {"Ref": "VideoBucket"}
    (statement,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "DenyInsecureTransport"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [{"Fn::GetAtt": ["VideoBucket", "Arn"]}, {"Fn::Sub": "${VideoBucket.Arn}/*"}]


RESULT_WRITERS = [{"Fn::GetAtt": ["BatchCheckerFunctionRole", "Arn"]}, {"Fn::GetAtt": ["SweeperFunctionRole", "Arn"]}]


@pytest.mark.parametrize(
    ("policy_id", "bucket_id"), [("VideoBucketPolicy", "VideoBucket"), ("ResultsBucketPolicy", "ResultsBucket")]
)
def test_only_the_result_writers_may_put_objects_under_the_results_prefix(
    template: dict[str, Any], policy_id: str, bucket_id: str
) -> None:
    (statement,) = [
        s
        for s in props(template, policy_id)["PolicyDocument"]["Statement"]
        if s["Sid"] == "OnlyThePipelineWritesResults"
    ]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "s3:PutObject")
    assert statement["Resource"] == {"Fn::Sub": f"${{{bucket_id}.Arn}}/${{ResultsPrefix}}*"}
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": RESULT_WRITERS}}
    # The writers are exactly the functions granted s3:PutObject.
    writers = {f"{f}Role" for f in FUNCTIONS if "s3:PutObject" in granted_actions(template, f)}
    assert {w["Fn::GetAtt"][0] for w in RESULT_WRITERS} == writers


def test_a_separate_results_bucket_is_optional_and_gets_the_results_grants(template: dict[str, Any]) -> None:
    same = offline_resolver(template, stack_name="prod")
    assert not same.resource_enabled("ResultsBucket")
    variables = same.resolve(function_property(template, "BatchCheckerFunction", "Environment"))["Variables"]
    assert Settings.from_env({k: str(v) for k, v in variables.items()}).results_bucket == ""
    separate = offline_resolver(template, stack_name="prod", parameter_overrides={"SeparateResultsBucket": "true"})
    assert separate.resource_enabled("ResultsBucket")
    assert separate.resource_enabled("ResultsBucketPolicy")
    bucket = separate.resolve({"Ref": "ResultsBucket"})
    variables = separate.resolve(function_property(template, "BatchCheckerFunction", "Environment"))["Variables"]
    assert Settings.from_env({k: str(v) for k, v in variables.items()}).results_bucket == bucket
    for function_id in ("BatchCheckerFunction", "SweeperFunction"):
        resources = {
            arn
            for owner, statement in policy_statements(template)
            if owner == function_id and {"s3:PutObject", "s3:GetObject"} & set(as_list(statement["Action"]))
            for arn in as_list(separate.resolve(statement["Resource"]))
        }
        assert resources == {f"arn:aws:s3:::{bucket}/results/*"}
    results = separate.resolve(props(template, "ResultsBucket"))
    assert results["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(results["PublicAccessBlockConfiguration"].values())
    assert "NotificationConfiguration" not in results  # results are never ingested


def test_only_the_stacks_functions_may_put_events_on_its_bus(template: dict[str, Any]) -> None:
    policy = props(template, "EventBusPolicy")
    assert policy["EventBusName"] == {"Ref": "EventBus"}
    statement = policy["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "events:PutEvents")
    assert statement["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    roles = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert roles == [{"Fn::GetAtt": [f"{f}Role", "Arn"]} for f in FUNCTIONS]
    assert all("events:PutEvents" in granted_actions(template, f) for f in FUNCTIONS)


def test_the_api_key_secret_has_no_fixed_name(template: dict[str, Any]) -> None:
    secret = resource(template, "ApiKeySecret")
    assert "Name" not in secret["Properties"]
    assert secret["DeletionPolicy"] == "Retain"


def test_table_keys_indexes_ttl_and_protection(template: dict[str, Any]) -> None:
    table = resource(template, "ItemsTable")
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    p = table["Properties"]
    assert p["BillingMode"] == "PAY_PER_REQUEST"
    assert p["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    key_names = ("pk", "sk", "gsi1pk", "gsi1sk")
    assert {d["AttributeName"]: d["AttributeType"] for d in p["AttributeDefinitions"]} == dict.fromkeys(key_names, "S")
    indexes = {index["IndexName"]: index for index in p["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"gsi1"}
    assert indexes["gsi1"]["KeySchema"] == [
        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
    ]
    assert indexes["gsi1"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert p["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert p["SSESpecification"] == {"SSEEnabled": True}


def test_queues_are_encrypted(template: dict[str, Any]) -> None:
    for queue in ("IngestQueue", "IngestDeadLetterQueue"):
        assert props(template, queue)["SqsManagedSseEnabled"] is True


# --- least privilege --------------------------------------------------------------------------------------------


def test_functions_use_explicit_statements_not_policy_templates(template: dict[str, Any]) -> None:
    for function_id in ALL_FUNCTIONS:
        for document in props(template, function_id)["Policies"]:
            assert isinstance(document, dict)
            assert set(document) == {"Version", "Statement"}, f"{function_id} uses a managed or template policy"


def test_no_wildcard_action_or_resource(template: dict[str, Any]) -> None:
    statements = list(policy_statements(template))
    assert len(statements) > 20
    for owner, statement in statements:
        actions = as_list(statement["Action"])
        assert all(a != "*" and not a.endswith(":*") for a in actions), (owner, statement)
        if statement.get("Resource") == "*" or "*" in as_list(statement.get("Resource")):
            assert set(actions) <= RESOURCE_WILDCARD_ALLOWED, (owner, statement)


def test_each_function_gets_only_its_own_kind_of_access(template: dict[str, Any]) -> None:
    # The sweeper runs the batch checker for batches whose expiry check was missed.
    writes_results = {f for f in FUNCTIONS if "s3:PutObject" in granted_actions(template, f)}
    assert writes_results == {"BatchCheckerFunction", "SweeperFunction"}
    # The flusher schedules the expiry check of each batch it creates; the sweeper of each batch it adopts.
    creates_schedules = {f for f in FUNCTIONS if "scheduler:CreateSchedule" in granted_actions(template, f)}
    assert creates_schedules == {"FlusherFunction", "SweeperFunction"}
    passes_role = {f for f in FUNCTIONS if "iam:PassRole" in granted_actions(template, f)}
    assert passes_role == {"FlusherFunction", "SweeperFunction"}
    deletes_schedules = {f for f in FUNCTIONS if "scheduler:DeleteSchedule" in granted_actions(template, f)}
    assert deletes_schedules == {"BatchCheckerFunction", "SweeperFunction"}
    deleters = {f for f in FUNCTIONS if any(a.startswith("dynamodb:Delete") for a in granted_actions(template, f))}
    assert deleters == {"FlusherFunction"}  # releasing its lease, nothing else
    assert not any(a == "dynamodb:Scan" for f in FUNCTIONS for a in granted_actions(template, f))
    for function_id in FUNCTIONS:
        assert "secretsmanager:GetSecretValue" in granted_actions(template, function_id)
        assert "events:PutEvents" in granted_actions(template, function_id)
    # Starting another function: the closing of a batch starts the flusher, a notification the batch checker.
    invokers = {f for f in ALL_FUNCTIONS if "lambda:InvokeFunction" in granted_actions(template, f)}
    assert invokers == {"BatchCheckerFunction", "SweeperFunction", WEBHOOK}
    # The webhook publishes nothing, writes no item and reads no object: one put (its replay guard), one read.
    webhook_actions = granted_actions(template, WEBHOOK)
    assert webhook_actions == {
        "secretsmanager:GetSecretValue",
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "lambda:InvokeFunction",
    }


@pytest.mark.parametrize("function_id", ["BatchCheckerFunction", "SweeperFunction"])
def test_results_writes_are_confined_to_the_results_prefix(
    template: dict[str, Any], resolver: Resolver, function_id: str
) -> None:
    (statement,) = [
        s for owner, s in policy_statements(template) if owner == function_id and "s3:PutObject" in as_list(s["Action"])
    ]
    assert resolver.resolve(statement["Resource"]) == "arn:aws:s3:::prod-videobucket/results/*"


@pytest.mark.parametrize("function_id", ["FlusherFunction", "SweeperFunction"])
def test_pass_role_is_limited_to_the_scheduler(template: dict[str, Any], function_id: str) -> None:
    (statement,) = [
        s for owner, s in policy_statements(template) if owner == function_id and s["Action"] == "iam:PassRole"
    ]
    assert statement["Resource"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


# --- least privilege, derived from what the code calls ----------------------------------------------------------
#
# ADAPTER_CALLS: each adapter method -> the (IAM action, resource) pairs its boto3 calls need, read from
# shared/videobatch/adapters/*.py. SERVICE_CALLS / SERVICE_RUNS / FUNCTION_SERVICES: which adapter methods each
# function's code path reaches (functions/* -> Runtime.*_service() -> services/*.py, including the services a
# service runs). The template must grant exactly their union:
# nothing missing (AccessDenied in production) and nothing extra. tests/infra/test_iam_observed.py runs the real
# handlers on the local stack and checks every AWS call they make is in this table.
#
# Resources: table, gsi1 (the table's index), uploads (bucket/*), results (bucket/<ResultsPrefix>*), bus,
# secret, expiry_schedules (schedule/<group>/*), scheduler_role, ingest_queue.

Grant = tuple[str, str]

ADAPTER_CALLS: dict[str, frozenset[Grant]] = {
    # DynamoItemRepository
    "items.create": frozenset({("dynamodb:PutItem", "table"), ("dynamodb:GetItem", "table")}),  # get when it exists
    "items.get": frozenset({("dynamodb:GetItem", "table")}),
    "items.get_many": frozenset({("dynamodb:BatchGetItem", "table")}),
    "items.save": frozenset({("dynamodb:PutItem", "table")}),  # a conditional put, never UpdateItem
    # The index keeps keys only: the listed records are read with BatchGetItem.
    "items.iter_queue": frozenset({("dynamodb:Query", "gsi1"), ("dynamodb:BatchGetItem", "table")}),
    # DynamoBatchRepository / DynamoClaimRepository
    "batches.create": frozenset({("dynamodb:PutItem", "table"), ("dynamodb:GetItem", "table")}),
    "batches.get": frozenset({("dynamodb:GetItem", "table")}),
    "batches.get_progress": frozenset({("dynamodb:GetItem", "table")}),
    "batches.save_progress": frozenset({("dynamodb:PutItem", "table")}),
    "batches.iter_open": frozenset({("dynamodb:Query", "gsi1"), ("dynamodb:BatchGetItem", "table")}),
    "claims.create": frozenset({("dynamodb:PutItem", "table")}),
    "claims.get": frozenset({("dynamodb:GetItem", "table")}),
    "claims.save": frozenset({("dynamodb:PutItem", "table")}),
    "claims.iter_pending": frozenset({("dynamodb:Query", "gsi1"), ("dynamodb:BatchGetItem", "table")}),
    # DynamoLeaseStore
    "leases.acquire": frozenset({("dynamodb:PutItem", "table")}),
    "leases.inspect": frozenset({("dynamodb:GetItem", "table")}),
    "leases.release": frozenset({("dynamodb:DeleteItem", "table")}),
    # S3ObjectStore: HeadObject needs s3:GetObject; with a VersionId, s3:GetObjectVersion.
    "objects.head": frozenset({("s3:GetObject", "uploads"), ("s3:GetObjectVersion", "uploads")}),
    "objects.read_range": frozenset({("s3:GetObject", "uploads"), ("s3:GetObjectVersion", "uploads")}),
    # TwelveLabs fetches the presigned URL with the signer's rights.
    "objects.presigned_get_url": frozenset({("s3:GetObject", "uploads"), ("s3:GetObjectVersion", "uploads")}),
    # PutObject If-None-Match; on 412 GetObject (no VersionId) to compare.
    "objects.write_once": frozenset({("s3:PutObject", "results"), ("s3:GetObject", "results")}),
    # SqsUploadQueue: an unfinished multipart upload's event back on the ingest queue (SendMessageBatch).
    "continuations.send": frozenset({("sqs:SendMessage", "ingest_queue")}),
    # EventBridgePublisher, BatchExpiryScheduler, SecretApiKeyProvider
    "events.publish": frozenset({("events:PutEvents", "bus")}),
    "scheduler.schedule_batch_check": frozenset(
        {("scheduler:CreateSchedule", "expiry_schedules"), ("iam:PassRole", "scheduler_role")}
    ),
    "scheduler.cancel_batch_check": frozenset({("scheduler:DeleteSchedule", "expiry_schedules")}),
    "api_key": frozenset({("secretsmanager:GetSecretValue", "secret")}),  # build_runtime, every function
    # DynamoOutcomeLedger (every ItemWriter that ends an item): journal entries, then the day's counters.
    "ledger.record": frozenset({("dynamodb:BatchWriteItem", "table"), ("dynamodb:UpdateItem", "table")}),
    # DynamoControlStore: the flusher reads the pause switch before planning.
    "control.load": frozenset({("dynamodb:GetItem", "table")}),
    # S3ObjectStore, the latest-result pointers: read the current one back, then overwrite it.
    "objects.read": frozenset({("s3:GetObject", "results")}),
    "objects.overwrite": frozenset({("s3:PutObject", "results")}),
    # S3ObjectStore, an "Object Deleted" behind a delete marker: the key's versions (ListObjectVersions).
    "objects.iter_versions": frozenset({("s3:ListBucketVersions", "bucket")}),
    # LambdaInvoker (InvocationType Event): the flusher when a batch closes, the batch checker on a notification.
    "invoker.start_flusher": frozenset({("lambda:InvokeFunction", "flusher")}),
    "invoker.start_batch_checker": frozenset({("lambda:InvokeFunction", "batch_checker")}),
    # DynamoReplayGuard: a conditional put of WEBHOOK#<signature>.
    "replays.first_seen": frozenset({("dynamodb:PutItem", "table")}),
    # SecretApiKeyProvider of WEBHOOK_SECRET (build_runtime, when set).
    "webhook_secret": frozenset({("secretsmanager:GetSecretValue", "webhook_secret")}),
}

# Each service's own adapter calls (services/*.py), then the services each one runs.
SERVICE_CALLS: dict[str, tuple[str, ...]] = {
    "IngestService": (
        "items.get",
        "items.create",
        "items.save",
        "objects.head",
        "objects.read_range",  # sniffing, and each multipart chunk (a ranged GET of exactly its bytes)
        "objects.presigned_get_url",
        "continuations.send",
        "events.publish",
        "ledger.record",
    ),
    # "Object Deleted" events, on the ingest queue beside the uploads.
    "ObjectDeletedService": (
        "objects.iter_versions",
        "items.get_many",
        "items.save",
        "events.publish",
        "ledger.record",
    ),
    "AssetCheckService": ("items.iter_queue", "items.save", "events.publish", "ledger.record"),
    # ReconcileService and its SubmissionRecorder: pending claims, adopting the batch found or releasing the claim.
    "ReconcileService": (
        "claims.iter_pending",
        "claims.get",
        "claims.save",
        "items.get_many",
        "items.save",
        "batches.create",
        "scheduler.schedule_batch_check",
        "events.publish",
    ),
    "FlushService": (
        "leases.acquire",
        "leases.release",
        "batches.iter_open",
        "items.iter_queue",
        "items.save",
        "claims.create",
        "claims.save",
        "events.publish",
        "ledger.record",
        "control.load",
    ),
    "BatchCheckService": (
        "items.iter_queue",
        "batches.iter_open",
        "batches.get",
        "batches.get_progress",
        "batches.save_progress",
        "items.get_many",
        "items.save",
        "objects.write_once",
        "objects.read",
        "objects.overwrite",
        "scheduler.cancel_batch_check",
        "events.publish",
        "ledger.record",
        "invoker.start_flusher",
    ),
    # A notification that names a task is looked up at TwelveLabs (the API key, as every function reads).
    "WebhookService": ("webhook_secret", "replays.first_seen", "batches.get_progress", "invoker.start_batch_checker"),
    "SweepService": (
        "leases.inspect",
        "leases.acquire",  # the daily orphan-asset pass (services.asset_janitor)
        "items.iter_queue",
        "items.get_many",
        "items.save",
        "claims.get",
        "batches.iter_open",
        "batches.get",
        "batches.get_progress",
        "batches.create",
        "batches.save_progress",
        "scheduler.schedule_batch_check",
        "events.publish",
        "ledger.record",
    ),
}
SERVICE_RUNS: dict[str, tuple[str, ...]] = {
    "IngestService": ("ObjectDeletedService",),  # the same function handles both kinds of message
    "FlushService": ("ReconcileService",),  # older pending claims first, so slots are counted right
    "SweepService": ("ReconcileService", "AssetCheckService", "BatchCheckService"),
}
# functions/* -> Runtime.*_service(); every function builds the runtime, which reads the API key.
FUNCTION_SERVICES: dict[str, str] = {
    "IngestFunction": "IngestService",
    "AssetCheckerFunction": "AssetCheckService",
    "FlusherFunction": "FlushService",
    "BatchCheckerFunction": "BatchCheckService",
    "SweeperFunction": "SweepService",
    WEBHOOK: "WebhookService",
}


def service_calls(service: str) -> set[str]:
    return set(SERVICE_CALLS[service]).union(*(service_calls(inner) for inner in SERVICE_RUNS.get(service, ())))


def function_calls(function_id: str) -> set[str]:
    return {"api_key"} | service_calls(FUNCTION_SERVICES[function_id])


def required_grants(function_id: str) -> set[Grant]:
    return {grant for call in function_calls(function_id) for grant in ADAPTER_CALLS[call]}


def resource_kind(resolver: Resolver, arn: str) -> str:
    """Name a resolved resource ARN by what it is (the vocabulary of ADAPTER_CALLS)."""
    table = resolver.resolve({"Fn::GetAtt": ["ItemsTable", "Arn"]})
    bucket = resolver.resolve({"Fn::GetAtt": ["VideoBucket", "Arn"]})
    group = resolver.resolve({"Ref": "ExpiryScheduleGroup"})
    kinds = {
        table: "table",
        f"{table}/index/gsi1": "gsi1",
        bucket: "bucket",
        f"{bucket}/*": "uploads",
        f"{bucket}/{resolver.resolve({'Ref': 'ResultsPrefix'})}*": "results",
        resolver.resolve({"Fn::GetAtt": ["EventBus", "Arn"]}): "bus",
        resolver.resolve({"Ref": "ApiKeySecret"}): "secret",
        f"arn:aws:scheduler:us-east-1:123456789012:schedule/{group}/*": "expiry_schedules",
        resolver.resolve({"Fn::GetAtt": ["SchedulerRole", "Arn"]}): "scheduler_role",
        resolver.resolve({"Fn::GetAtt": ["FlusherFunction", "Arn"]}): "flusher",
        resolver.resolve({"Fn::GetAtt": ["BatchCheckerFunction", "Arn"]}): "batch_checker",
        resolver.resolve({"Fn::GetAtt": ["IngestQueue", "Arn"]}): "ingest_queue",
    }
    if resolver.resource_enabled("WebhookSecret"):
        kinds[resolver.resolve({"Ref": "WebhookSecret"})] = "webhook_secret"
    assert arn in kinds, f"unexpected resource {arn}"
    return kinds[arn]


def template_grants(template: dict[str, Any], resolver: Resolver, function_id: str) -> set[Grant]:
    return {
        (action, resource_kind(resolver, arn))
        for owner, statement in policy_statements(template, resolver)
        if owner == function_id and statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        for arn in as_list(resolver.resolve(statement["Resource"]))
    }


def test_the_call_table_covers_every_function_and_adapter_method() -> None:
    assert set(FUNCTION_SERVICES) == set(ALL_FUNCTIONS)
    used = {call for function_id in ALL_FUNCTIONS for call in function_calls(function_id)}
    assert used == set(ADAPTER_CALLS), "an adapter method nobody uses, or a use without a table entry"


@pytest.mark.parametrize("function_id", ALL_FUNCTIONS)
def test_each_function_is_granted_exactly_what_its_code_path_calls(
    template: dict[str, Any], webhooks: Resolver, function_id: str
) -> None:
    granted = template_grants(template, webhooks, function_id)
    required = required_grants(function_id)
    assert required - granted == set(), f"{function_id} lacks these"
    assert granted - required == set(), f"{function_id} is granted more than its code uses"


@pytest.mark.parametrize(
    ("function_id", "grant"),
    [
        ("AssetCheckerFunction", ("dynamodb:PutItem", "table")),
        ("FlusherFunction", ("dynamodb:DeleteItem", "table")),
        ("BatchCheckerFunction", ("dynamodb:BatchGetItem", "table")),
        ("BatchCheckerFunction", ("s3:GetObject", "results")),
        ("SweeperFunction", ("dynamodb:Query", "gsi1")),
        ("SweeperFunction", ("dynamodb:GetItem", "table")),
        ("SweeperFunction", ("dynamodb:PutItem", "table")),
        ("SweeperFunction", ("dynamodb:BatchGetItem", "table")),
        ("SweeperFunction", ("events:PutEvents", "bus")),
        ("SweeperFunction", ("secretsmanager:GetSecretValue", "secret")),
        ("SweeperFunction", ("scheduler:CreateSchedule", "expiry_schedules")),
        ("SweeperFunction", ("iam:PassRole", "scheduler_role")),
    ],
)
def test_grants_the_adapters_were_missing(
    template: dict[str, Any], resolver: Resolver, function_id: str, grant: Grant
) -> None:
    assert grant in template_grants(template, resolver, function_id)


def test_the_results_read_back_is_confined_to_the_results_prefix(template: dict[str, Any], resolver: Resolver) -> None:
    grants = template_grants(template, resolver, "BatchCheckerFunction")
    assert {kind for action, kind in grants if action.startswith("s3:")} == {"results"}


# --- alarms and outputs -----------------------------------------------------------------------------------------


# The metrics the alarms and the dashboard read, with the dimension names each is emitted with (namespace
# MetricsNamespace; "service" is Powertools' default dimension, POWERTOOLS_SERVICE_NAME). Heartbeat comes from
# videobatch.handler in a blob of its own; the rest from the services and the handler decorator.
SERVICE = ("service",)
METRIC_CONTRACT: dict[str, tuple[str, ...]] = {
    "Heartbeat": ("service", "function"),
    "ProfilesInvalid": SERVICE,
    "PipelineFaults": SERVICE,
    "OldestQueuedItemAgeSeconds": SERVICE,
    "OldestSubmittedItemAgeSeconds": SERVICE,
    "ItemsFailed": SERVICE,
    "ItemsFailedUser": SERVICE,
    "ItemsFailedPipeline": SERVICE,
    "TwelveLabsErrors": SERVICE,
    "TwelveLabsAuthErrors": SERVICE,
    "TwelveLabsThrottles": SERVICE,
    "TwelveLabsServerErrors": SERVICE,
    "FreeSlots": SERVICE,
    "ActiveBatches": SERVICE,
    "QueuedItems": SERVICE,
    "BatchesSubmitted": SERVICE,
    "ItemsSucceeded": SERVICE,
    "ItemsRequeued": SERVICE,
}
FUNCTION_DIMENSION = {
    "IngestFunction": "ingest",
    "AssetCheckerFunction": "asset_checker",
    "FlusherFunction": "flusher",
    "BatchCheckerFunction": "batch_checker",
    "SweeperFunction": "sweeper",
}
SCHEDULE_PARAMETER = {
    "AssetCheckerFunction": "AssetCheckRate",
    "FlusherFunction": "FlushRate",
    "BatchCheckerFunction": "BatchCheckRate",
    "SweeperFunction": "SweepRate",
}


def alarms(template: dict[str, Any], resolver: Resolver) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resolver.resolve(spec["Properties"])
        for logical_id, spec in template["Resources"].items()
        if spec["Type"] == "AWS::CloudWatch::Alarm" and resolver.resource_enabled(logical_id)
    }


def rate_seconds(expression: str) -> int:
    amount, unit = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression).groups()  # type: ignore[union-attr]
    return int(amount) * {"minute": 60, "hour": 3600, "day": 86400}[unit]


def test_the_expected_alarms_exist(template: dict[str, Any], resolver: Resolver) -> None:
    expected = {
        "IngestDeadLetterAlarm",
        "OldestQueuedItemAlarm",
        "OldestSubmittedItemAlarm",
        "ItemsFailedPipelineAlarm",
        "TwelveLabsAuthErrorsAlarm",
        "TwelveLabsServerErrorsAlarm",
        "ProfilesInvalidAlarm",
    }
    expected |= {f"{f.removesuffix('Function')}HeartbeatAlarm" for f in SCHEDULE_PARAMETER}
    expected |= {f"{f.removesuffix('Function')}{kind}Alarm" for f in FUNCTIONS for kind in ("Errors", "Throttles")}
    assert set(alarms(template, resolver)) == expected


def test_every_custom_metric_alarm_follows_the_metric_contract(template: dict[str, Any], resolver: Resolver) -> None:
    variables = resolver.resolve(function_property(template, "FlusherFunction", "Environment"))["Variables"]
    service = variables["POWERTOOLS_SERVICE_NAME"]
    custom = {lid: a for lid, a in alarms(template, resolver).items() if a["Namespace"] == "VideoBatch"}
    assert len(custom) == 10
    for logical_id, alarm in custom.items():
        assert alarm["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
        names = tuple(d["Name"] for d in alarm["Dimensions"])
        assert names == METRIC_CONTRACT[alarm["MetricName"]], logical_id
        assert {"Name": "service", "Value": service} in alarm["Dimensions"]
        assert alarm["DatapointsToAlarm"] <= alarm["EvaluationPeriods"]


def test_the_failure_alarm_ignores_rejected_uploads(template: dict[str, Any], resolver: Resolver) -> None:
    alarm = alarms(template, resolver)["ItemsFailedPipelineAlarm"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == ("ItemsFailedPipeline", "Sum", 3600)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == ("0", "GreaterThanThreshold")


@pytest.mark.parametrize("function_id", list(SCHEDULE_PARAMETER))
def test_heartbeat_alarms_fit_their_schedules(template: dict[str, Any], resolver: Resolver, function_id: str) -> None:
    alarm = alarms(template, resolver)[f"{function_id.removesuffix('Function')}HeartbeatAlarm"]
    assert alarm["MetricName"] == "Heartbeat"
    assert {"Name": "function", "Value": FUNCTION_DIMENSION[function_id]} in alarm["Dimensions"]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "SampleCount",
        1,
        "LessThanThreshold",
    )
    # No run at all is no data: that must breach.
    assert alarm["TreatMissingData"] == "breaching"
    schedule = rate_seconds(template["Parameters"][SCHEDULE_PARAMETER[function_id]]["Default"])
    # Each period holds at least two scheduled runs (a run late by a minute never empties one), and the alarm
    # waits for at least three missed runs.
    assert alarm["Period"] >= 2 * schedule
    assert alarm["Period"] * alarm["DatapointsToAlarm"] >= 3 * schedule


@pytest.mark.parametrize("function_id", ALL_FUNCTIONS)
@pytest.mark.parametrize("kind", ["Errors", "Throttles"])
def test_lambda_alarms_watch_each_function(
    template: dict[str, Any], webhooks: Resolver, function_id: str, kind: str
) -> None:
    # With webhooks on, so the webhook function's alarms are checked too (they exist only then).
    alarm = alarms(template, webhooks)[f"{function_id.removesuffix('Function')}{kind}Alarm"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", kind, "Sum")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": webhooks.resolve({"Ref": function_id})}]
    assert alarm["TreatMissingData"] == "notBreaching"
    schedule = SCHEDULE_PARAMETER.get(function_id)
    if schedule is not None:
        # Every period of the evaluation holds a scheduled run, so a failing function fails in each of them.
        assert alarm["Period"] >= 2 * rate_seconds(template["Parameters"][schedule]["Default"])


def test_the_submitted_age_alarm_waits_past_a_batchs_life_and_its_expiry_check(
    template: dict[str, Any], resolver: Resolver
) -> None:
    alarm = alarms(template, resolver)["OldestSubmittedItemAlarm"]
    assert alarm["MetricName"] == "OldestSubmittedItemAgeSeconds"
    grace = template["Parameters"]["ExpiryGraceSeconds"]["Default"]
    assert int(alarm["Threshold"]) >= 24 * 3600 + grace + 1800


def test_alarm_actions_are_optional(template: dict[str, Any]) -> None:
    assert all(a["AlarmActions"] == [] == a["OKActions"] for a in alarms(template, offline_resolver(template)).values())
    topic = "arn:aws:sns:us-east-1:123456789012:ops"
    resolver = offline_resolver(template, parameter_overrides={"AlarmTopicArn": topic})
    assert not resolver.resource_enabled("AlarmTopic")
    assert all(a["AlarmActions"] == [topic] for a in alarms(template, resolver).values())


def test_an_alarm_email_gets_a_topic_the_alarms_notify(template: dict[str, Any]) -> None:
    resolver = offline_resolver(template, parameter_overrides={"AlarmEmail": "ops@example.com"})
    assert resolver.resource_enabled("AlarmTopic")
    assert resolver.resolve(props(template, "AlarmTopic"))["Subscription"] == [
        {"Protocol": "email", "Endpoint": "ops@example.com"}
    ]
    topic = resolver.resolve({"Ref": "AlarmTopic"})
    assert all(a["AlarmActions"] == [topic] == a["OKActions"] for a in alarms(template, resolver).values())


def dashboard_metrics(template: dict[str, Any], resolver: Resolver) -> list[list[Any]]:
    body = json.loads(resolver.resolve(props(template, "Dashboard")["DashboardBody"]))
    return [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]


def test_the_dashboard_shows_only_metrics_that_exist(template: dict[str, Any], resolver: Resolver) -> None:
    function_names = {resolver.resolve({"Ref": f}) for f in FUNCTIONS}
    seen: set[str] = set()
    for metric in dashboard_metrics(template, resolver):
        namespace, name, *rest = metric
        dimensions = [d for d in rest if not isinstance(d, dict)]
        keys = tuple(dimensions[::2])
        if namespace == "AWS/Lambda":
            assert keys == ("FunctionName",)
            assert dimensions[1] in function_names
        else:
            assert namespace == "VideoBatch"
            assert keys == METRIC_CONTRACT[name], name
            assert dimensions[1] == "videobatch"
        seen.add(name)
    assert seen >= {
        "QueuedItems",
        "OldestQueuedItemAgeSeconds",
        "ActiveBatches",
        "FreeSlots",
        "BatchesSubmitted",
        "ItemsSucceeded",
        "ItemsFailedPipeline",
        "TwelveLabsServerErrors",
        "Errors",
        "Duration",
    }


def test_outputs_name_the_resources_a_client_needs(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) >= {
        "VideoBucketName",
        "ItemsTableName",
        "EventBusName",
        "IngestQueueUrl",
        "IngestDeadLetterQueueUrl",
    }


# --- the operators' additions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "action", "arn"),
    [
        ({}, None, None),
        (
            {"ProfilesParameterName": "/videobatch/profiles"},
            "ssm:GetParameter",
            "arn:aws:ssm:us-east-1:123456789012:parameter/videobatch/profiles",
        ),
        ({"ProfilesObject": "config-bucket/videobatch/profiles.json"}, "s3:GetObject", None),
    ],
)
def test_the_profiles_source_is_readable_by_every_function_and_only_when_set(
    template: dict[str, Any], overrides: dict[str, str], action: str | None, arn: str | None
) -> None:
    resolver = offline_resolver(template, stack_name="prod", parameter_overrides={**overrides, **WEBHOOKS_ON})
    for function_id in ALL_FUNCTIONS:
        variables = resolver.resolve(function_property(template, function_id, "Environment"))["Variables"]
        source = Settings.from_env({k: str(v) for k, v in variables.items()}).profiles_source
        statements = [
            s
            for owner, s in policy_statements(template, resolver)
            if owner == function_id and str(s.get("Sid", "")).startswith("ReadProfiles")
        ]
        if action is None:
            assert (source, statements) == ("", [])
            continue
        (statement,) = statements
        assert statement["Action"] == action
        resource = resolver.resolve(statement["Resource"])
        if action == "ssm:GetParameter":
            assert (source, resource) == ("ssm:/videobatch/profiles", arn)
        else:
            assert source == "s3://config-bucket/videobatch/profiles.json"
            assert resource == "arn:aws:s3:::config-bucket/videobatch/profiles.json"


def test_delete_assets_and_the_sweeper_output(template: dict[str, Any]) -> None:
    assert template["Parameters"]["DeleteAssets"]["Default"] == "never"
    resolver = offline_resolver(template, parameter_overrides={"DeleteAssets": "after_result"})
    variables = resolver.resolve(function_property(template, "BatchCheckerFunction", "Environment"))["Variables"]
    assert Settings.from_env({k: str(v) for k, v in variables.items()}).delete_assets == "after_result"
    assert template["Outputs"]["SweeperFunctionName"]["Value"] == {"Ref": "SweeperFunction"}
    assert template["Rules"]["OneProfilesSource"]["Assertions"][0]["Assert"] == {
        "Fn::Equals": [{"Ref": "ProfilesObject"}, ""]
    }


# --- the webhook fast path --------------------------------------------------------------------------------------


def test_webhooks_are_off_by_default(template: dict[str, Any]) -> None:
    assert template["Parameters"]["EnableWebhooks"]["Default"] == "false"
    off = offline_resolver(template)
    optional = [lid for lid, spec in template["Resources"].items() if spec.get("Condition") == "WebhooksEnabled"]
    assert sorted(optional) == [
        "WebhookErrorsAlarm",
        "WebhookFunction",
        "WebhookLogGroup",
        "WebhookSecret",
        "WebhookThrottlesAlarm",
    ]
    assert not any(off.resource_enabled(lid) for lid in optional)
    assert {name for name, spec in template["Outputs"].items() if spec.get("Condition") == "WebhooksEnabled"} == {
        "WebhookUrl",
        "WebhookSecretArn",
    }
    # Nothing else knows the secret: without webhooks no function reads one.
    for function_id in FUNCTIONS:
        variables = off.resolve(function_property(template, function_id, "Environment"))["Variables"]
        assert Settings.from_env({k: str(v) for k, v in variables.items()}).webhook_secret == ""


def test_the_webhook_has_a_public_url_and_its_secret_by_arn(template: dict[str, Any], webhooks: Resolver) -> None:
    function = props(template, WEBHOOK)
    # TwelveLabs cannot sign AWS requests; TL-Signature is the authentication.
    assert function["FunctionUrlConfig"] == {"AuthType": "NONE"}
    assert template["Outputs"]["WebhookUrl"]["Value"] == {"Fn::GetAtt": ["WebhookFunctionUrl", "FunctionUrl"]}
    variables = webhooks.resolve(function_property(template, WEBHOOK, "Environment"))["Variables"]
    secret_arn = webhooks.resolve({"Ref": "WebhookSecret"})
    assert variables["WEBHOOK_SECRET"] == secret_arn
    assert secret_arn.startswith("arn:aws:secretsmanager:")
    # Only the webhook function reads it.
    readers = {
        owner
        for owner, statement in policy_statements(template, webhooks)
        if statement["Action"] == "secretsmanager:GetSecretValue" and statement["Resource"] == {"Ref": "WebhookSecret"}
    }
    assert readers == {WEBHOOK}
    secret = resource(template, "WebhookSecret")["Properties"]
    assert "Name" not in secret
    assert "SecretString" not in secret  # a generated placeholder, never a value in the template
    assert "GenerateSecretString" in secret
    alarm = alarms(template, webhooks)["WebhookErrorsAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": webhooks.resolve({"Ref": WEBHOOK})}]
    # Not scheduled: no heartbeat to expect.
    assert "WebhookHeartbeatAlarm" not in template["Resources"]


def test_the_webhook_writes_only_replay_guard_items_and_reads_only_batch_records(template: dict[str, Any]) -> None:
    dynamodb = {
        statement["Action"]: statement
        for owner, statement in policy_statements(template)
        if owner == WEBHOOK and str(statement["Action"]).startswith("dynamodb:")
    }
    assert set(dynamodb) == {"dynamodb:PutItem", "dynamodb:GetItem"}
    leading = {
        action: statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        for action, statement in dynamodb.items()
    }
    assert leading == {"dynamodb:PutItem": ["WEBHOOK#*"], "dynamodb:GetItem": ["BATCH#*"]}
    # The prefixes the adapters really write and read.
    from videobatch.adapters import dynamodb as adapter

    source = Path(adapter.__file__).read_text()
    assert 'f"WEBHOOK#{signature}"' in source
    assert 'f"BATCH#{batch_id}"' in source


def test_closing_a_batch_can_start_the_flusher_without_a_cycle(template: dict[str, Any], webhooks: Resolver) -> None:
    flusher_arn = webhooks.resolve({"Fn::GetAtt": ["FlusherFunction", "Arn"]})
    for function_id in ("BatchCheckerFunction", "SweeperFunction"):
        variables = webhooks.resolve(function_property(template, function_id, "Environment"))["Variables"]
        assert Settings.from_env({k: str(v) for k, v in variables.items()}).flusher_arn == flusher_arn
        (statement,) = [
            s
            for owner, s in policy_statements(template)
            if owner == function_id and s["Action"] == "lambda:InvokeFunction"
        ]
        assert webhooks.resolve(statement["Resource"]) == flusher_arn
    # The flusher's own environment names neither itself nor a function that refers to it.
    assert "FLUSHER_ARN" not in function_property(template, "FlusherFunction", "Environment")["Variables"]
    (start_check,) = [
        s for owner, s in policy_statements(template) if owner == WEBHOOK and s["Action"] == "lambda:InvokeFunction"
    ]
    checker = webhooks.resolve({"Fn::GetAtt": ["BatchCheckerFunction", "Arn"]})
    assert webhooks.resolve(start_check["Resource"]) == checker
