"""Fixtures for the end-to-end tests: sample media for the session, and pipelines started per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.integration.support import Harness, Media, Observer
from videobatch_tools.localstack.pipeline import LocalPipeline

StartPipeline = Callable[..., Harness]

# Template parameters that save wall time without changing what is tested (a test can override them):
# - idle means every schedule has looked once more after the last work; with the sweeper's default 15 minutes a
#   run would end with up to 15 virtual minutes of empty polling, about 5 s of wall time;
# - a partial batch goes out at the next flush instead of waiting 15 minutes to fill up.
FAST = {"SweepRate": "rate(1 minute)", "MaxWaitSeconds": "0"}


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return Media(tmp_path_factory.mktemp("media"))


@pytest.fixture
def start_pipeline() -> Iterator[StartPipeline]:
    """``start_pipeline(**LocalPipeline kwargs, sample_active=False)`` -> a running Harness, stopped after the test.

    Each pipeline gets its own stack name: moto's backends are process-wide, so resources of an earlier test
    are still there.
    """
    with ExitStack() as stack:

        def start(
            *, sample_active: bool = False, parameter_overrides: dict[str, str] | None = None, **kwargs: Any
        ) -> Harness:
            observer = Observer(sample_active=sample_active)
            pipeline = LocalPipeline(
                stack_name=f"it{uuid.uuid4().hex[:8]}",
                handler_hook=observer.hook,
                parameter_overrides={**FAST, **(parameter_overrides or {})},
                **kwargs,
            )
            stack.enter_context(pipeline)
            harness = Harness(pipeline, observer)
            stack.callback(harness.close)
            return harness

        yield start
