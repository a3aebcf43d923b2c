"""Where the client's API key comes from: a fixed string, or a provider that can re-read a rotated key.

On a 401/403 the client calls ``refresh()`` once and, when that yields a different key, repeats the same call once
with it. Safe for every call, batch create included: the API refused the key before doing anything.
"""

from __future__ import annotations

from typing import Protocol


class ApiKeyProvider(Protocol):
    def get(self) -> str:
        """The key to send now (may be cached)."""
        ...

    def refresh(self) -> str:
        """Re-read the key from its source, bypassing any cache; returns it."""
        ...


class StaticApiKey:
    """A key that never changes: ``refresh`` returns the same key, so an auth refusal is not repeated."""

    def __init__(self, key: str) -> None:
        self._key = key

    def get(self) -> str:
        return self._key

    def refresh(self) -> str:
        return self._key

    def __repr__(self) -> str:
        return "StaticApiKey(<hidden>)"
