"""The TwelveLabs API key (and the webhook secret) from Secrets Manager, cached across invocations.

A key put with ``put-secret-value`` is picked up within ``max_age_seconds`` (5 minutes) by a warm container, and
at once when TwelveLabs refuses the cached one: the client calls ``refresh()`` on a 401/403, which reads the
secret again, bypassing the cache (``twelvelabs.keys.ApiKeyProvider``).

One ``GetSecretValue`` through the runtime's botocore client, not Powertools' ``SecretsProvider``: that one imports
boto3 (~20 ms of every cold start) for a cache of one value.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from videobatch.clock import Clock, SystemClock
from videobatch.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

# A rotated key is picked up within this time without a cold start.
DEFAULT_MAX_AGE_SECONDS: Final = 300
# Errors that no retry mends: the stack names a secret that is not there, or the function may not read it.
_CONFIGURATION_CODES: Final = frozenset({"ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure"})


class SecretApiKeyProvider:
    def __init__(
        self,
        client: SecretsManagerClient,
        secret_name: str,
        *,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        json_field: str = "api_key",
        clock: Clock | None = None,
    ) -> None:
        """``json_field``: the field holding the value when the secret is JSON (the webhook secret: "secret")."""
        self._client = client
        self._name = secret_name
        self._max_age_seconds = max_age_seconds
        self._field = json_field
        self._clock = clock or SystemClock()
        self._cached: tuple[str, float] | None = None  # (key, monotonic time read)
        self._lock = threading.Lock()  # the flusher's threads may ask at once: one read, not one per thread

    def __call__(self) -> str:
        return self.get()

    def get(self) -> str:
        """The key (cached up to ``max_age_seconds``); the secret may be the plain key or JSON with the field."""
        return self._read(force=False)

    def refresh(self) -> str:
        """The key as the secret holds it now (the cache is bypassed and renewed)."""
        return self._read(force=True)

    def __repr__(self) -> str:
        return f"SecretApiKeyProvider({self._name!r})"  # never the key

    def _read(self, *, force: bool) -> str:
        with self._lock:
            cached = self._cached
            if not force and cached is not None and self._clock.monotonic() - cached[1] < self._max_age_seconds:
                return cached[0]
            key = _extract_key(self._fetch(), self._name, self._field)
            self._cached = (key, self._clock.monotonic())
            return key

    def _fetch(self) -> str:
        try:
            response = self._client.get_secret_value(SecretId=self._name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _CONFIGURATION_CODES:
                raise ConfigurationError(f"secret {self._name} cannot be read: {code}") from error
            raise  # throttling, an outage: the invocation fails and is retried, as for any AWS call
        value = response.get("SecretString")
        if value is None and "SecretBinary" in response:
            try:
                value = response["SecretBinary"].decode("utf-8")
            except UnicodeDecodeError as error:
                raise ConfigurationError(f"secret {self._name} is binary, not UTF-8 text") from error
        if not value or not value.strip():
            raise ConfigurationError(f"secret {self._name} holds no TwelveLabs API key")
        return value.strip()


def _extract_key(value: str, name: str, field: str) -> str:
    if not value.startswith("{"):
        return value
    import json

    try:
        document = json.loads(value)
    except ValueError as error:
        raise ConfigurationError(f"secret {name} looks like JSON but does not parse") from error
    key = document.get(field) if isinstance(document, dict) else None
    if not isinstance(key, str) or not key:
        raise ConfigurationError(f"secret {name} is JSON without a non-empty {field!r} field")
    return key
