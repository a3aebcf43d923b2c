"""The official SDK and the project's client against the emulator's variants, rate limits and key rotation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from twelvelabs import TwelveLabs

from tests.emulator.support import API_KEY, Emu, item, running
from videobatch.clock import ManualClock
from videobatch.errors import AuthenticationError
from videobatch.twelvelabs.client import TwelveLabsClient
from videobatch.twelvelabs.models import AnalysisOptions, BatchCreateRequest, BatchItemRequest, Prompt, VideoContext

pytestmark = pytest.mark.integration


def _request(asset_id: str, count: int = 2) -> BatchCreateRequest:
    return BatchCreateRequest(
        analysis_mode="general",
        requests=[BatchItemRequest(video=VideoContext(asset_id=asset_id), custom_id=f"w{i}") for i in range(count)],
        defaults=AnalysisOptions(prompt=Prompt(input_text="Summarise the video.")),
    )


@pytest.fixture
def sdk(emu: Emu) -> Iterator[TwelveLabs]:
    with httpx.Client(timeout=30.0) as http:
        yield TwelveLabs(api_key=API_KEY, base_url=emu.server.api_url, httpx_client=http)


@pytest.fixture
def client(emu: Emu) -> Iterator[TwelveLabsClient]:
    with TwelveLabsClient(API_KEY, base_url=emu.server.api_url, clock=ManualClock()) as tl:
        yield tl


def test_noisy_results_both_clients(
    emu: Emu, sdk: TwelveLabs, client: TwelveLabsClient, videos: dict[str, Path]
) -> None:
    asset = emu.upload(videos["short"])
    emu.settings(variants=["results_noise", "ready_with_warning"])
    batch_id = client.create_batch(_request(asset)).batch_id
    emu.advance(10)
    sdk_lines = list(sdk.analyze_async.batches.results(batch_id))
    assert [line.custom_id for line in sdk_lines] == ["w0", "w1", None]
    with client.stream_batch_results(batch_id) as results:
        lines = list(results)
    assert [(line.custom_id, line.status, line.parsed) for line in lines] == [
        ("w0", "ready", True),
        ("w1", "ready", True),
        (None, "ready", True),
    ]
    assert (results.blank_lines, results.skipped_lines) == (2, 1)
    assert all(line.warning is not None for line in lines[:2])


def test_new_enum_values_both_clients(
    emu: Emu, sdk: TwelveLabs, client: TwelveLabsClient, videos: dict[str, Path]
) -> None:
    asset = emu.upload(videos["short"])
    emu.settings(variants=["new_enum_values"], item_concurrency=1)
    created = client.create_batch(_request(asset))
    assert created.status == "validating"
    assert sdk.analyze_async.batches.retrieve(created.batch_id).status == "validating"
    assert [b.status for b in client.iter_batches()] == ["validating"]
    emu.advance(1)
    with client.stream_batch_results(created.batch_id) as results:
        assert [line.status for line in results] == ["processing", "scheduled"]
    emu.advance(60)
    with client.stream_batch_results(created.batch_id) as results:
        finished = list(results)
    assert {(line.data.finish_reason, line.data.known_finish_reason) for line in finished if line.data} == {
        ("end_turn", None)
    }
    assert sdk.analyze_async.batches.retrieve(created.batch_id).status == "completed"


def test_the_client_waits_out_a_rate_limit_on_the_shared_clock(videos: dict[str, Path]) -> None:
    clock = ManualClock()
    with running(clock=clock) as server:
        emu = Emu(server)
        try:
            asset = emu.upload(videos["short"])
            emu.settings(rate_limits={"requests_per_minute": 1})
            with TwelveLabsClient(API_KEY, base_url=server.api_url, clock=clock, default_max_wait_seconds=120) as tl:
                tl.create_batch(_request(asset, 1))
                tl.create_batch(_request(asset, 1))  # 429, Retry-After to the next minute, then created
            assert clock.now().second == 0
            assert len(emu.api.get("/analyze/batches").json()["data"]) == 2
        finally:
            emu.close()


def test_the_client_reads_the_reset_header_when_retry_after_is_missing(videos: dict[str, Path]) -> None:
    clock = ManualClock()
    with running(clock=clock, variants=["ratelimit_headers_only"]) as server:
        emu = Emu(server)
        try:
            asset = emu.upload(videos["short"])
            emu.settings(rate_limits={"requests_per_minute": 1})
            emu.advance(15)
            with TwelveLabsClient(API_KEY, base_url=server.api_url, clock=clock, default_max_wait_seconds=120) as tl:
                tl.create_batch(_request(asset, 1))
                tl.create_batch(_request(asset, 1))
            # The second waited exactly until the minute's window reset (no exponential guess).
            assert clock.now().second == 0
            assert len(emu.api.get("/analyze/batches").json()["data"]) == 2
        finally:
            emu.close()


class SecretStore:
    """A rotated secret: the provider's cache still holds the old key."""

    def __init__(self) -> None:
        self.value = "the-old-key"
        self.cached = self.value

    def get(self) -> str:
        return self.cached

    def refresh(self) -> str:
        self.cached = self.value
        return self.cached


def test_a_rotated_key_is_picked_up_on_the_first_refusal(videos: dict[str, Path]) -> None:
    with running(api_key="the-new-key") as server:
        store = SecretStore()
        store.value = "the-new-key"
        with TwelveLabsClient(store, base_url=server.api_url, clock=ManualClock()) as tl:
            asset = tl.create_asset_from_file(videos["short"].read_bytes(), filename="short.mp4")
            assert asset.status == "processing"
            assert tl.list_assets().data[0].id == asset.id
        wrong = SecretStore()
        with (
            TwelveLabsClient(wrong, base_url=server.api_url, clock=ManualClock()) as tl,
            pytest.raises(AuthenticationError),
        ):
            tl.list_assets()


def test_the_sdk_accepts_item_level_refusals_and_cancel_202(emu: Emu, sdk: TwelveLabs, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])
    emu.settings(variants=["item_level_refusals"])
    response = emu.create_batch([item("f" * 24, custom_id="gone"), item(asset, custom_id="ok")])
    assert response.status_code == 201
    canceled = sdk.analyze_async.batches.cancel(response.json()["batch_id"])
    assert canceled.status == "canceling"
