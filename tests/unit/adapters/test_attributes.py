"""The adapters' attribute values against boto3's TypeSerializer/TypeDeserializer, value by value.

The adapters stopped importing boto3 (adapters/attributes.py says why); what DynamoDB receives and what a record
reads back must not change with it. boto3 stays the reference here, as the official SDK is for the emulator.
"""

import json
import random
from decimal import Decimal, Inexact
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from videobatch.adapters.attributes import from_attribute, from_item, to_attribute, to_item

SAME_AS_BOTO3 = [
    None,
    True,
    False,
    0,
    -7,
    2**63,
    10**37,
    Decimal("0.1"),
    Decimal("-1.50"),
    Decimal("1E+5"),
    Decimal("12345678901234567890123456789012345678"),  # 38 digits: the most DynamoDB holds
    "",
    "a key/with spaces+and%2Bescapes é 🎬",
    [],
    {},
    [1, "two", None, [False], {"three": Decimal("3.25")}],
    {"windows": [{"index": 0, "start": Decimal("0"), "end": Decimal("3600.5")}], "note": None},
    ("a", 1),  # a tuple is a list to both
]


@pytest.mark.parametrize("value", SAME_AS_BOTO3, ids=repr)
def test_a_value_is_written_and_read_as_boto3_does(value: Any) -> None:
    written = to_attribute(value)
    assert written == TypeSerializer().serialize(value)
    assert from_attribute(written) == TypeDeserializer().deserialize(written)


REFUSED_LIKE_BOTO3 = [
    (1.5, TypeError, "Float types are not supported"),
    (Decimal("NaN"), TypeError, "Infinity and NaN"),
    (Decimal("Infinity"), TypeError, "Infinity and NaN"),
    (Decimal("123456789012345678901234567890123456789"), Inexact, None),  # 39 digits: DynamoDB would round
    (Decimal("0.1234567890123456789012345678901234567891"), Inexact, None),
    (object(), TypeError, "Unsupported type"),
    ({"nested": [1.5]}, TypeError, "Float types"),  # found wherever it sits
]


@pytest.mark.parametrize(("value", "error", "message"), REFUSED_LIKE_BOTO3, ids=lambda v: repr(v)[:30])
def test_a_value_boto3_refuses_is_refused(value: Any, error: type[Exception], message: str | None) -> None:
    with pytest.raises(error, match=message):
        TypeSerializer().serialize(value)
    with pytest.raises(error, match=message):
        to_attribute(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (Decimal("-Infinity"), "boto3 sends it and DynamoDB refuses the request: refused before the call"),
        (b"bytes", "no record holds binary"),
        ({"a", "b"}, "no record holds a set (a set would reach DynamoDB in no defined order)"),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_what_no_record_holds_is_refused_where_boto3_would_send_it(value: Any, reason: str) -> None:
    with pytest.raises(TypeError):
        to_attribute(value)


@pytest.mark.parametrize(
    "attribute",
    [{"B": b"x"}, {"SS": ["a"]}, {"NS": ["1"]}, {"BS": [b"x"]}, {}, {"S": "a", "N": "1"}],
    ids=repr,
)
def test_an_attribute_no_record_writes_is_refused_on_read(attribute: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        from_attribute(attribute)


def test_numbers_read_back_as_decimal_in_dynamodbs_context() -> None:
    assert from_attribute({"N": "3600.50"}) == Decimal("3600.50")
    assert isinstance(from_attribute({"N": "7"}), Decimal)
    with pytest.raises(Inexact):  # a number DynamoDB could not have stored is no number of ours
        from_attribute({"N": "1" * 39})


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(8 if depth < 4 else 5)
    if choice == 0:
        return None
    if choice == 1:
        return rng.random() < 0.5
    if choice == 2:
        return rng.randrange(-(10**12), 10**12)
    if choice == 3:
        return json.loads(json.dumps(rng.uniform(-1e6, 1e6)), parse_float=Decimal)  # as the adapters parse JSON
    if choice == 4:
        return "".join(rng.choice("ab /%+é🎬\x00") for _ in range(rng.randrange(6)))
    if choice in (5, 6):
        return {f"k{index}": _random_json(rng, depth + 1) for index in range(rng.randrange(4))}
    return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_records_of_every_shape_match_boto3_both_ways() -> None:
    rng, serializer, deserializer = random.Random(13), TypeSerializer(), TypeDeserializer()
    for _ in range(500):
        record = {f"field{index}": _random_json(rng) for index in range(rng.randrange(1, 6))}
        written = to_item(record)
        assert written == {name: serializer.serialize(value) for name, value in record.items()}
        assert from_item(written) == {name: deserializer.deserialize(value) for name, value in written.items()}
        assert from_item(written) == record
