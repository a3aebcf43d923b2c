"""Rate limits: off by default; when configured, 429 too_many_requests with the X-Ratelimit headers, on the clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.emulator.support import Emu, item

pytestmark = pytest.mark.integration

START_EPOCH = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
RATELIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset")


def _url_asset(emu: Emu) -> httpx.Response:
    return emu.api.post("/assets", data={"method": "url", "url": "http://127.0.0.1:9/none.mp4"})


def _headers(response: httpx.Response) -> tuple[str, ...]:
    return tuple(response.headers.get(name, "") for name in RATELIMIT_HEADERS)


def test_no_limits_and_no_headers_by_default(emu: Emu) -> None:
    answers = [_url_asset(emu) for _ in range(8)]
    assert {a.status_code for a in answers} == {201}
    assert all("x-ratelimit-limit" not in a.headers for a in answers)


def test_requests_per_minute(emu: Emu) -> None:
    emu.settings(rate_limits={"requests_per_minute": 2})
    emu.advance(10)
    first, second, third = (_url_asset(emu) for _ in range(3))
    reset = str(START_EPOCH + 60)
    assert _headers(first) == ("2", "1", "1", reset)
    assert _headers(second) == ("2", "0", "2", reset)
    assert third.status_code == 429
    assert third.json() == {"code": "too_many_requests", "message": third.json()["message"]}
    assert _headers(third) == ("2", "0", "2", reset)
    assert third.headers["retry-after"] == "50"
    assert emu.api.get("/assets").status_code == 200  # reads are not rate-limited
    emu.advance(50)
    assert _url_asset(emu).status_code == 201


def test_requests_per_day_count_across_endpoints(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])  # before the limit: not counted
    emu.settings(rate_limits={"requests_per_day": 2})
    assert emu.create_batch([item(asset)]).status_code == 201
    assert _url_asset(emu).status_code == 201
    refused = emu.create_batch([item(asset)])
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_requests"
    assert refused.headers["x-ratelimit-reset"] == str(START_EPOCH + 86_400)
    assert len(emu.api.get("/analyze/batches").json()["data"]) == 1


def test_video_seconds_per_minute(emu: Emu, videos: dict[str, Path]) -> None:
    asset = emu.upload(videos["short"])  # 20 s
    emu.settings(rate_limits={"video_seconds_per_minute": 30})
    accepted = emu.create_batch([item(asset)])
    assert accepted.status_code == 201
    assert accepted.headers["x-ratelimit-used"] == "20"
    refused = emu.create_batch([item(asset)])
    assert refused.status_code == 429
    assert "seconds of video per minute" in refused.json()["error"]["message"]
    assert _headers(refused)[:3] == ("30", "10", "20")
    assert emu.create_batch([item(asset, start_time=0, end_time=5)]).status_code == 201  # 5 s still fits


def test_ratelimit_headers_only_drops_retry_after(emu: Emu) -> None:
    emu.settings(rate_limits={"requests_per_minute": 1}, variants=["ratelimit_headers_only"])
    _url_asset(emu)
    refused = _url_asset(emu)
    assert refused.status_code == 429
    assert "retry-after" not in refused.headers
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-reset"] == str(START_EPOCH + 60)


def test_rate_limit_settings_are_validated(emu: Emu) -> None:
    assert emu.control.post("/_emulator/settings", json={"rate_limits": {"requests_per_minute": 0}}).status_code == 400
    assert emu.control.post("/_emulator/settings", json={"rate_limits": {"per_hour": 5}}).status_code == 400
