"""Fetching ``method=url`` assets: a real HTTP GET, streamed to a temporary file."""

from __future__ import annotations

from pathlib import Path

import httpx

FETCH_TIMEOUT_SECONDS = 60.0
_STREAM_CHUNK_BYTES = 1024 * 1024


class FetchError(Exception):
    """The URL could not be fetched; the message becomes the failed asset's ``error.message``."""


def fetch_to_file(url: str, target: Path, *, max_bytes: int) -> None:
    """GET ``url`` into ``target``; ``FetchError`` on a transport failure, an error status or too many bytes."""
    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise FetchError(f"Could not fetch the URL: the server answered HTTP {response.status_code}.")
            _copy(response, target, max_bytes)
    except httpx.HTTPError as error:
        raise FetchError(f"Could not fetch the URL: {type(error).__name__}: {error}") from error


def _copy(response: httpx.Response, target: Path, max_bytes: int) -> None:
    written = 0
    with target.open("wb") as out:
        for chunk in response.iter_bytes(_STREAM_CHUNK_BYTES):
            written += len(chunk)
            if written > max_bytes:
                raise FetchError(f"The file at the URL exceeds the {max_bytes}-byte limit for URL uploads.")
            out.write(chunk)
