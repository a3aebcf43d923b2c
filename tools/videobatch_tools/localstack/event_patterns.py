"""EventBridge event-pattern matching, for routing events the local stack delivers itself.

Supports the filters templates commonly use: exact values, ``prefix``, ``suffix``, ``anything-but`` (value, list,
``prefix`` or ``suffix``), ``exists``, ``numeric``, ``equals-ignore-case``, ``wildcard`` and ``$or``. An event field
that is an array matches when any element matches (as in EventBridge). Anything else raises, rather than guessing.
"""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Callable, Mapping
from typing import Any

_MISSING = object()

_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class UnsupportedPatternError(ValueError):
    """The pattern uses a filter this matcher does not implement."""


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True when ``event`` matches the EventBridge ``pattern``."""
    for key, rule in pattern.items():
        if key == "$or":
            if not any(matches(branch, event) for branch in rule):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(rule, Mapping):
            if not isinstance(value, Mapping) or not matches(rule, value):
                return False
        elif isinstance(rule, list):
            if not _field_matches(rule, value):
                return False
        else:
            raise UnsupportedPatternError(f"pattern field {key!r} must be an object or an array, got {rule!r}")
    return True


def _field_matches(filters: list[Any], value: Any) -> bool:
    if value is _MISSING:
        return any(isinstance(f, Mapping) and f.get("exists") is False for f in filters)
    values = value if isinstance(value, list) else [value]
    return any(_filter_matches(f, v) for f in filters for v in values)


def _filter_matches(rule: Any, value: Any) -> bool:
    if not isinstance(rule, Mapping):
        # EventBridge compares types too: the number 5 does not match the string "5".
        return type(rule) is type(value) and rule == value
    if len(rule) != 1:
        raise UnsupportedPatternError(f"a filter object holds exactly one operator, got {dict(rule)!r}")
    ((name, argument),) = rule.items()
    if name == "exists":
        return bool(argument)
    if name == "prefix":
        return _string_test(value, argument, str.startswith)
    if name == "suffix":
        return _string_test(value, argument, str.endswith)
    if name == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == str(argument).casefold()
    if name == "wildcard":
        # Only "*" is special in EventBridge wildcards; escape the others fnmatch would interpret.
        escaped = str(argument).replace("[", "[[]").replace("?", "[?]")
        return isinstance(value, str) and fnmatch.fnmatchcase(value, escaped)
    if name == "anything-but":
        return not _anything_but_excludes(argument, value)
    if name == "numeric":
        return _numeric(argument, value)
    raise UnsupportedPatternError(f"filter {name!r} is not supported by the local matcher")


def _string_test(value: Any, argument: Any, test: Callable[[str, str], bool]) -> bool:
    if isinstance(argument, Mapping):
        raise UnsupportedPatternError(f"nested prefix/suffix options are not supported: {argument!r}")
    return isinstance(value, str) and test(value, str(argument))


def _anything_but_excludes(argument: Any, value: Any) -> bool:
    if isinstance(argument, Mapping):
        return _filter_matches(argument, value)
    excluded = argument if isinstance(argument, list) else [argument]
    return any(_filter_matches(item, value) for item in excluded)


def _numeric(argument: list[Any], value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    pairs = list(zip(argument[::2], argument[1::2], strict=True))
    for op, bound in pairs:
        if op not in _NUMERIC_OPS:
            raise UnsupportedPatternError(f"numeric operator {op!r} is not supported")
        if not _NUMERIC_OPS[op](float(value), float(bound)):
            return False
    return True
