"""Where the client's API key comes from: a fixed string, or a provider that can re-read a rotated key.

On a 401/403 the client calls ``refresh()`` once and, when that yields a different key, repeats the same call once
with it. Safe for every call, batch create included: the API refused the key before doing anything.
"""

from __future__ import annotations

from pathlib import Path
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


class ApiKeyFileError(ValueError):
    """A key file that is missing, unreadable, empty or not one key (the message never holds the key)."""


def read_api_key_file(path: Path) -> str:
    """The API key a file holds (surrounding whitespace dropped), for the local tools and the ops CLI, so the key
    never appears on a command line; ApiKeyFileError naming the file and the problem otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ApiKeyFileError(f"{path}: no such file") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ApiKeyFileError(f"{path}: cannot be read ({type(error).__name__})") from error
    key = text.strip()
    if not key:
        raise ApiKeyFileError(f"{path}: the file is empty (it must hold the TwelveLabs API key)")
    if any(character.isspace() for character in key):
        raise ApiKeyFileError(f"{path}: the key must be one line without spaces")
    return key
