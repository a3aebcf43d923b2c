"""``videobatch demo --api-url URL --api-key-file PATH``: the local AWS stack against a TwelveLabs endpoint it did
not start (here an emulator started apart, as the real API would be), with the key read from a file."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from twelvelabs_emulator import EmulatorConfig, EmulatorServer, EmulatorSettings
from videobatch_tools.cli import main
from videobatch_tools.demos import pipeline as demo
from videobatch_tools.localstack.external_api import ApiKeyFileError, ExternalApi, read_api_key

pytestmark = pytest.mark.integration

KEY = "tlk_external_" + uuid.uuid4().hex


def external(clock: str) -> Iterator[EmulatorServer]:
    settings = EmulatorSettings(item_concurrency=4, content_seconds_per_second=600.0, asset_ready_seconds=20.0)
    with EmulatorServer(EmulatorConfig(api_key=KEY, clock=clock, settings=settings)) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture
def virtual_endpoint() -> Iterator[EmulatorServer]:
    yield from external("virtual")


@pytest.fixture
def real_time_endpoint() -> Iterator[EmulatorServer]:
    yield from external("real")


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "twelvelabs.key"
    path.write_text(KEY + "\n")
    return path


def test_the_demo_drives_an_external_endpoints_virtual_clock(
    virtual_endpoint: EmulatorServer, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = virtual_endpoint.state.now()
    api = ExternalApi.probe(virtual_endpoint.api_url, read_api_key(key_file))
    assert api.virtual_now == started
    code = demo.run(sys.stdout, external=api, stack_name=f"ext{uuid.uuid4().hex[:8]}")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "its virtual clock driven through /_emulator/clock" in out
    # The work really went to that endpoint, with the key from the file, and its clock moved with the pipeline's.
    (batch,) = virtual_endpoint.state.batches.values()
    assert batch.status == "completed"
    # Pushed by multipart: an external endpoint cannot fetch the local S3's presigned URLs.
    assert [session.status for session in virtual_endpoint.state.uploads.values()] == ["completed"]
    assert virtual_endpoint.state.now() > started
    (kitchen,) = [line for line in out.splitlines() if line.startswith("videos/kitchen.mp4")]
    assert " done " in kitchen
    assert KEY not in out


def test_the_demo_waits_a_bounded_time_for_an_endpoint_on_real_time(
    real_time_endpoint: EmulatorServer, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = ExternalApi.probe(real_time_endpoint.api_url, read_api_key(key_file))
    assert not api.virtual  # the emulator's clock endpoint refuses to move a real clock (409)
    code = demo.run(sys.stdout, external=api, max_wait_seconds=1.5, stack_name=f"ext{uuid.uuid4().hex[:8]}")
    out = capsys.readouterr().out
    assert code == demo.TIMED_OUT, out
    assert "real time; waiting at most 1.5 s" in out
    assert "[     0 s]" in out  # the progress line before the wait
    assert "stopped after waiting 1.5 s: 1 item(s) still on their way" in out
    # Ingest ran at once (its queue needs no schedule): the video became an asset at the endpoint.
    assert len(real_time_endpoint.state.assets) == 1
    assert KEY not in out
    assert not any(KEY in value for value in os.environ.values())


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), ("", "the file is empty"), ("  \n", "the file is empty"), ("two words", "one line")],
)
def test_a_missing_or_empty_key_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ApiKeyFileError, match=message):
        read_api_key(path)
    # The command says so and starts nothing (the URL is never contacted: nothing listens there).
    code = main(["demo", "--api-url", "http://127.0.0.1:9/v1.3", "--api-key-file", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err
    assert str(path) in captured.err


def test_the_url_and_the_key_file_go_together(capsys: pytest.CaptureFixture[str], key_file: Path) -> None:
    assert main(["demo", "--api-url", "http://127.0.0.1:9/v1.3"]) == 2
    assert main(["demo", "--api-key-file", str(key_file)]) == 2
    assert "go together" in capsys.readouterr().err
