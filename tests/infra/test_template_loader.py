"""The CloudFormation YAML loader and the local intrinsic-function resolver."""

from __future__ import annotations

from pathlib import Path

import pytest

from videobatch_tools.localstack.template import (
    PhysicalResource,
    Pseudo,
    Resolver,
    UnresolvableError,
    load_template,
    parameter_values,
)

SOURCE = """
Parameters:
  Prefix: {Type: String, Default: results/}
  Mode: {Type: String, Default: "false", AllowedValues: ["true", "false"]}
  Topic: {Type: String, Default: ""}
Mappings:
  Sizes: {small: {memory: 128}}
Conditions:
  HasTopic: !Not [!Equals [!Ref Topic, ""]]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      Ref: !Ref Queue
      Arn: !GetAtt Queue.Arn
      ArnList: !GetAtt [Queue, Arn]
      Sub: !Sub "${AWS::StackName}-${Prefix}-${Queue.QueueName}-${!Literal}"
      SubVars: !Sub ["${X}/${AWS::Region}", {X: !Ref Prefix}]
      If: !If [HasTopic, !Ref Topic, !Ref AWS::NoValue]
      Join: !Join [":", [a, !Ref Mode]]
      Select: !Select [1, !Split [",", "x,y,z"]]
      Map: !FindInMap [Sizes, small, memory]
      Cond: !Condition HasTopic
      List: [1, !If [HasTopic, a, !Ref AWS::NoValue], 2]
"""


@pytest.fixture
def template(tmp_path: Path) -> dict:
    path = tmp_path / "t.yaml"
    path.write_text(SOURCE)
    return load_template(path)


def resolver(template: dict, **overrides: str) -> Resolver:
    return Resolver(
        template,
        parameters=parameter_values(template, overrides),
        pseudo=Pseudo(region="eu-west-1", account_id="123456789012", stack_name="s"),
        resources={"Queue": PhysicalResource("http://q", {"Arn": "arn:q", "QueueName": "qn"})},
    )


def test_short_tags_become_long_forms(template: dict) -> None:
    p = template["Resources"]["Queue"]["Properties"]
    assert p["Ref"] == {"Ref": "Queue"}
    assert p["Arn"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert p["ArnList"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert p["If"] == {"Fn::If": ["HasTopic", {"Ref": "Topic"}, {"Ref": "AWS::NoValue"}]}
    assert p["Cond"] == {"Condition": "HasTopic"}
    assert template["Conditions"]["HasTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Topic"}, ""]}]}


def test_resolver_evaluates_every_supported_function(template: dict) -> None:
    p = resolver(template).resolve(template["Resources"]["Queue"]["Properties"])
    assert p == {
        "Ref": "http://q",
        "Arn": "arn:q",
        "ArnList": "arn:q",
        "Sub": "s-results/-qn-${Literal}",
        "SubVars": "results//eu-west-1",
        "Join": "a:false",
        "Select": "y",
        "Map": 128,
        "Cond": False,
        "List": [1, 2],
    }


def test_conditions_follow_parameters(template: dict) -> None:
    p = resolver(template, Topic="arn:topic").resolve(template["Resources"]["Queue"]["Properties"])
    assert p["If"] == "arn:topic"
    assert p["List"] == [1, "a", 2]


def test_parameters_are_checked(template: dict) -> None:
    with pytest.raises(ValueError, match="not one of"):
        parameter_values(template, {"Mode": "maybe"})
    with pytest.raises(ValueError, match="unknown template parameters"):
        parameter_values(template, {"Nope": "1"})


def test_unknown_references_are_errors_not_guesses(template: dict) -> None:
    r = resolver(template)
    with pytest.raises(UnresolvableError):
        r.resolve({"Ref": "Missing"})
    with pytest.raises(UnresolvableError):
        r.resolve({"Fn::GetAtt": ["Queue", "DoesNotExist"]})
    with pytest.raises(UnresolvableError):
        r.resolve({"Fn::ImportValue": "x"})


def test_rejects_files_that_are_not_templates(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\n")
    with pytest.raises(ValueError, match="not a CloudFormation template"):
        load_template(path)
