"""The local EventBridge pattern matcher used to route S3 events."""

from __future__ import annotations

import pytest

from videobatch_tools.localstack.event_patterns import UnsupportedPatternError, matches

UPLOAD_RULE = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"bucket": {"name": ["videos"]}, "object": {"key": [{"anything-but": {"prefix": "results/"}}]}},
}


def s3_event(bucket: str = "videos", key: str = "in/a.mp4", detail_type: str = "Object Created") -> dict:
    return {
        "source": "aws.s3",
        "detail-type": detail_type,
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10}},
    }


def test_upload_rule() -> None:
    assert matches(UPLOAD_RULE, s3_event())
    assert not matches(UPLOAD_RULE, s3_event(key="results/a.json"))
    assert not matches(UPLOAD_RULE, s3_event(bucket="other"))
    assert not matches(UPLOAD_RULE, s3_event(detail_type="Object Deleted"))
    assert not matches(UPLOAD_RULE, {"source": "aws.s3", "detail-type": "Object Created"})


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ([{"prefix": "in/"}], "in/x", True),
        ([{"prefix": "in/"}], "out/x", False),
        ([{"suffix": ".mp4"}], "a.mp4", True),
        ([{"anything-but": ["a", "b"]}], "c", True),
        ([{"anything-but": ["a", "b"]}], "a", False),
        ([{"anything-but": {"suffix": ".json"}}], "a.json", False),
        ([{"equals-ignore-case": "ABC"}], "abc", True),
        ([{"wildcard": "in/*.mp4"}], "in/x/y.mp4", True),
        ([{"wildcard": "in/*.mp4"}], "in/x.mov", False),
        ([{"numeric": [">", 5, "<=", 10]}], 10, True),
        ([{"numeric": [">", 5]}], 5, False),
        ([{"numeric": [">", 5]}], "6", False),
        ([5], "5", False),
        (["a"], ["x", "a"], True),
    ],
)
def test_filters(rule: list, value: object, expected: bool) -> None:
    assert matches({"f": rule}, {"f": value}) is expected


def test_exists() -> None:
    assert matches({"f": [{"exists": True}]}, {"f": 1})
    assert not matches({"f": [{"exists": True}]}, {})
    assert matches({"f": [{"exists": False}]}, {})
    assert not matches({"f": [{"exists": False}]}, {"f": 1})


def test_or() -> None:
    pattern = {"$or": [{"a": ["1"]}, {"b": ["2"]}]}
    assert matches(pattern, {"b": "2"})
    assert not matches(pattern, {"a": "2", "b": "1"})


def test_unsupported_filters_raise() -> None:
    with pytest.raises(UnsupportedPatternError):
        matches({"ip": [{"cidr": "10.0.0.0/8"}]}, {"ip": "10.1.1.1"})
