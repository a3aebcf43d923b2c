"""The local AWS stack against a TwelveLabs-compatible endpoint it did not start (``--api-url``): the real API with
the user's key, or an emulator running elsewhere.

``ExternalApi.probe(url, key)`` looks once for the emulator's control endpoint ``POST /_emulator/clock`` (at the
URL's origin, never with the API key): when it answers with the endpoint's ``now``, the endpoint runs on a virtual
clock the local stack can drive, and every advance of the pipeline's clock is sent there too, so both move
together. Anything else (404 from the real API, 409 from an emulator on real time, no answer) means real time: the
pipeline's clock follows the wall clock and a wait really waits (``advance`` sleeps), which the demo bounds.

The API key is read once from a file (``read_api_key``) and handed to the stack's secret in the local Secrets
Manager (moto) and to the in-process runtime; it is never logged, printed or put in an environment variable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import httpx

from videobatch.clock import ManualClock
from videobatch.twelvelabs.keys import ApiKeyFileError, read_api_key_file

__all__ = ["ApiKeyFileError", "ExternalApi", "clock_url", "read_api_key"]

CLOCK_PATH: Final = "/_emulator/clock"
PROBE_TIMEOUT_SECONDS: Final = 5.0


def read_api_key(path: Path) -> str:
    """The key ``--api-key-file`` names (``keys.read_api_key_file``; the message names the flag)."""
    try:
        return read_api_key_file(path)
    except ApiKeyFileError as error:
        raise ApiKeyFileError(f"--api-key-file {error}") from error


def clock_url(api_url: str) -> str:
    """``POST /_emulator/clock`` at the API URL's origin (``http://host:port/v1.3`` -> ``http://host:port``)."""
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}{CLOCK_PATH}"


@dataclass
class ExternalApi:
    url: str
    key: str = field(repr=False)  # never shown
    # The endpoint's virtual clock (None: real time).
    virtual_now: datetime | None = None
    sleep: Callable[[float], None] = time.sleep
    _http: httpx.Client | None = field(default=None, repr=False)

    @property
    def virtual(self) -> bool:
        return self.virtual_now is not None

    @classmethod
    def probe(cls, url: str, key: str, *, client: httpx.Client | None = None) -> ExternalApi:
        http = client or httpx.Client(timeout=PROBE_TIMEOUT_SECONDS, trust_env=False)
        try:
            response = http.post(clock_url(url), json={"advance_seconds": 0})
            now = _timestamp(response.json()["now"]) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            now = None
        finally:
            if client is None:
                http.close()
        return cls(url=url.rstrip("/"), key=key, virtual_now=now)

    def start(self) -> datetime:
        """Where the pipeline's clock starts: the endpoint's virtual now, or the wall clock's."""
        return self.virtual_now or datetime.now(UTC)

    def advancer(self, clock: ManualClock) -> Callable[[float], object]:
        """``advance(seconds)`` for the wiring: the endpoint's virtual clock moved with ours, or a real wait."""
        if not self.virtual:

            def wait(seconds: float) -> object:
                self.sleep(seconds)
                return clock.advance(seconds)

            return wait
        target = clock_url(self.url)

        def move(seconds: float) -> object:
            if self._http is None:
                self._http = httpx.Client(timeout=PROBE_TIMEOUT_SECONDS, trust_env=False)
            self._http.post(target, json={"advance_seconds": seconds}).raise_for_status()
            return clock.advance(seconds)

        return move

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError("now is not a string")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("now has no time zone")
    return moment.astimezone(UTC)
