"""Presigned URLs (chunk uploads, asset downloads): an HMAC over the path and expiry, like S3's, with no API key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from twelvelabs_emulator.api_errors import RawApiError


class UrlSigner:
    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def url(self, base_url: str, path: str, expires_at: datetime) -> str:
        expires = str(int(expires_at.timestamp()))
        return f"{base_url}{path}?expires={expires}&signature={self._sign(path, expires)}"

    def check(self, path: str, expires: str, signature: str, now: datetime) -> None:
        """403 unless ``signature`` signs ``path`` until ``expires`` and that moment has not passed.

        The codes are the storage service's (S3's), not the TwelveLabs API's: presigned URLs point at storage.
        """
        if not hmac.compare_digest(self._sign(path, expires), signature):
            raise RawApiError(403, "SignatureDoesNotMatch", "The presigned URL's signature does not match.")
        if not expires.isdigit() or now.timestamp() >= int(expires):
            raise RawApiError(403, "AccessDenied", "The presigned URL has expired; request a new one.")

    def _sign(self, path: str, expires: str) -> str:
        return hmac.new(self._key, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()
