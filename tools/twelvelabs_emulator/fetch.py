"""Fetching ``method=url`` assets: a real HTTP GET, streamed to a file, only from allowed hosts.

The emulator runs next to other services (moto, the developer's machine), so a URL asset must not become a way to
make it read arbitrary addresses. Only hosts on the allow-list are fetched (by default loopback, where the local
S3 endpoint listens); redirects are followed by hand so that every hop is checked again, and proxies from the
environment are ignored so the request goes where the check looked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path
from typing import Final
from urllib.parse import urljoin, urlsplit

import httpx

FETCH_TIMEOUT_SECONDS: Final = 60.0
MAX_REDIRECTS: Final = 5
DEFAULT_ALLOWED_HOSTS: Final[tuple[str, ...]] = ("localhost", "127.0.0.0/8", "::1")
_STREAM_CHUNK_BYTES: Final = 1024 * 1024
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """The URL could not be fetched; the message becomes the failed asset's ``error.message``."""


class HostAllowList:
    """Host names (exact, case-insensitive) and IP networks (``127.0.0.0/8``, ``::1``) a URL may point at."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._names: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._names.add(entry.lower())

    def allows(self, url: str) -> bool:
        host = urlsplit(url).hostname
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host.lower() in self._names
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)


def fetch_to_file(url: str, target: Path, *, max_bytes: int, allowed: HostAllowList) -> None:
    """GET ``url`` into ``target``; FetchError on a refused host, a transport failure, an error status or size."""
    with httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as http:
        for _ in range(MAX_REDIRECTS + 1):
            if not allowed.allows(url):
                raise FetchError(f"Could not fetch the URL: the host of {_origin(url)} is not allowed.")
            try:
                with http.stream("GET", url) as response:
                    location = _redirect(response)
                    if location is None:
                        _copy(response, target, max_bytes)
                        return
            except httpx.HTTPError as error:
                raise FetchError(f"Could not fetch the URL: {type(error).__name__}: {error}") from error
            url = urljoin(url, location)
    raise FetchError(f"Could not fetch the URL: more than {MAX_REDIRECTS} redirects.")


def _redirect(response: httpx.Response) -> str | None:
    if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
        return response.headers["location"]
    if response.status_code >= 400:
        raise FetchError(f"Could not fetch the URL: the server answered HTTP {response.status_code}.")
    return None


def _copy(response: httpx.Response, target: Path, max_bytes: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"The file at the URL exceeds the {max_bytes}-byte limit for URL uploads.")
    written = 0
    with target.open("wb") as out:
        for chunk in response.iter_bytes(_STREAM_CHUNK_BYTES):
            written += len(chunk)
            if written > max_bytes:
                raise FetchError(f"The file at the URL exceeds the {max_bytes}-byte limit for URL uploads.")
            out.write(chunk)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
