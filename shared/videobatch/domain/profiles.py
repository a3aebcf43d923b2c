"""Analysis profiles: which analysis mode and options a video gets, chosen by the longest matching S3 key prefix.

A profile with ``key_prefix: ""`` is the default. Profiles are validated against the API's request rules when they
are loaded, so a bad profile fails the deployment (ConfigurationError naming profile, field and rule) instead of
failing every video uploaded under it.

File format (see ``videobatch/profiles/profiles.json``)::

    {"profiles": [{"name": "summary", "key_prefix": "", "description": "...",
                   "analysis_mode": "general", "options": {<AnalysisOptions>}}]}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from videobatch.errors import ConfigurationError, RejectedUploadError, RequestValidationError
from videobatch.twelvelabs import limits
from videobatch.twelvelabs.limits import AnalysisMode
from videobatch.twelvelabs.models import AnalysisOptions, JsonSchemaFormat
from videobatch.twelvelabs.validation import parse_options

PROFILE_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
DEFAULT_PROFILES_PACKAGE: Final = "videobatch.profiles"
DEFAULT_PROFILES_FILE: Final = "profiles.json"


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str = Field(pattern=PROFILE_NAME_PATTERN)  # stored on items and in events
    key_prefix: str  # "" is the default profile
    description: str = ""
    analysis_mode: AnalysisMode
    options: AnalysisOptions


class ProfileSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    profiles: tuple[Profile, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        _check_unique(self.profiles)
        return self

    def for_key(self, key: str) -> Profile:
        """The profile with the longest key_prefix that ``key`` starts with."""
        matching = [profile for profile in self.profiles if key.startswith(profile.key_prefix)]
        if not matching:
            prefixes = ", ".join(repr(profile.key_prefix) for profile in self.profiles)
            raise RejectedUploadError(
                "no_profile",
                f"{key} is under none of the profile prefixes ({prefixes}) and no default profile (prefix '') exists: "
                "upload it under a configured prefix",
            )
        return max(matching, key=lambda profile: len(profile.key_prefix))

    def check_results_prefix(self, results_prefix: str) -> None:
        """A profile whose prefix lies under the results prefix could never apply (uploads there are not ingested)."""
        for profile in self.profiles:
            if profile.key_prefix and profile.key_prefix.startswith(results_prefix):
                raise ConfigurationError(
                    f"profile {profile.name!r}: key_prefix {profile.key_prefix!r} lies under the results prefix "
                    f"{results_prefix!r}, where uploads are never analysed: move one of them"
                )

    def by_name(self, name: str) -> Profile:
        """The profile an item recorded at ingest; a missing one means the configuration changed under it."""
        for profile in self.profiles:
            if profile.name == name:
                return profile
        known = ", ".join(profile.name for profile in self.profiles)
        raise ConfigurationError(f"no profile named {name!r}; configured profiles: {known}")


def _check_unique(profiles: Iterable[Profile]) -> None:
    names: set[str] = set()
    prefixes: dict[str, str] = {}
    for profile in profiles:
        if profile.name in names:
            raise ConfigurationError(f"profile name {profile.name!r} is used twice")
        if profile.key_prefix in prefixes:
            raise ConfigurationError(
                f"profiles {prefixes[profile.key_prefix]!r} and {profile.name!r} "
                f"share key_prefix {profile.key_prefix!r}"
            )
        names.add(profile.name)
        prefixes[profile.key_prefix] = profile.name


def load_profiles(raw: str | bytes | Mapping[str, Any]) -> ProfileSet:
    """Parse and validate profiles from JSON text or an already-decoded mapping."""
    document = _decode(raw)
    entries = document.get("profiles")
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError("profiles: expected a non-empty list under the key 'profiles'")
    return ProfileSet(profiles=tuple(_load_profile(index, entry) for index, entry in enumerate(entries)))


def load_default_profiles() -> ProfileSet:
    """The profiles shipped with the package (videobatch/profiles/profiles.json)."""
    text = resources.files(DEFAULT_PROFILES_PACKAGE).joinpath(DEFAULT_PROFILES_FILE).read_text(encoding="utf-8")
    return load_profiles(text)


def _decode(raw: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):
        return raw
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"profiles: not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise ConfigurationError(f"profiles: expected a JSON object, got {type(document).__name__}")
    return document


def _load_profile(index: int, entry: Any) -> Profile:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"profiles[{index}]: expected an object, got {type(entry).__name__}")
    label = f"profile {entry.get('name', f'#{index}')!r}"
    shell = {**entry, "options": AnalysisOptions()}
    try:
        profile = Profile.model_validate(shell)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigurationError(f"{label}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    raw_options = entry.get("options", {})
    if not isinstance(raw_options, Mapping):
        raise ConfigurationError(f"{label}: options: expected an object")
    try:
        options = parse_options(profile.analysis_mode, raw_options, field_prefix="options")
        if isinstance(options.response_format, JsonSchemaFormat):
            check_json_schema(options.response_format.json_schema, "options.response_format.json_schema")
    except RequestValidationError as exc:
        raise ConfigurationError(f"{label}: {exc.field}: {exc.rule}") from exc
    return profile.model_copy(update={"options": options})


# The JSON Schema the API takes for structured output: these types and keywords (the ones it rejects,
# REJECTED_JSON_SCHEMA_KEYWORDS, are refused by the request validation already). A typo such as "objekt" or
# "propertise" would otherwise pass until every video of the profile fails at TwelveLabs.
JSON_SCHEMA_TYPES: Final = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_ANNOTATIONS: Final = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "default", "examples", "format", "nullable"}
)
_NUMBERS: Final = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
_SUBSCHEMA_LISTS: Final = frozenset({"anyOf", "oneOf", "allOf"})
_SUBSCHEMA_MAPS: Final = frozenset({"properties", "$defs", "definitions"})
JSON_SCHEMA_KEYWORDS: Final = (
    _ANNOTATIONS
    | _NUMBERS
    | _SUBSCHEMA_LISTS
    | _SUBSCHEMA_MAPS
    | {"type", "required", "items", "enum", "const", "minItems", "pattern", "$ref"}
    | limits.REJECTED_JSON_SCHEMA_KEYWORDS
)


def check_json_schema(schema: Any, path: str) -> None:
    """RequestValidationError naming the first place ``schema`` breaks the metaschema subset above."""
    if not isinstance(schema, Mapping):
        raise RequestValidationError(path, "must be a JSON Schema object")
    for keyword, value in schema.items():
        where = f"{path}.{keyword}"
        if keyword not in JSON_SCHEMA_KEYWORDS:
            raise RequestValidationError(where, "is not a JSON Schema keyword the API supports")
        _check_keyword(keyword, value, where)


def _check_keyword(keyword: str, value: Any, where: str) -> None:
    if keyword == "type":
        types = value if isinstance(value, list) else [value]
        if not types or any(not isinstance(t, str) or t not in JSON_SCHEMA_TYPES for t in types):
            raise RequestValidationError(where, f"must be one of {', '.join(sorted(JSON_SCHEMA_TYPES))} (or a list)")
    elif keyword in _SUBSCHEMA_MAPS:
        if not isinstance(value, Mapping):
            raise RequestValidationError(where, "must map names to schemas")
        for name, subschema in value.items():
            check_json_schema(subschema, f"{where}.{name}")
    elif keyword in _SUBSCHEMA_LISTS:
        if not isinstance(value, list) or not value:
            raise RequestValidationError(where, "must be a non-empty list of schemas")
        for index, subschema in enumerate(value):
            check_json_schema(subschema, f"{where}.{index}")
    elif keyword == "items":
        check_json_schema(value, where)
    elif keyword == "required" and (not isinstance(value, list) or not all(isinstance(n, str) for n in value)):
        raise RequestValidationError(where, "must be a list of property names")
    elif keyword == "enum" and (not isinstance(value, list) or not value):
        raise RequestValidationError(where, "must be a non-empty list")
    elif keyword in _NUMBERS and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise RequestValidationError(where, "must be a number")
    elif keyword == "minItems" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise RequestValidationError(where, "must be a non-negative integer")
    elif keyword in {"pattern", "$ref", "title", "description", "format"} and not isinstance(value, str):
        raise RequestValidationError(where, "must be a string")
