"""Read template.yaml the way CloudFormation does, far enough for the local stack.

The loader turns CloudFormation short tags (``!Ref``, ``!GetAtt``, ``!Sub``...) into their long forms
(``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``...). The resolver evaluates intrinsic functions against parameter
values, pseudo parameters, conditions and a map of local physical names, so the local stack builds everything
from the template itself instead of from a copy that could drift.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_SHORT_TAGS = (
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAZs",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "And",
    "Equals",
    "If",
    "Not",
    "Or",
    "Length",
    "ToJsonString",
)


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that also understands CloudFormation's short-form intrinsic tags."""


def _plain(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node!r}", node.start_mark)


def _long_form(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {name: _plain(loader, node)}

    return construct


def _get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _plain(loader, node)
    if isinstance(value, str):
        # "!GetAtt Resource.Attr.With.Dots": only the first dot separates the logical id.
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


CfnLoader.add_constructor("!Ref", _long_form("Ref"))
CfnLoader.add_constructor("!Condition", _long_form("Condition"))
CfnLoader.add_constructor("!GetAtt", _get_att)
for _tag in _SHORT_TAGS:
    CfnLoader.add_constructor(f"!{_tag}", _long_form(f"Fn::{_tag}"))


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template into plain dicts with long-form intrinsics."""
    with Path(path).open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    if not isinstance(document, dict) or "Resources" not in document:
        raise ValueError(f"{path} is not a CloudFormation template (no Resources)")
    return document


def default_template_path() -> Path:
    """template.yaml at the repository root (this file sits in tools/videobatch_tools/localstack/)."""
    return Path(__file__).resolve().parents[3] / "template.yaml"


class UnresolvableError(LookupError):
    """A reference the local resolver cannot satisfy (unknown name, attribute or unsupported function)."""


class _NoValue:
    """AWS::NoValue: the property it stands in is dropped."""


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class PhysicalResource:
    """What !Ref and !GetAtt return for one logical resource in the local stack."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pseudo:
    region: str
    account_id: str
    stack_name: str
    partition: str = "aws"

    def lookup(self, name: str) -> str | None:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:stack/"
            f"{self.stack_name}/00000000-0000-0000-0000-000000000000",
        }.get(name)


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    """Every parameter's value: the override, else the default; a parameter with neither is an error."""
    declared: Mapping[str, Any] = template.get("Parameters", {})
    unknown = set(overrides) - set(declared)
    if unknown:
        raise ValueError(f"unknown template parameters: {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            value = overrides[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise ValueError(f"template parameter {name} has no default and no value was given")
        allowed = spec.get("AllowedValues")
        # CloudFormation passes every parameter as a string (Numbers included).
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if allowed is not None and text not in [str(a) for a in allowed]:
            raise ValueError(f"template parameter {name}={text!r} is not one of {allowed}")
        values[name] = text
    return values


_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


class Resolver:
    """Evaluates intrinsic functions for the local stack."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameters: Mapping[str, str],
        pseudo: Pseudo,
        resources: Mapping[str, PhysicalResource],
    ) -> None:
        self._template = template
        self._parameters = parameters
        self._pseudo = pseudo
        self._resources = resources
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = self._template.get("Conditions", {}).get(name)
            if spec is None:
                raise UnresolvableError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(spec))
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        """False when the resource's Condition is false (CloudFormation would not create it)."""
        name = self._template["Resources"][logical_id].get("Condition")
        return name is None or self.condition(name)

    def resolve(self, node: Any) -> Any:
        """Return ``node`` with every intrinsic evaluated (AWS::NoValue removes the enclosing entry)."""
        if isinstance(node, list):
            return [item for item in (self.resolve(i) for i in node) if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self._ref(value)
            if key == "Condition" and isinstance(value, str):
                return self.condition(value)
            if key.startswith("Fn::"):
                return self._function(key, value)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self._parameters:
            return self._parameters[name]
        pseudo = self._pseudo.lookup(name)
        if pseudo is not None:
            return pseudo
        if name in self._resources:
            return self._resources[name].ref
        raise UnresolvableError(f"!Ref {name}: no such parameter or local resource")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        resource = self._resources.get(logical_id)
        if resource is None:
            raise UnresolvableError(f"!GetAtt {logical_id}.{attribute}: no such local resource")
        if attribute not in resource.attributes:
            raise UnresolvableError(f"!GetAtt {logical_id}.{attribute}: attribute not known locally")
        return resource.attributes[attribute]

    def _function(self, name: str, value: Any) -> Any:
        handlers = {
            "Fn::GetAtt": lambda v: self._get_att(*self._get_att_args(v)),
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
            "Fn::Equals": lambda v: str(self.resolve(v[0])) == str(self.resolve(v[1])),
            "Fn::Not": lambda v: not self.resolve(v[0]),
            "Fn::And": lambda v: all(self.resolve(c) for c in v),
            "Fn::Or": lambda v: any(self.resolve(c) for c in v),
            "Fn::Join": lambda v: str(v[0]).join(str(p) for p in self.resolve(v[1])),
            "Fn::Select": lambda v: self.resolve(v[1])[int(self.resolve(v[0]))],
            "Fn::Split": lambda v: str(self.resolve(v[1])).split(v[0]),
            "Fn::FindInMap": self._find_in_map,
        }
        handler = handlers.get(name)
        if handler is None:
            raise UnresolvableError(f"{name} is not supported by the local resolver")
        return handler(value)

    def _get_att_args(self, value: Any) -> tuple[str, str]:
        resolved = self.resolve(value)
        return str(resolved[0]), str(resolved[1])

    def _if(self, value: list[Any]) -> Any:
        name, when_true, when_false = value
        return self.resolve(when_true if self.condition(name) else when_false)

    def _find_in_map(self, value: list[Any]) -> Any:
        map_name, top, second = (self.resolve(v) for v in value)
        try:
            return self._template["Mappings"][map_name][top][second]
        except KeyError as exc:
            raise UnresolvableError(f"!FindInMap {map_name}.{top}.{second}: not in Mappings") from exc

    def _sub(self, value: Any) -> str:
        if isinstance(value, list):
            text, variables = value[0], {k: self.resolve(v) for k, v in value[1].items()}
        else:
            text, variables = value, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._get_att(logical_id, attribute)
            return str(self._ref(name))

        # "${!Literal}" is CloudFormation's escape for a literal "${Literal}".
        return _SUB_VAR.sub(replace, str(text)).replace("${!", "${")


def function_ids(template: Mapping[str, Any]) -> list[str]:
    """Logical ids of the template's Lambda functions (SAM or plain)."""
    return [
        logical_id
        for logical_id, spec in template["Resources"].items()
        if spec.get("Type") in {"AWS::Serverless::Function", "AWS::Lambda::Function"}
    ]


def function_property(template: Mapping[str, Any], logical_id: str, name: str) -> Any:
    """A function property as SAM sees it: the function's own value, else the Globals value.

    Environment variables merge (function entries win), as SAM does.
    """
    own = template["Resources"][logical_id].get("Properties", {})
    global_props = template.get("Globals", {}).get("Function", {})
    if name == "Environment":
        variables = {
            **global_props.get("Environment", {}).get("Variables", {}),
            **own.get("Environment", {}).get("Variables", {}),
        }
        return {"Variables": variables}
    return own.get(name, global_props.get(name))
