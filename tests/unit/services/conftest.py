import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from moto.server import ThreadedMotoServer

from twelvelabs_emulator import EmulatorConfig, EmulatorServer, EmulatorSettings
from videobatch.clock import ManualClock
from videobatch_tools.samples import write_non_video, write_sample_video

from .harness import API_KEY, MemoryStack, MotoStack, Stack, make_settings


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> str:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    httpx.post(f"{moto_endpoint}/moto-api/reset").raise_for_status()
    return moto_endpoint


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def emulator_config() -> EmulatorConfig:
    settings = EmulatorSettings(item_concurrency=4, content_seconds_per_second=60.0, asset_ready_seconds=5.0)
    return EmulatorConfig(api_key=API_KEY, settings=settings, multipart_chunk_bytes=4096)


@pytest.fixture
def emulator(clock: ManualClock) -> Iterator[EmulatorServer]:
    with EmulatorServer(emulator_config(), clock=clock) as server:
        yield server


@pytest.fixture
def moto_stack(aws_env: str, clock: ManualClock, emulator: EmulatorServer) -> Iterator[MotoStack]:
    built = MotoStack(aws_env, clock, emulator, make_settings(emulator.api_url))
    built.provision()
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def memory_stack(clock: ManualClock) -> Iterator[MemoryStack]:
    built = MemoryStack(clock, emulator_config())
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Stack:
    """The moto stack for a test marked ``integration`` (it reads what only AWS has), the in-memory one otherwise."""
    on_moto = request.node.get_closest_marker("integration") or request.config.getoption("stack") == "moto"
    name = "moto_stack" if on_moto else "memory_stack"
    built: Stack = request.getfixturevalue(name)
    return built


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    return {
        "short": write_sample_video(root / "short.mp4", duration_seconds=20),
        "short2": write_sample_video(root / "short2.mp4", duration_seconds=30, seed=2),
        "three_hours": write_sample_video(root / "three.mp4", duration_seconds=3 * 3600, fps=0.2),
        "over_four_hours": write_sample_video(root / "over.mp4", duration_seconds=4 * 3600 + 60, fps=0.2),
        "text": write_non_video(root / "notes.mp4"),
    }
