"""The layer's dependencies are pinned once: shared/requirements.txt (what `sam build` installs), constraints.txt
(those and their dependencies, what `make install` constrains the test venv to) and the venv agree."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
# Lambda's python3.13 on arm64, for the environment markers of the layer's dependencies.
LAMBDA_ENVIRONMENT = default_environment() | {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "platform_machine": "aarch64",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "extra": "",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {line} is not an exact pin"
        found[canonical(requirement.name)] = specifier.version
    return found


CONSTRAINTS = pins(ROOT / "constraints.txt")
LAYER = pins(ROOT / "shared" / "requirements.txt")


def closure(roots: list[str]) -> set[str]:
    """The installed distributions ``roots`` need on Lambda, transitively."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = canonical(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        for raw in distribution(name).requires or []:
            requirement = Requirement(raw)
            if requirement.marker is None or requirement.marker.evaluate(LAMBDA_ENVIRONMENT):
                pending.append(requirement.name)
    return seen


def test_the_layer_pins_the_versions_of_the_constraints() -> None:
    assert LAYER, "shared/requirements.txt pins nothing"
    for name, version in LAYER.items():
        assert CONSTRAINTS.get(name) == version, f"{name}: layer {version}, constraints {CONSTRAINTS.get(name)}"


def test_the_constraints_cover_everything_the_layer_pulls_in() -> None:
    needed = closure(list(LAYER))
    assert needed - set(CONSTRAINTS) == set(), "unpinned layer dependencies"
    assert set(CONSTRAINTS) - needed == set(), "pins nothing in the layer needs"


@pytest.mark.parametrize("name", sorted(CONSTRAINTS))
def test_the_tests_run_on_the_pinned_versions(name: str) -> None:
    try:
        installed = distribution(name).version
    except PackageNotFoundError:  # pragma: no cover - the closure test names what is missing
        pytest.fail(f"{name} is pinned but not installed")
    assert installed == CONSTRAINTS[name], "reinstall the venv: make clean install"


def test_the_projects_ranges_admit_the_pins_and_boto3_has_if_none_match() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ranges = {canonical(Requirement(r).name): Requirement(r).specifier for r in project["dependencies"]}
    assert set(ranges) == set(LAYER)
    for name, specifier in ranges.items():
        assert Version(LAYER[name]) in specifier, f"{name} {LAYER[name]} is outside {specifier}"
    # S3 PutObject If-None-Match (results written once) is in botocore from 1.35.10.
    for name in ("boto3", "botocore"):
        assert Version("1.35.9") not in ranges[name]
        assert Version("1.35.10") in ranges[name]


def test_the_dev_tools_accept_the_layers_pydantic() -> None:
    # aws-sam-translator (cfn-lint's SAM support) pins its own pydantic range: it must admit the layer's.
    (requirement,) = [
        Requirement(r) for r in distribution("aws-sam-translator").requires or [] if r.startswith("pydantic")
    ]
    assert Version(CONSTRAINTS["pydantic"]) in SpecifierSet(str(requirement.specifier))
