"""Deterministic, schema-valid model outputs for the emulator's ready items.

The output is a pure function of the inputs: the same item in the same task always yields the same bytes, and
``seed`` (the task id) varies the wording, the picks from ``enum`` lists and the booleans between tasks.

Modes, as the SDK documents them:

* ``general`` without ``response_format``: plain text naming the asset, the analysed window and the prompt.
* ``general`` with ``{type: json_schema}``: a JSON instance that validates against the schema. The platform's
  schema dialect is JSON Schema plus a ``timestamp`` type (``format`` seconds -> number, ``hh:mm:ss`` and
  ``hh:mm:ss.fff`` -> string), and properties named ``start_time`` / ``end_time`` get time values at any depth
  (number: seconds, integer: rounded, string: ``hh:mm:ss.fff``). Time-like properties receive times inside the
  window; the items of an array of objects split the window between them, like a list of scenes.
* ``time_based_metadata`` with ``{type: segment_definitions}``: ``{definition_id: [{start_time, end_time,
  metadata}]}``. Segments tile the window (or each ``time_ranges`` entry, clipped to the window) contiguously,
  with equal lengths near 30 s bounded by ``min_segment_duration`` / ``max_segment_duration`` (which the API
  makes exclusive with ``time_ranges``); a window shorter than the minimum gets no segment, and when the bounds
  cannot tile it exactly (10 s, min 6, max 7) segments of the maximum length leave gaps. Boundaries follow
  ``segment_time_format`` (default ``seconds``).

Token accounting (an emulator convention, not the platform's tokenizer): ``input_tokens`` is
``INPUT_TOKENS_PER_VIDEO_SECOND`` per second of window plus the prompt at four characters a token;
``output_tokens`` is the data length at four characters a token.

``finish_reason`` and ``max_tokens``, following the SDK's ``AnalyzeTaskResult`` docs:

* general: when the output would exceed ``max_tokens``, ``data`` is cut at the limit and ``finish_reason`` is
  ``length``. For a JSON schema the cut text no longer parses, exactly the case the docs tell clients to check.
* time_based_metadata: ``length`` never happens. A real model reports the moments matching a description, not a
  tiling of the whole video, so when the tiling would not fit the emulator keeps every other segment until it
  does; if even one segment per definition does not fit, the task fails (``OutputGenerationError`` with code
  ``max_tokens_exceeded``), as the docs say segmentation tasks do.

``OutputGenerationError`` also covers schemas no instance can satisfy; the emulator turns it into a failed item.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict

from twelvelabs_emulator.limits import DEFAULT_MAX_TOKENS, MAX_TOKENS_RANGE

INPUT_TOKENS_PER_VIDEO_SECOND = 8
CHARACTERS_PER_TOKEN = 4
DEFAULT_SEGMENT_SECONDS = 30.0
DEFAULT_ARRAY_ITEMS = 3
_MAX_SCHEMA_DEPTH = 24
# Beyond this depth a recursive schema stops growing: arrays take their minimum and objects their required keys.
_SHALLOW_DEPTH = 6
_TIME_FORMATS = ("seconds", "hh:mm:ss", "hh:mm:ss.fff")
_WORDS = (
    "a person walking",
    "a parked car",
    "a city street",
    "a kitchen counter",
    "a laptop screen",
    "a dog running",
    "a conference room",
    "a mountain trail",
    "a whiteboard",
    "a crowd of people",
    "a bicycle",
    "a storefront",
)
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
TimeRole = Literal["start", "end", "point"]


class OutputGenerationError(Exception):
    """No valid output exists for the request (unsatisfiable schema, output over ``max_tokens``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class GeneratedOutput(BaseModel):
    """What a ready item's result carries: ``data`` (a string), ``finish_reason`` and the usage counts."""

    model_config = ConfigDict(frozen=True)

    data: str
    finish_reason: Literal["stop", "length"]
    input_tokens: int
    output_tokens: int


def generate_output(
    *,
    analysis_mode: str,
    request_params: Mapping[str, Any],
    asset_id: str,
    asset_filename: str | None,
    video_duration_seconds: float,
    window_start_seconds: float,
    window_end_seconds: float,
    seed: str,
) -> GeneratedOutput:
    """The model's answer for one item; a pure function of its arguments."""
    context = _Context(
        seed=seed,
        asset_label=asset_filename or asset_id,
        asset_id=asset_id,
        video_duration_seconds=video_duration_seconds,
        start_seconds=window_start_seconds,
        end_seconds=window_end_seconds,
    )
    max_tokens = _effective_max_tokens(analysis_mode, request_params.get("max_tokens"))
    input_tokens = _input_tokens(request_params, window_end_seconds - window_start_seconds)
    response_format = request_params.get("response_format") or {}
    if analysis_mode == "time_based_metadata":
        data = _segments_json(response_format, request_params, context, max_tokens)
        return GeneratedOutput(
            data=data, finish_reason="stop", input_tokens=input_tokens, output_tokens=_tokens_in(data)
        )
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema")
        text = json.dumps(generate_instance({} if schema is None else schema, context), ensure_ascii=False)
    else:
        text = _plain_text(request_params, context)
    return _within_budget(text, max_tokens=max_tokens, input_tokens=input_tokens)


def _effective_max_tokens(analysis_mode: str, requested: Any) -> int:
    if isinstance(requested, int) and not isinstance(requested, bool):
        return requested
    if requested == "unlimited":
        return MAX_TOKENS_RANGE.get(analysis_mode, MAX_TOKENS_RANGE["general"])[1]
    return DEFAULT_MAX_TOKENS.get(analysis_mode, DEFAULT_MAX_TOKENS["general"])


def _input_tokens(request_params: Mapping[str, Any], window_seconds: float) -> int:
    prompt_text = _prompt_text(request_params) or ""
    format_text = json.dumps(request_params.get("response_format") or {}, sort_keys=True)
    return math.ceil(max(window_seconds, 0.0) * INPUT_TOKENS_PER_VIDEO_SECOND) + _tokens_in(prompt_text + format_text)


def _tokens_in(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARACTERS_PER_TOKEN))


def _within_budget(text: str, *, max_tokens: int, input_tokens: int) -> GeneratedOutput:
    if _tokens_in(text) <= max_tokens:
        return GeneratedOutput(
            data=text, finish_reason="stop", input_tokens=input_tokens, output_tokens=_tokens_in(text)
        )
    cut = text[: max_tokens * CHARACTERS_PER_TOKEN]
    return GeneratedOutput(data=cut, finish_reason="length", input_tokens=input_tokens, output_tokens=max_tokens)


def _prompt_text(request_params: Mapping[str, Any]) -> str | None:
    prompt = request_params.get("prompt")
    if isinstance(prompt, Mapping):
        text = prompt.get("input_text")
        return str(text) if text is not None else None
    return str(prompt) if isinstance(prompt, str) else None


# --- shared context --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """Where in the video a value is generated: the window (or the slice of it an array item covers)."""

    seed: str
    asset_label: str
    asset_id: str
    video_duration_seconds: float
    start_seconds: float
    end_seconds: float
    path: str = "$"

    def at(self, key: str | int) -> _Context:
        return replace(self, path=f"{self.path}/{key}")

    def sliced(self, index: int, count: int) -> _Context:
        length = (self.end_seconds - self.start_seconds) / count
        start = self.start_seconds + index * length
        return replace(self, start_seconds=start, end_seconds=start + length)

    def number(self, salt: str = "") -> int:
        """A stable pseudo-random integer for this place in the output."""
        digest = hashlib.sha256(f"{self.seed}|{self.asset_id}|{self.path}|{salt}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def choose(self, options: Sequence[Any], salt: str = "") -> Any:
        return options[self.number(salt) % len(options)]

    def fraction(self, salt: str = "") -> float:
        return (self.number(salt) % 10_000) / 10_000

    @property
    def window_text(self) -> str:
        return f"{format_time(self.start_seconds, 'hh:mm:ss')}-{format_time(self.end_seconds, 'hh:mm:ss')}"


def format_time(seconds: float, time_format: str) -> float | str:
    """A time as the platform writes it: a number for ``seconds``, else ``hh:mm:ss`` or ``hh:mm:ss.fff``."""
    if time_format == "seconds":
        return round(seconds, 3)
    if time_format == "hh:mm:ss":
        # Rounded to the nearest second; negative values become 00:00:00.
        whole = max(0, round(seconds))
        return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"
    if time_format == "hh:mm:ss.fff":
        millis = max(0, round(seconds * 1000))
        whole, fraction_ms = divmod(millis, 1000)
        return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}.{fraction_ms:03d}"
    raise OutputGenerationError("invalid_time_format", f"unknown time format {time_format!r}")


def _name_words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if word]


def _time_role(name: str) -> TimeRole | None:
    """Whether a property name denotes a time: its start, its end, or a moment."""
    words = set(_name_words(name))
    if words & {"start", "begin", "from"}:
        return "start"
    if words & {"end", "stop", "until"}:
        return "end"
    if words & {"time", "timestamp", "seconds", "sec", "at", "moment", "offset"}:
        return "point"
    return None


def _time_for(role: TimeRole, context: _Context) -> float:
    if role == "start":
        return context.start_seconds
    if role == "end":
        return context.end_seconds
    return (context.start_seconds + context.end_seconds) / 2


def _phrase(name: str, context: _Context, description: str | None = None) -> str:
    """A readable string for a property or field, mentioning the asset and the time span."""
    words = _name_words(name)
    subject = context.choose(_WORDS, "subject")
    lead = " ".join(words).capitalize() if words else "Value"
    if words and words[-1] in {"title", "name", "label", "headline"}:
        return f"{subject.capitalize()} in {context.asset_label}"
    if words and words[-1] in {"summary", "description", "caption", "text", "narrative", "explanation"}:
        return f"Between {context.window_text}, {context.asset_label} shows {subject} in view."
    hint = f" ({description.strip().rstrip('.')})" if description else ""
    return f"{lead}{hint}: {subject}, {context.window_text} of {context.asset_label}"


# --- plain text --------------------------------------------------------------------------------------------------


def _plain_text(request_params: Mapping[str, Any], context: _Context) -> str:
    prompt = _prompt_text(request_params) or "(no prompt given)"
    first = context.choose(_WORDS, "first")
    second = context.choose(_WORDS, "second")
    return (
        f"Analysis of {context.asset_label} (asset {context.asset_id}), "
        f"window {context.window_text} ({context.start_seconds:g}s to {context.end_seconds:g}s).\n"
        f'Prompt: "{prompt}"\n'
        f"The video opens on {first} and later shows {second}. "
        f"Nothing in the window contradicts the request; this answer was produced by the local emulator."
    )


# --- JSON schema instances ---------------------------------------------------------------------------------------


def generate_instance(schema: Any, context: _Context) -> Any:
    """An instance of ``schema`` (the platform's JSON Schema dialect) placed in ``context``'s window."""
    return _SchemaWriter(root=schema).value(schema, context, name="", depth=0)


@dataclass(frozen=True)
class _SchemaWriter:
    root: Any

    def value(self, schema: Any, context: _Context, *, name: str, depth: int) -> Any:
        if depth > _MAX_SCHEMA_DEPTH:
            raise OutputGenerationError(
                "schema_unsatisfiable", f"schema nests deeper than {_MAX_SCHEMA_DEPTH} at {context.path}"
            )
        if schema is True or schema == {}:
            return _phrase(name, context)
        if not isinstance(schema, Mapping):
            raise OutputGenerationError("schema_unsatisfiable", f"no value satisfies the schema at {context.path}")
        if "$ref" in schema:
            return self.value(self.resolve(schema["$ref"], context), context, name=name, depth=depth + 1)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.enum_value(schema["enum"], context)
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                return self.first_branch(schema, keyword, context, name=name, depth=depth)
        return self.typed_value(schema, context, name=name, depth=depth)

    def enum_value(self, options: Any, context: _Context) -> Any:
        if not isinstance(options, list) or not options:
            raise OutputGenerationError("schema_unsatisfiable", f"empty enum at {context.path}")
        return context.choose(options, "enum")

    def resolve(self, reference: Any, context: _Context) -> Any:
        if not isinstance(reference, str) or not reference.startswith("#"):
            raise OutputGenerationError("schema_unsatisfiable", f"unsupported $ref {reference!r} at {context.path}")
        target = self.root
        for raw in [part for part in reference[1:].split("/") if part]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                raise OutputGenerationError(
                    "schema_unsatisfiable", f"unresolvable $ref {reference!r} at {context.path}"
                )
            target = target[part]
        return target

    def first_branch(self, schema: Mapping[str, Any], keyword: str, context: _Context, *, name: str, depth: int) -> Any:
        """The first branch that yields a value; for oneOf, one that no other branch also accepts."""
        branches = schema[keyword]
        siblings = {key: item for key, item in schema.items() if key != keyword}
        for index, branch in enumerate(branches if isinstance(branches, list) else []):
            merged = {**siblings, **branch} if isinstance(branch, Mapping) else branch
            try:
                candidate = self.value(merged, context, name=name, depth=depth + 1)
            except OutputGenerationError:
                continue
            if keyword == "anyOf" or not self.matches_other(branches, index, candidate):
                return candidate
        raise OutputGenerationError("schema_unsatisfiable", f"no {keyword} branch can be satisfied at {context.path}")

    def matches_other(self, branches: list[Any], index: int, candidate: Any) -> bool:
        defs = {
            key: self.root[key]
            for key in ("$defs", "definitions")
            if isinstance(self.root, Mapping) and key in self.root
        }
        for other_index, branch in enumerate(branches):
            if other_index == index:
                continue
            other = {**branch, **defs} if isinstance(branch, Mapping) else branch
            if jsonschema.Draft202012Validator(other).is_valid(candidate):
                return True
        return False

    def typed_value(self, schema: Mapping[str, Any], context: _Context, *, name: str, depth: int) -> Any:
        schema_type = _schema_type(schema)
        role = _time_role(name)
        if name in {"start_time", "end_time"} or schema_type == "timestamp":
            return _time_value(schema_type, schema.get("format"), role or "point", context)
        if schema_type == "object":
            return self.object_value(schema, context, depth=depth)
        if schema_type == "array":
            return self.array_value(schema, context, name=name, depth=depth)
        if schema_type in {"number", "integer"}:
            return _number_value(schema, schema_type, role, name, context)
        if schema_type == "boolean":
            return context.number("bool") % 2 == 0
        if schema_type == "null":
            return None
        return _string_value(schema, name, context)

    def object_value(self, schema: Mapping[str, Any], context: _Context, *, depth: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        required = list(schema.get("required") or [])
        names = [key for key in properties if depth < _SHALLOW_DEPTH or key in required]
        names += [key for key in required if key not in properties]
        return {key: self.value(properties.get(key, True), context.at(key), name=key, depth=depth + 1) for key in names}

    def array_value(self, schema: Mapping[str, Any], context: _Context, *, name: str, depth: int) -> list[Any]:
        min_items = int(schema.get("minItems", 0))
        count = min_items if depth >= _SHALLOW_DEPTH else max(min_items, DEFAULT_ARRAY_ITEMS)
        items = schema.get("items", True)
        singular = name[:-1] if name.endswith("s") else name
        # Items of an array share the window out between them, so scene lists come back in time order.
        return [
            self.value(items, context.at(index).sliced(index, count), name=singular, depth=depth + 1)
            for index in range(count)
        ]


def _schema_type(schema: Mapping[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        non_null = [kind for kind in declared if kind != "null"]
        declared = non_null[0] if non_null else "null"
    if isinstance(declared, str):
        return declared
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "minItems" in schema:
        return "array"
    return "string"


def _time_value(schema_type: str, time_format: Any, role: TimeRole, context: _Context) -> Any:
    seconds = _time_for(role, context)
    if schema_type == "timestamp":
        return format_time(seconds, str(time_format) if time_format in _TIME_FORMATS else "seconds")
    if schema_type == "integer":
        return round(seconds)
    if schema_type == "number":
        return round(seconds, 3)
    return format_time(seconds, "hh:mm:ss.fff")


def _number_value(
    schema: Mapping[str, Any], schema_type: str, role: TimeRole | None, name: str, context: _Context
) -> float:
    words = set(_name_words(name))
    if words & {"duration", "length"}:
        preferred = context.end_seconds - context.start_seconds
    elif role is not None:
        preferred = _time_for(role, context)
    elif words & {"confidence", "score", "probability", "ratio"}:
        preferred = 0.5 + context.fraction("score") / 2
    else:
        preferred = 1 + context.number("count") % 9
    if schema_type == "integer":
        return _integer_in_bounds(round(preferred), schema, context)
    return _number_in_bounds(round(preferred, 3), schema, context)


def _integer_in_bounds(preferred: int, schema: Mapping[str, Any], context: _Context) -> int:
    low, high = -math.inf, math.inf
    if "minimum" in schema:
        low = math.ceil(schema["minimum"])
    if "exclusiveMinimum" in schema:
        low = max(low, math.floor(schema["exclusiveMinimum"]) + 1)
    if "maximum" in schema:
        high = math.floor(schema["maximum"])
    if "exclusiveMaximum" in schema:
        high = min(high, math.ceil(schema["exclusiveMaximum"]) - 1)
    if low > high:
        raise OutputGenerationError("schema_unsatisfiable", f"no integer within the bounds at {context.path}")
    return int(min(max(preferred, low), high))


def _number_in_bounds(preferred: float, schema: Mapping[str, Any], context: _Context) -> float:
    """Clamp into the bounds; an exclusive bound is approached no closer than half the remaining room."""
    low = max(float(schema.get("minimum", -math.inf)), float(schema.get("exclusiveMinimum", -math.inf)))
    high = min(float(schema.get("maximum", math.inf)), float(schema.get("exclusiveMaximum", math.inf)))
    low_open = "exclusiveMinimum" in schema and float(schema["exclusiveMinimum"]) == low
    high_open = "exclusiveMaximum" in schema and float(schema["exclusiveMaximum"]) == high
    if low > high or (low == high and (low_open or high_open)):
        raise OutputGenerationError("schema_unsatisfiable", f"no number within the bounds at {context.path}")
    value = preferred
    if value < low or (low_open and value == low):
        value = low if not low_open else (low + min(high, low + 2)) / 2
    if value > high or (high_open and value == high):
        value = high if not high_open else (max(low, high - 2) + high) / 2
    return value


def _string_value(schema: Mapping[str, Any], name: str, context: _Context) -> str:
    role = _time_role(name)
    string_format = schema.get("format")
    if string_format == "date-time":
        return (_EPOCH + timedelta(seconds=_time_for(role or "point", context))).isoformat().replace("+00:00", "Z")
    if string_format == "date":
        return (_EPOCH + timedelta(days=context.number("date") % 365)).date().isoformat()
    if string_format == "time":
        return f"{format_time(_time_for(role or 'point', context), 'hh:mm:ss')}Z"
    if string_format == "uuid":
        return str(uuid.UUID(int=context.number("uuid") << 64 | context.number("uuid2")))
    if string_format in {"uri", "url", "uri-reference"}:
        return f"https://example.com/assets/{context.asset_id}#t={context.start_seconds:g},{context.end_seconds:g}"
    if string_format == "email":
        return f"{(_name_words(name) or ['user'])[0]}@example.com"
    if "pattern" in schema:
        return matching_string(str(schema["pattern"]), context)
    if role is not None:
        return str(format_time(_time_for(role, context), "hh:mm:ss.fff"))
    return _phrase(name, context, schema.get("description"))


def matching_string(pattern: str, context: _Context) -> str:
    """A short string that ``re.search(pattern, ...)`` accepts, built by walking the parsed regular expression."""
    try:
        parser = importlib.import_module("re._parser")
        candidate = _from_parsed(parser.parse(pattern), importlib.import_module("re._constants"))
    except (re.error, ImportError, ValueError) as exc:
        raise OutputGenerationError(
            "schema_unsatisfiable", f"cannot build a string for pattern {pattern!r}: {exc}"
        ) from exc
    if re.search(pattern, candidate) is None:
        raise OutputGenerationError(
            "schema_unsatisfiable", f"cannot build a string for pattern {pattern!r} at {context.path}"
        )
    return candidate


def _from_parsed(parsed: Any, constants: Any) -> str:
    out: list[str] = []
    for opcode, argument in parsed:
        out.append(_from_node(opcode, argument, constants))
    return "".join(out)


def _from_node(opcode: Any, argument: Any, c: Any) -> str:
    if opcode == c.LITERAL:
        return chr(argument)
    if opcode == c.ANY:
        return "a"
    if opcode == c.IN:
        return _from_class(argument, c)
    if opcode in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
        minimum, maximum, body = argument
        return _from_parsed(body, c) * int(max(minimum, min(1, maximum)))
    if opcode == c.SUBPATTERN:
        return _from_parsed(argument[-1], c)
    if opcode == c.BRANCH:
        return _from_parsed(argument[1][0], c)
    if opcode in (c.AT, c.ASSERT, c.ASSERT_NOT):
        # Anchors and lookarounds consume nothing; the final re.search check catches a lookaround we violate.
        return ""
    raise ValueError(f"unsupported regular expression construct {opcode}")


def _from_class(members: Any, c: Any) -> str:
    negated = bool(members) and members[0][0] == c.NEGATE
    wanted = members[1:] if negated else members
    for character in "a0A _-.:/":
        if any(_in_member(character, kind, value, c) for kind, value in wanted) != negated:
            return character
    if not negated and wanted and wanted[0][0] == c.LITERAL:
        return chr(wanted[0][1])
    if not negated and wanted and wanted[0][0] == c.RANGE:
        return chr(wanted[0][1][0])
    raise ValueError("unsupported character class")


def _in_member(character: str, kind: Any, value: Any, c: Any) -> bool:
    if kind == c.LITERAL:
        return bool(ord(character) == value)
    if kind == c.RANGE:
        return bool(value[0] <= ord(character) <= value[1])
    if kind == c.CATEGORY:
        pattern = {c.CATEGORY_DIGIT: r"\d", c.CATEGORY_NOT_DIGIT: r"\D", c.CATEGORY_SPACE: r"\s"}.get(value)
        pattern = pattern or {c.CATEGORY_NOT_SPACE: r"\S", c.CATEGORY_WORD: r"\w", c.CATEGORY_NOT_WORD: r"\W"}.get(
            value
        )
        return pattern is not None and re.fullmatch(pattern, character) is not None
    return False


# --- segment definitions -----------------------------------------------------------------------------------------


def _segments_json(
    response_format: Mapping[str, Any], request_params: Mapping[str, Any], context: _Context, max_tokens: int
) -> str:
    definitions = list(response_format.get("segment_definitions") or [])
    time_format = str(response_format.get("segment_time_format") or "seconds")
    spans_by_id = {
        str(definition["id"]): _segment_spans(definition, request_params, context) for definition in definitions
    }
    keep_every = 1
    while True:
        document = {
            definition_id: [
                _segment(definitions[position], span, index, time_format, context)
                for index, span in enumerate(spans)
                if index % keep_every == 0
            ]
            for position, (definition_id, spans) in enumerate(spans_by_id.items())
        }
        data = json.dumps(document, ensure_ascii=False)
        if _tokens_in(data) <= max_tokens:
            return data
        if all(len(segments) <= 1 for segments in document.values()):
            raise OutputGenerationError(
                "max_tokens_exceeded", f"the segments need {_tokens_in(data)} tokens, max_tokens is {max_tokens}"
            )
        keep_every *= 2


def _segment_spans(
    definition: Mapping[str, Any], request_params: Mapping[str, Any], context: _Context
) -> list[tuple[float, float]]:
    ranges = [(context.start_seconds, context.end_seconds)]
    min_seconds = request_params.get("min_segment_duration")
    max_seconds = request_params.get("max_segment_duration")
    if definition.get("time_ranges"):
        # The API makes time_ranges exclusive with the segment duration bounds, so they do not apply here.
        min_seconds = max_seconds = None
        ranges = [
            (max(float(r["start_time"]), context.start_seconds), min(float(r["end_time"]), context.end_seconds))
            for r in definition["time_ranges"]
        ]
    spans: list[tuple[float, float]] = []
    for start, end in sorted(ranges):
        spans.extend(_tile(start, end, min_seconds=min_seconds, max_seconds=max_seconds))
    return spans


def _tile(
    start: float, end: float, *, min_seconds: float | None, max_seconds: float | None
) -> list[tuple[float, float]]:
    """Equal contiguous pieces of [start, end], each as near DEFAULT_SEGMENT_SECONDS as the bounds allow."""
    length = end - start
    if length <= 0 or (min_seconds is not None and length < min_seconds):
        return []
    target = DEFAULT_SEGMENT_SECONDS
    if min_seconds is not None:
        target = max(target, float(min_seconds))
    if max_seconds is not None:
        target = min(target, float(max_seconds))
    count = max(1, round(length / target))
    if max_seconds is not None:
        count = max(count, math.ceil(length / float(max_seconds)))
    if min_seconds is not None:
        count = min(count, max(1, math.floor(length / float(min_seconds))))
    piece = length / count
    # With both bounds set a range may not divide evenly (10 s, min 6, max 7): the pieces then stop at the maximum
    # and leave gaps, which a model's segments may do.
    size = piece if max_seconds is None else min(piece, float(max_seconds))
    starts = [start + index * piece for index in range(count)]
    return [
        (first, end if size == piece and index == count - 1 else first + size) for index, first in enumerate(starts)
    ]


def _segment(
    definition: Mapping[str, Any], span: tuple[float, float], index: int, time_format: str, context: _Context
) -> dict[str, Any]:
    start, end = span
    where = replace(context, start_seconds=start, end_seconds=end).at(str(definition["id"])).at(index)
    metadata = {
        str(field["name"]): _field_value(field, where, time_format, description=str(definition.get("description", "")))
        for field in definition.get("fields") or []
    }
    return {
        "start_time": format_time(start, time_format),
        "end_time": format_time(end, time_format),
        "metadata": metadata,
    }


def _field_value(field: Mapping[str, Any], context: _Context, time_format: str, *, description: str) -> Any:
    name = str(field["name"])
    field_type = str(field.get("type", "string"))
    where = context.at(name)
    if field.get("enum"):
        return where.choose(field["enum"], "enum")
    if field_type == "timestamp":
        return format_time(_time_for(_time_role(name) or "point", where), str(field.get("format") or "seconds"))
    if field_type == "time_array":
        return _events(field, where, time_format, description=description)
    if field_type == "array":
        item_type = str((field.get("items") or {}).get("type", "string"))
        item_field = {"name": name, "type": item_type, "description": field.get("description")}
        return [_field_value(item_field, where.at(i), time_format, description=description) for i in range(2)]
    return _scalar(field_type, name, where, str(field.get("description") or description))


def _scalar(field_type: str, name: str, context: _Context, description: str) -> Any:
    if field_type == "boolean":
        return context.number("bool") % 2 == 0
    if field_type == "integer":
        return 1 + context.number("int") % 9
    if field_type == "number":
        return round(context.fraction("number"), 3)
    return _phrase(name, context, description)


def _events(field: Mapping[str, Any], context: _Context, time_format: str, *, description: str) -> list[dict[str, Any]]:
    item_fields = (field.get("items") or {}).get("fields") or []
    events = []
    for index in range(2):
        inside = context.at(index).sliced(index, 2)
        event = {
            "start_time": format_time(inside.start_seconds, time_format),
            "end_time": format_time(inside.end_seconds, time_format),
        }
        for item_field in item_fields:
            event[str(item_field["name"])] = _field_value(item_field, inside, time_format, description=description)
        events.append(event)
    return events
