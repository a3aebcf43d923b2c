"""DynamoDB attribute values for what records hold (JSON's values, numbers as Decimal), without importing boto3.

boto3's ``TypeSerializer``/``TypeDeserializer`` do this, but importing ``boto3.dynamodb.types`` runs the boto3
package (its session, s3transfer, multiprocessing: ~20 ms of every cold start) for a few lines of code, and the
Lambda functions otherwise need botocore only. The rules are boto3's, held side by side with it in
tests/unit/adapters/test_attributes.py: a number goes through DynamoDB's decimal context (38 digits; a float, a NaN
or a number it cannot hold exactly is refused, never rounded), None is NULL, bool is BOOL, not N. Binary and sets
are refused: no record holds them, and a table attribute of such a type was not written by this pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any, Final

# DynamoDB's number type (boto3.dynamodb.types.DYNAMODB_CONTEXT): a value it would round raises instead.
DYNAMODB_CONTEXT: Final = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


def to_attribute(value: object) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value (``{"S": ...}``, ``{"M": {...}}``, ...)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):  # before numbers: bool is an int
        return {"BOOL": value}
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    if isinstance(value, int | Decimal):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {key: to_attribute(item) for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(item) for item in value]}
    raise TypeError(f'Unsupported type "{type(value)}" for value "{value}"')


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    """The Python value of a DynamoDB attribute value: numbers as Decimal, maps as dicts, lists as lists."""
    if len(attribute) != 1:
        raise TypeError(f"an attribute value has exactly one type key, not {sorted(attribute)}")
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return DYNAMODB_CONTEXT.create_decimal(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "M":
        return {key: from_attribute(item) for key, item in value.items()}
    if kind == "L":
        return [from_attribute(item) for item in value]
    raise TypeError(f"DynamoDB type {kind} is not one a record holds")


def to_item(values: Mapping[str, object]) -> dict[str, dict[str, Any]]:
    return {name: to_attribute(value) for name, value in values.items()}


def from_item(attributes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {name: from_attribute(value) for name, value in attributes.items()}


def _number(value: int | Decimal) -> str:
    number = str(DYNAMODB_CONTEXT.create_decimal(value))
    if number in ("Infinity", "-Infinity", "NaN", "sNaN"):
        raise TypeError("Infinity and NaN not supported")
    return number
