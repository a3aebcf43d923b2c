"""The TwelveLabs API key, from Secrets Manager through Powertools Parameters (cached across invocations).

A key put with ``put-secret-value`` is picked up within ``max_age_seconds`` (5 minutes) by a warm container, and
at once when TwelveLabs refuses the cached one: the client calls ``refresh()`` on a 401/403, which reads the
secret again, bypassing the cache (``twelvelabs.keys.ApiKeyProvider``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from videobatch.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

# A rotated key is picked up within this time without a cold start.
DEFAULT_MAX_AGE_SECONDS: Final = 300


class SecretApiKeyProvider:
    def __init__(
        self,
        client: SecretsManagerClient,
        secret_name: str,
        *,
        max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
        json_field: str = "api_key",
    ) -> None:
        """``json_field``: the field holding the value when the secret is JSON (the webhook secret: "secret")."""
        self._provider = SecretsProvider(boto3_client=client)
        self._name = secret_name
        self._max_age = max_age_seconds
        self._field = json_field

    def __call__(self) -> str:
        return self.get()

    def get(self) -> str:
        """The key (cached up to ``max_age_seconds``); the secret may be the plain key or JSON with ``api_key``."""
        return self._read(force=False)

    def refresh(self) -> str:
        """The key as the secret holds it now (the cache is bypassed and renewed)."""
        return self._read(force=True)

    def __repr__(self) -> str:
        return f"SecretApiKeyProvider({self._name!r})"  # never the key

    def _read(self, *, force: bool) -> str:
        value = self._provider.get(self._name, max_age=self._max_age, force_fetch=force)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"secret {self._name} holds no TwelveLabs API key")
        return _extract_key(value.strip(), self._name, self._field)


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
