import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.services.conftest import aws_env, clock, emulator, moto_endpoint, videos
from tests.unit.services.harness import API_KEY, MotoStack, make_settings
from twelvelabs_emulator import EmulatorServer
from videobatch import runtime
from videobatch.clock import ManualClock

__all__ = ["aws_env", "clock", "emulator", "moto_endpoint", "videos"]

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def load_handler(folder: str) -> ModuleType:
    """Import functions/<folder>/<folder>_handler.py as Lambda does (by file, not as a package)."""
    path = FUNCTIONS / folder / f"{folder}_handler.py"
    spec = importlib.util.spec_from_file_location(f"{folder}_handler", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeContext:
    """The Lambda context attributes the handlers and Powertools read."""

    function_name = "test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def stack(
    aws_env: str, clock: ManualClock, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MotoStack]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    # The module-level Metrics read the environment at import; the template sets it for real Lambdas.
    monkeypatch.setattr(runtime.metrics, "namespace", "videobatch-test")
    built = MotoStack(aws_env, clock, emulator, make_settings(emulator.api_url))
    built.provision()
    wired = runtime.build_runtime(built.settings, clock=clock, api_key=API_KEY)
    try:
        with runtime.use_runtime(wired):
            yield built
    finally:
        wired.twelvelabs.close()
        built.close()
