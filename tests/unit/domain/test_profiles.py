import copy
import json
from typing import Any

import pytest

from videobatch.domain.profiles import Profile, ProfileSet, load_default_profiles, load_profiles
from videobatch.errors import ConfigurationError, RejectedUploadError
from videobatch.twelvelabs.models import AnalysisOptions, JsonSchemaFormat, SegmentDefinitionsFormat
from videobatch.twelvelabs.validation import validate_options

GENERAL = {"prompt": {"input_text": "Summarise."}}
SEGMENTS = {
    "response_format": {
        "type": "segment_definitions",
        "segment_definitions": [{"id": "chapter", "description": "A chapter"}],
    }
}


def entry(name: str, prefix: str, mode: str = "general", options: dict[str, Any] | None = None) -> dict[str, Any]:
    default = GENERAL if mode == "general" else SEGMENTS
    return {
        "name": name,
        "key_prefix": prefix,
        "analysis_mode": mode,
        "options": copy.deepcopy(default) if options is None else options,
    }


PROFILES = load_profiles(
    {
        "profiles": [
            entry("default", ""),
            entry("sports", "sports/"),
            entry("sports-live", "sports/live/", "time_based_metadata"),
            entry("news", "news"),
        ]
    }
)


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("a.mp4", "default"),
        ("sports/match.mp4", "sports"),
        ("sports/live/match.mp4", "sports-live"),
        ("sports/lively.mp4", "sports"),
        ("sports/live/", "sports-live"),
        ("newsroom/a.mp4", "news"),
        ("Sports/match.mp4", "default"),
    ],
)
def test_for_key_picks_the_longest_matching_prefix(key: str, name: str) -> None:
    assert PROFILES.for_key(key).name == name


def test_for_key_without_default_rejects_the_upload() -> None:
    profiles = load_profiles({"profiles": [entry("sports", "sports/")]})
    with pytest.raises(RejectedUploadError) as info:
        profiles.for_key("other/a.mp4")
    assert info.value.reason == "no_profile"
    assert "'sports/'" in info.value.message


@pytest.mark.parametrize("name", ["default", "sports-live"])
def test_by_name(name: str) -> None:
    assert PROFILES.by_name(name).name == name


def test_by_name_unknown_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no profile named 'gone'; configured profiles: default, sports"):
        PROFILES.by_name("gone")


def test_loaded_options_are_typed() -> None:
    assert isinstance(PROFILES.by_name("default").options, AnalysisOptions)
    assert PROFILES.by_name("default").options.prompt is not None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "expected a JSON object, got list"),
        ({}, "non-empty list under the key 'profiles'"),
        ({"profiles": []}, "non-empty list"),
        ({"profiles": ["x"]}, r"profiles\[0\]: expected an object, got str"),
        ({"profiles": [{**entry("a", ""), "options": []}]}, "profile 'a': options: expected an object"),
        ({"profiles": [{**entry("a", ""), "colour": "red"}]}, "profile 'a': colour: Extra inputs"),
        ({"profiles": [{**entry("a", ""), "name": "bad name"}]}, "profile 'bad name': name: String should match"),
        ({"profiles": [{"key_prefix": "", "analysis_mode": "general"}]}, "profile '#0': name: Field required"),
        ({"profiles": [entry("a", "", "summaries")]}, "profile 'a': analysis_mode: Input should be"),
        ({"profiles": [entry("a", ""), entry("a", "x/")]}, "profile name 'a' is used twice"),
        ({"profiles": [entry("a", "x/"), entry("b", "x/")]}, "profiles 'a' and 'b' share key_prefix 'x/'"),
        # API rules, reported with the profile and the field path
        ({"profiles": [entry("a", "", options={})]}, "profile 'a': options.prompt: required in general mode"),
        (
            {"profiles": [entry("a", "", options={**GENERAL, "temperature": 1.5})]},
            "profile 'a': options.temperature: must be between",
        ),
        (
            {"profiles": [entry("a", "", options={**GENERAL, "max_tokens": 100})]},
            "profile 'a': options.max_tokens: must be between 512",
        ),
        (
            {"profiles": [entry("a", "", options={**GENERAL, "tempreature": 0.1})]},
            "profile 'a': options.tempreature: Extra inputs",
        ),
        (
            {
                "profiles": [
                    entry(
                        "a",
                        "",
                        options={
                            **GENERAL,
                            "response_format": {
                                "type": "json_schema",
                                "json_schema": {
                                    "type": "object",
                                    "properties": {"t": {"type": "string", "maxLength": 9}},
                                },
                            },
                        },
                    )
                ]
            },
            "profile 'a': options.response_format.json_schema.properties.t.maxLength",
        ),
        (
            {"profiles": [entry("c", "", "time_based_metadata", options={**SEGMENTS, **GENERAL})]},
            "profile 'c': options.prompt: not allowed in time_based_metadata",
        ),
        (
            {"profiles": [entry("c", "", "time_based_metadata", options={"max_tokens": 4096})]},
            "profile 'c': options.response_format: required",
        ),
    ],
)
def test_load_profiles_rejects_bad_configuration(raw: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_profiles(raw)


def test_profile_set_checks_uniqueness_when_built_directly() -> None:
    profile = Profile(name="a", key_prefix="", analysis_mode="general", options=AnalysisOptions())
    with pytest.raises(ConfigurationError, match="used twice"):
        ProfileSet(profiles=(profile, profile))


def test_load_profiles_accepts_json_text_and_bytes() -> None:
    text = json.dumps({"profiles": [entry("a", "")]})
    assert load_profiles(text) == load_profiles(text.encode()) == load_profiles(json.loads(text))


def test_shipped_profiles_load_and_follow_the_api_rules() -> None:
    profiles = load_default_profiles()
    summary, chapters = profiles.by_name("summary"), profiles.by_name("chapters")
    assert profiles.for_key("uploads/a.mp4") is summary
    assert profiles.for_key("chapters/talk.mp4") is chapters
    assert summary.analysis_mode == "general"
    assert isinstance(summary.options.response_format, JsonSchemaFormat)
    assert chapters.analysis_mode == "time_based_metadata"
    assert isinstance(chapters.options.response_format, SegmentDefinitionsFormat)
    field_types = {
        field.type
        for definition in chapters.options.response_format.segment_definitions
        for field in definition.fields or []
    }
    assert "timestamp" in field_types
    for profile in profiles.profiles:
        validate_options(profile.analysis_mode, profile.options)


def _schema_profile(schema: Any) -> dict[str, Any]:
    options = {**GENERAL, "response_format": {"type": "json_schema", "json_schema": schema}}
    return {"profiles": [entry("default", "", options=options)]}


@pytest.mark.parametrize(
    ("schema", "where", "rule"),
    [
        ({"type": "objekt"}, "json_schema.type", "must be one of"),
        ({"type": ["string", "nul"]}, "json_schema.type", "must be one of"),
        ({"type": "object", "propertise": {}}, "json_schema.propertise", "not a JSON Schema keyword"),
        (
            {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "strin"}}}},
            "json_schema.properties.tags.items.type",
            "must be one of",
        ),
        ({"type": "object", "required": "title"}, "json_schema.required", "list of property names"),
        ({"anyOf": []}, "json_schema.anyOf", "non-empty list"),
        ({"type": "integer", "minimum": "0"}, "json_schema.minimum", "must be a number"),
        ({"type": "array", "minItems": -1}, "json_schema.minItems", "non-negative integer"),
        ({"type": "string", "enum": []}, "json_schema.enum", "non-empty list"),
        ({"type": "object", "properties": {"a": "string"}}, "json_schema.properties.a", "JSON Schema object"),
    ],
)
def test_json_schemas_are_checked_against_the_metaschema_the_api_supports(schema: Any, where: str, rule: str) -> None:
    with pytest.raises(ConfigurationError, match=rule) as caught:
        load_profiles(_schema_profile(schema))
    assert f"options.response_format.{where}" in str(caught.value)
    assert "'default'" in str(caught.value)


def test_a_rich_valid_schema_loads() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "description": "a summary",
        "properties": {
            "title": {"type": "string"},
            "score": {"type": ["number", "null"], "minimum": 0, "maximum": 10},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 1},
            "kind": {"anyOf": [{"const": "x"}, {"$ref": "#/$defs/k"}]},
        },
        "required": ["title"],
        "$defs": {"k": {"type": "string", "pattern": "^[a-z]+$"}},
    }
    assert load_profiles(_schema_profile(schema)).for_key("a.mp4").name == "default"


def test_a_profile_under_the_results_prefix_is_refused() -> None:
    profiles = load_profiles({"profiles": [entry("default", ""), entry("oops", "results/special/")]})
    with pytest.raises(ConfigurationError, match=r"'oops'.*lies under the results prefix 'results/'"):
        profiles.check_results_prefix("results/")
    load_default_profiles().check_results_prefix("results/")  # the shipped ones are fine
