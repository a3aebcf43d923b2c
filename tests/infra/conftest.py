"""Fixtures for the template and the local stack (moto in server mode on 127.0.0.1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from videobatch.clock import ManualClock
from videobatch_tools.localstack.moto_server import MotoEndpoint, moto_server
from videobatch_tools.localstack.resources import LocalStack, create_stack
from videobatch_tools.localstack.template import default_template_path, load_template


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(default_template_path())


@pytest.fixture
def moto() -> Iterator[MotoEndpoint]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def stack(template: dict[str, Any], moto: MotoEndpoint) -> LocalStack:
    # moto's backends are process-wide: a fresh stack name keeps tests from seeing each other's resources.
    return create_stack(
        template,
        stack_name=f"t{uuid.uuid4().hex[:8]}",
        endpoint_url=moto.endpoint_url,
        parameter_overrides={"TwelveLabsBaseUrl": "http://127.0.0.1:9/v1.3"},
        api_key="local-test-key",
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
