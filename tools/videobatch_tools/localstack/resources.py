"""Create the template's AWS resources in moto, from the template's own definitions.

Every created resource takes its names, keys, indexes, attributes and patterns from template.yaml, so the local
stack cannot drift from what is deployed. Resource types the local stack has no use for are listed in
``NOT_CREATED`` with the reason; any other type makes ``create_stack`` fail, so a new resource in the template is
a conscious decision here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from videobatch_tools.localstack.moto_server import DEFAULT_REGION, LOCAL_ACCOUNT_ID, local_session
from videobatch_tools.localstack.template import (
    PhysicalResource,
    Pseudo,
    Resolver,
    UnresolvableError,
    function_ids,
    function_property,
    parameter_values,
)

NOT_CREATED: Mapping[str, str] = {
    "AWS::Serverless::Function": "LocalWiring calls the handlers in-process",
    "AWS::Lambda::Function": "LocalWiring calls the handlers in-process",
    "AWS::Serverless::LayerVersion": "the shared package is imported directly",
    "AWS::IAM::Role": "moto does not enforce IAM; roles only need their ARN",
    # moto evaluates bucket policies against its one dummy caller over plain HTTP, not the functions' roles over
    # TLS: both statements (TLS only, results written only by their writers) would refuse every local request.
    # tests/infra/test_template.py checks them.
    "AWS::S3::BucketPolicy": "moto would evaluate it against its one dummy caller over plain HTTP",
}

_NAME_PROPERTY: Mapping[str, str] = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
}


@dataclass(frozen=True)
class LocalFunction:
    logical_id: str
    name: str
    arn: str
    handler: str
    code_uri: str
    timeout_seconds: int
    memory_mb: int
    # The function's resolved Environment.Variables (Settings names plus Powertools).
    environment: Mapping[str, str]
    # Where Lambda writes its logs: LoggingConfig.LogGroup, else /aws/lambda/<name>.
    log_group: str = ""


@dataclass(frozen=True)
class LocalStack:
    template: Mapping[str, Any]
    stack_name: str
    region: str
    account_id: str
    endpoint_url: str
    parameters: Mapping[str, str]
    resources: Mapping[str, PhysicalResource]
    functions: Mapping[str, LocalFunction]
    outputs: Mapping[str, str]
    created: tuple[str, ...] = field(default=())

    def resolver(self) -> Resolver:
        return Resolver(self.template, parameters=self.parameters, pseudo=self.pseudo, resources=self.resources)

    @property
    def pseudo(self) -> Pseudo:
        return Pseudo(region=self.region, account_id=self.account_id, stack_name=self.stack_name)

    def env(self, function_id: str) -> dict[str, str]:
        """The environment a handler sees: the template's variables plus the ones Lambda itself sets."""
        function = self.functions[function_id]
        return {
            **function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": self.region,
        }

    def logical_id_for_arn(self, arn: str) -> str | None:
        for logical_id, resource in self.resources.items():
            if resource.attributes.get("Arn") == arn:
                return logical_id
        return None


def create_stack(
    template: Mapping[str, Any],
    *,
    stack_name: str,
    endpoint_url: str,
    parameter_overrides: Mapping[str, str] | None = None,
    api_key: str,
    region: str = DEFAULT_REGION,
    session: boto3.session.Session | None = None,
    secret_values: Mapping[str, str] | None = None,
) -> LocalStack:
    """Create the template's resources in the moto server at ``endpoint_url`` and describe the result.

    Every secret holds ``api_key`` (the template's placeholder replaced, as an operator would), except those
    named in ``secret_values`` (logical id -> value: the webhook signing secret)."""
    parameters = parameter_values(template, parameter_overrides or {})
    pseudo = Pseudo(region=region, account_id=LOCAL_ACCOUNT_ID, stack_name=stack_name)
    resources: dict[str, PhysicalResource] = {}
    resolver = Resolver(template, parameters=parameters, pseudo=pseudo, resources=resources)
    _plan_names(template, resolver, pseudo, endpoint_url, resources)
    builder = _Builder(
        session or local_session(region), endpoint_url, resolver, resources, api_key, secret_values=secret_values
    )
    created = builder.create_all(template)
    return _describe(
        template,
        resolver,
        pseudo,
        endpoint_url=endpoint_url,
        parameters=parameters,
        resources=resources,
        created=tuple(created),
    )


def plan_stack(
    template: Mapping[str, Any],
    *,
    stack_name: str,
    parameter_overrides: Mapping[str, str] | None = None,
    region: str = DEFAULT_REGION,
    endpoint_url: str = "memory://local",
) -> LocalStack:
    """The stack ``create_stack`` would describe, with nothing created anywhere (the in-memory backend).

    Names, ARNs, queue URLs, function environments and outputs are resolved exactly as for moto; the secret keeps
    its planned ARN (no Secrets Manager adds a suffix) and nothing reads it (the key is passed in directly).
    """
    parameters = parameter_values(template, parameter_overrides or {})
    pseudo = Pseudo(region=region, account_id=LOCAL_ACCOUNT_ID, stack_name=stack_name)
    resources: dict[str, PhysicalResource] = {}
    resolver = Resolver(template, parameters=parameters, pseudo=pseudo, resources=resources)
    _plan_names(template, resolver, pseudo, endpoint_url, resources)
    return _describe(template, resolver, pseudo, endpoint_url=endpoint_url, parameters=parameters, resources=resources)


def _describe(
    template: Mapping[str, Any],
    resolver: Resolver,
    pseudo: Pseudo,
    *,
    endpoint_url: str,
    parameters: dict[str, str],
    resources: dict[str, PhysicalResource],
    created: tuple[str, ...] = (),
) -> LocalStack:
    # Only the functions and outputs the template's conditions create (WebhookFunction needs EnableWebhooks).
    functions = {
        fid: _local_function(template, fid, resolver, resources)
        for fid in function_ids(template)
        if resolver.resource_enabled(fid)
    }
    outputs = {
        name: str(resolver.resolve(spec["Value"]))
        for name, spec in template.get("Outputs", {}).items()
        if "Condition" not in spec or resolver.condition(spec["Condition"])
    }
    return LocalStack(
        template=template,
        stack_name=pseudo.stack_name,
        region=pseudo.region,
        account_id=pseudo.account_id,
        endpoint_url=endpoint_url,
        parameters=parameters,
        resources=resources,
        functions=functions,
        outputs=outputs,
        created=created,
    )


def offline_resolver(
    template: Mapping[str, Any],
    *,
    stack_name: str = "videobatch",
    parameter_overrides: Mapping[str, str] | None = None,
    region: str = DEFAULT_REGION,
    endpoint_url: str = "http://127.0.0.1:0",
) -> Resolver:
    """A resolver with the local names of every resource, without creating anything (for template checks)."""
    parameters = parameter_values(template, parameter_overrides or {})
    pseudo = Pseudo(region=region, account_id=LOCAL_ACCOUNT_ID, stack_name=stack_name)
    resources: dict[str, PhysicalResource] = {}
    resolver = Resolver(template, parameters=parameters, pseudo=pseudo, resources=resources)
    _plan_names(template, resolver, pseudo, endpoint_url, resources)
    return resolver


def _plan_names(
    template: Mapping[str, Any],
    resolver: Resolver,
    pseudo: Pseudo,
    endpoint_url: str,
    resources: dict[str, PhysicalResource],
) -> None:
    """Give every resource its local physical name and ARNs; names may refer to other names, so iterate."""
    pending = dict(template["Resources"])
    # SAM creates "<FunctionId>Role" for a function without a Role; the template may refer to it (policies do).
    for logical_id, spec in template["Resources"].items():
        if spec.get("Type") == "AWS::Serverless::Function" and "Role" not in spec.get("Properties", {}):
            name = f"{pseudo.stack_name}-{logical_id}Role"
            arn = f"arn:{pseudo.partition}:iam::{pseudo.account_id}:role/{name}"
            resources[f"{logical_id}Role"] = PhysicalResource(name, {"Arn": arn, "RoleId": name})
        # SAM creates "<FunctionId>Url" (AWS::Lambda::Url) for a FunctionUrlConfig; the outputs refer to it. The
        # address has AWS's shape; locally the requests reach the function through ``localstack.function_url``.
        if spec.get("Type") == "AWS::Serverless::Function" and "FunctionUrlConfig" in spec.get("Properties", {}):
            url_id = f"{pseudo.stack_name}-{logical_id}".lower()
            url = f"https://{url_id}.lambda-url.{pseudo.region}.on.aws/"
            resources[f"{logical_id}Url"] = PhysicalResource(url, {"FunctionUrl": url})
    while pending:
        progressed = False
        for logical_id, spec in list(pending.items()):
            try:
                resources[logical_id] = _physical(logical_id, spec, resolver, pseudo, endpoint_url)
            except UnresolvableError:
                continue
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise UnresolvableError(f"cannot name resources locally: {sorted(pending)}")


def _physical(
    logical_id: str, spec: Mapping[str, Any], resolver: Resolver, pseudo: Pseudo, endpoint_url: str
) -> PhysicalResource:
    kind = spec["Type"]
    props = spec.get("Properties", {})
    explicit = props.get(_NAME_PROPERTY.get(kind, ""))
    name = str(resolver.resolve(explicit)) if explicit is not None else f"{pseudo.stack_name}-{logical_id}"
    region, account = pseudo.region, pseudo.account_id
    prefix = f"arn:{pseudo.partition}"
    if kind == "AWS::S3::Bucket":
        name = name.lower()[:63] if explicit is None else name
        return PhysicalResource(name, {"Arn": f"{prefix}:s3:::{name}"})
    if kind == "AWS::SQS::Queue":
        url = f"{endpoint_url}/{account}/{name}"
        return PhysicalResource(
            url, {"Arn": f"{prefix}:sqs:{region}:{account}:{name}", "QueueName": name, "QueueUrl": url}
        )
    simple_arns: dict[str, str] = {
        "AWS::DynamoDB::Table": f"{prefix}:dynamodb:{region}:{account}:table/{name}",
        "AWS::Events::EventBus": f"{prefix}:events:{region}:{account}:event-bus/{name}",
        "AWS::Scheduler::ScheduleGroup": f"{prefix}:scheduler:{region}:{account}:schedule-group/{name}",
        "AWS::IAM::Role": f"{prefix}:iam::{account}:role/{name}",
        "AWS::Serverless::Function": f"{prefix}:lambda:{region}:{account}:function:{name}",
        "AWS::Lambda::Function": f"{prefix}:lambda:{region}:{account}:function:{name}",
        "AWS::Logs::LogGroup": f"{prefix}:logs:{region}:{account}:log-group:{name}:*",
        "AWS::CloudWatch::Alarm": f"{prefix}:cloudwatch:{region}:{account}:alarm:{name}",
        # Secrets Manager appends a random suffix; the builder replaces this with the real ARN.
        "AWS::SecretsManager::Secret": f"{prefix}:secretsmanager:{region}:{account}:secret:{name}",
    }
    if kind == "AWS::Events::Rule":
        bus = str(resolver.resolve(props.get("EventBusName", "default")))
        path = name if bus == "default" else f"{bus}/{name}"
        return PhysicalResource(name, {"Arn": f"{prefix}:events:{region}:{account}:rule/{path}"})
    if kind == "AWS::Serverless::LayerVersion":
        return PhysicalResource(f"{prefix}:lambda:{region}:{account}:layer:{name}:1")
    if kind == "AWS::SecretsManager::Secret":
        arn = simple_arns[kind]
        return PhysicalResource(arn, {"Arn": arn, "Name": name})
    if kind == "AWS::SNS::Topic":
        # !Ref of a topic is its ARN.
        arn = f"{prefix}:sns:{region}:{account}:{name}"
        return PhysicalResource(arn, {"TopicArn": arn, "TopicName": name})
    if kind in simple_arns:
        return PhysicalResource(name, {"Arn": simple_arns[kind], "Name": name})
    return PhysicalResource(name)


def _local_function(
    template: Mapping[str, Any], logical_id: str, resolver: Resolver, resources: Mapping[str, PhysicalResource]
) -> LocalFunction:
    variables = resolver.resolve(function_property(template, logical_id, "Environment"))["Variables"]
    logging_config = resolver.resolve(function_property(template, logical_id, "LoggingConfig") or {})
    name = resources[logical_id].ref
    return LocalFunction(
        logical_id=logical_id,
        name=resources[logical_id].ref,
        arn=resources[logical_id].attributes["Arn"],
        handler=str(function_property(template, logical_id, "Handler")),
        code_uri=str(function_property(template, logical_id, "CodeUri")),
        # Lambda's defaults when neither the function nor Globals say.
        timeout_seconds=int(function_property(template, logical_id, "Timeout") or 3),
        memory_mb=int(function_property(template, logical_id, "MemorySize") or 128),
        environment={key: _env_text(value) for key, value in variables.items()},
        log_group=str(logging_config.get("LogGroup") or f"/aws/lambda/{name}"),
    )


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


# CloudFormation queue properties that are SQS attributes under the same name.
_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DelaySeconds",
    "FifoQueue",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


class _Builder:
    """Creates resources in dependency order: secret, queues (dead-letter first), the rest, then rules."""

    _ORDER = (
        "AWS::SecretsManager::Secret",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::Events::EventBus",
        "AWS::Events::EventBusPolicy",
        "AWS::Events::Rule",
        "AWS::Scheduler::ScheduleGroup",
        "AWS::Logs::LogGroup",
        "AWS::SNS::Topic",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
    )

    def __init__(
        self,
        session: boto3.session.Session,
        endpoint_url: str,
        resolver: Resolver,
        resources: dict[str, PhysicalResource],
        api_key: str,
        *,
        secret_values: Mapping[str, str] | None = None,
    ) -> None:
        self._secret_values = dict(secret_values or {})
        self._session = session
        self._endpoint = endpoint_url
        self._resolver = resolver
        self._resources = resources
        self._api_key = api_key
        self._creators: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::SQS::Queue": self._queue,
            "AWS::SQS::QueuePolicy": self._queue_policy,
            "AWS::DynamoDB::Table": self._table,
            "AWS::S3::Bucket": self._bucket,
            "AWS::Events::EventBus": self._event_bus,
            "AWS::Events::Rule": self._rule,
            "AWS::Scheduler::ScheduleGroup": self._schedule_group,
            # moto stores these without enforcing or evaluating them; the local stack's own alarm evaluator
            # (``alarms``) reads the template's definitions.
            "AWS::Events::EventBusPolicy": self._event_bus_policy,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::SNS::Topic": self._topic,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::CloudWatch::Dashboard": self._dashboard,
        }

    def create_all(self, template: Mapping[str, Any]) -> list[str]:
        specs: Mapping[str, Any] = template["Resources"]
        unknown = {s["Type"] for s in specs.values()} - set(self._creators) - set(NOT_CREATED)
        if unknown:
            raise NotImplementedError(f"the local stack does not know how to create {sorted(unknown)}")
        created: list[str] = []
        for kind in self._ORDER:
            ids = [lid for lid, spec in specs.items() if spec["Type"] == kind and self._resolver.resource_enabled(lid)]
            if kind == "AWS::SQS::Queue":
                # A queue's RedrivePolicy names its dead-letter queue, which must exist first.
                ids.sort(key=lambda lid: "RedrivePolicy" in specs[lid].get("Properties", {}))
            for logical_id in ids:
                self._creators[kind](logical_id, self._resolver.resolve(specs[logical_id].get("Properties", {})))
                created.append(logical_id)
        return created

    def _client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self._endpoint)  # type: ignore[call-overload]

    def _secret(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._resources[logical_id].attributes["Name"]
        # The template's GenerateSecretString placeholder is replaced by the local key, as an operator would.
        value = self._secret_values.get(logical_id, self._api_key)
        response = self._client("secretsmanager").create_secret(
            Name=name, Description=props.get("Description", ""), SecretString=value
        )
        arn = response["ARN"]
        self._resources[logical_id] = PhysicalResource(arn, {"Arn": arn, "Name": name})

    def _queue(self, logical_id: str, props: dict[str, Any]) -> None:
        current = self._resources[logical_id]
        attributes = {key: _attribute_text(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
        url = self._client("sqs").create_queue(QueueName=current.attributes["QueueName"], Attributes=attributes)[
            "QueueUrl"
        ]
        self._resources[logical_id] = PhysicalResource(url, {**current.attributes, "QueueUrl": url})

    def _queue_policy(self, logical_id: str, props: dict[str, Any]) -> None:
        sqs = self._client("sqs")
        for url in props["Queues"]:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})

    def _table(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._resources[logical_id].ref
        dynamodb = self._client("dynamodb")
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"):
            if key in props:
                request[key] = props[key]
        if "SSESpecification" in props:
            sse = props["SSESpecification"]
            request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled", False))} | (
                {"SSEType": sse["SSEType"]} if "SSEType" in sse else {}
            )
        if "StreamSpecification" in props:
            request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        if "DeletionProtectionEnabled" in props:
            request["DeletionProtectionEnabled"] = bool(props["DeletionProtectionEnabled"])
        dynamodb.create_table(**request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])},
            )
        pitr = props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
        if pitr:
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )

    def _bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._resources[logical_id].ref
        s3 = self._client("s3")
        region = self._session.region_name
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "BucketEncryption" in props:
            # CloudFormation's ServerSideEncryptionByDefault is the S3 API's ApplyServerSideEncryptionByDefault.
            rules = [
                {("Apply" + k if k == "ServerSideEncryptionByDefault" else k): v for k, v in rule.items()}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
            )
        if "LifecycleConfiguration" in props:
            rules = [_lifecycle_rule(rule) for rule in props["LifecycleConfiguration"]["Rules"]]
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
        notifications = props.get("NotificationConfiguration", {})
        if set(notifications) - {"EventBridgeConfiguration"}:
            raise NotImplementedError(f"{logical_id}: only EventBridge notifications are supported locally")
        if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )

    def _event_bus(self, logical_id: str, props: dict[str, Any]) -> None:
        self._client("events").create_event_bus(Name=self._resources[logical_id].ref)

    def _rule(self, logical_id: str, props: dict[str, Any]) -> None:
        events = self._client("events")
        name = self._resources[logical_id].ref
        bus = props.get("EventBusName", "default")
        request: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            request["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            request["ScheduleExpression"] = props["ScheduleExpression"]
        if "Description" in props:
            request["Description"] = props["Description"]
        events.put_rule(**request)
        if props.get("Targets"):
            events.put_targets(Rule=name, EventBusName=bus, Targets=props["Targets"])

    def _schedule_group(self, logical_id: str, props: dict[str, Any]) -> None:
        self._client("scheduler").create_schedule_group(Name=self._resources[logical_id].ref)

    def _event_bus_policy(self, logical_id: str, props: dict[str, Any]) -> None:
        events = self._client("events")
        if "Statement" not in props:
            raise NotImplementedError(f"{logical_id}: only the Statement form of EventBusPolicy is supported locally")
        statement = {"Sid": props["StatementId"], **props["Statement"]}
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        events.put_permission(EventBusName=props.get("EventBusName", "default"), Policy=json.dumps(policy))

    def _log_group(self, logical_id: str, props: dict[str, Any]) -> None:
        logs = self._client("logs")
        name = self._resources[logical_id].ref
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))

    def _topic(self, logical_id: str, props: dict[str, Any]) -> None:
        sns = self._client("sns")
        arn = sns.create_topic(Name=self._resources[logical_id].attributes["TopicName"])["TopicArn"]
        for subscription in props.get("Subscription", []):
            sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])

    def _alarm(self, logical_id: str, props: dict[str, Any]) -> None:
        request = {key: props[key] for key in _ALARM_PROPERTIES if key in props}
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in request:
                request[key] = int(request[key])
        request["Threshold"] = float(props["Threshold"])
        self._client("cloudwatch").put_metric_alarm(AlarmName=self._resources[logical_id].ref, **request)

    def _dashboard(self, logical_id: str, props: dict[str, Any]) -> None:
        body = props["DashboardBody"]
        json.loads(body)  # CloudWatch refuses a body that is not JSON; so does the local stack
        self._client("cloudwatch").put_dashboard(DashboardName=self._resources[logical_id].ref, DashboardBody=body)


# CloudFormation alarm properties that are PutMetricAlarm parameters under the same name (Threshold converted).
_ALARM_PROPERTIES = (
    "ActionsEnabled",
    "AlarmActions",
    "AlarmDescription",
    "ComparisonOperator",
    "DatapointsToAlarm",
    "Dimensions",
    "EvaluateLowSampleCountPercentile",
    "EvaluationPeriods",
    "ExtendedStatistic",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "OKActions",
    "Period",
    "Statistic",
    "TreatMissingData",
    "Unit",
)


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape -> the S3 API's."""
    converted: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        converted["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    unsupported = set(rule) - {
        "Id",
        "Status",
        "Prefix",
        "ExpirationInDays",
        "NoncurrentVersionExpiration",
        "AbortIncompleteMultipartUpload",
    }
    if unsupported:
        raise NotImplementedError(f"lifecycle rule fields not supported locally: {sorted(unsupported)}")
    return converted
