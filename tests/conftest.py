"""Fixtures shared by the emulator and conformance suites: a running emulator and real sample videos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator.support import Emu, running
from videobatch_tools.samples import write_corrupt_video, write_non_video, write_sample_video


@pytest.fixture
def emu() -> Iterator[Emu]:
    with running() as server:
        client = Emu(server)
        try:
            yield client
        finally:
            client.close()


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real MP4s; the long ones are tiny-frame and low-rate, so a 4 h video costs a fraction of a second."""
    root = tmp_path_factory.mktemp("videos")
    return {
        "short": write_sample_video(root / "short.mp4", duration_seconds=20),
        "three_hours": write_sample_video(root / "three.mp4", duration_seconds=3 * 3600, fps=0.2),
        "four_hours": write_sample_video(root / "four.mp4", duration_seconds=4 * 3600, fps=0.2),
        "over_four_hours": write_sample_video(root / "over.mp4", duration_seconds=4 * 3600 + 60, fps=0.2),
        "text": write_non_video(root / "notes.mp4"),
        "corrupt": write_corrupt_video(root / "corrupt.mp4"),
    }


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--stack",
        choices=("auto", "moto"),
        default="auto",
        help="service tests: 'auto' runs the unmarked ones on the in-memory stack, 'moto' runs all on moto",
    )
