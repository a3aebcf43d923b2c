"""Lambda entry point of the webhook fast path: a TwelveLabs notification through the function's URL.

The Function URL has no auth of its own (AuthType NONE): the ``TL-Signature`` HMAC is the authentication, checked
by ``WebhookService`` over the body bytes exactly as they were signed. This module only turns the Function URL event
(payload format 2.0) into those bytes and the service's outcome into an HTTP answer:

- 405 a method other than POST, 413 a body over ``MAX_BODY_BYTES`` (both before the secret is read);
- 400 a body that cannot be decoded or read, 401 an unsigned, forged, stale or replayed request;
- 202 a batch check started, 200 a trusted notification about nothing of ours.

Neither the headers (the signature) nor the body are logged: the handler decorator logs only the answer, and the
service logs only why it refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from videobatch.domain.webhooks import MAX_BODY_BYTES
from videobatch.errors import InvalidInputError
from videobatch.handler import Event, LambdaContext, lambda_handler
from videobatch.runtime import get_runtime


# A NamedTuple, not a dataclass: tests load this file by path without registering it in sys.modules, and
# dataclasses look their module up there.
class UrlRequest(NamedTuple):
    method: str
    headers: dict[str, str]
    body: bytes


class BadRequest(Exception):
    """The request cannot reach the service; carries the HTTP answer."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def url_request(event: Any) -> UrlRequest:
    """The method, headers (lower-cased) and raw body bytes of a Function URL event; BadRequest when unusable."""
    if not isinstance(event, Mapping):
        raise InvalidInputError(f"the webhook's event must be an object, got {type(event).__name__}")
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method", "")).upper()
    raw_headers = event.get("headers") or {}
    # Function URLs lower-case header names already; done again so a test event or another proxy cannot differ.
    headers = {str(name).lower(): str(value) for name, value in raw_headers.items()}
    if method != "POST":
        raise BadRequest(405, "only POST is accepted")
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise BadRequest(400, "the body is not a string")
    # A base64 body grows by 4/3: refuse an oversized one before decoding it.
    if event.get("isBase64Encoded"):
        if len(raw) > (MAX_BODY_BYTES + 2) // 3 * 4:
            raise BadRequest(413, f"the body is over {MAX_BODY_BYTES} bytes")
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as error:
            raise BadRequest(400, "the body is not valid base64") from error
    else:
        # Lambda hands a text body over as the string it decoded from UTF-8: its UTF-8 bytes are what was signed.
        body = raw.encode("utf-8")
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(413, f"the body is over {MAX_BODY_BYTES} bytes")
    return UrlRequest(method=method, headers=headers, body=body)


def http_response(status_code: int, message: str, **fields: Any) -> dict[str, Any]:
    """A Function URL response (payload format 2.0): the status, a JSON body saying why."""
    document = {"message": message, **{name: value for name, value in fields.items() if value is not None}}
    return {
        "statusCode": status_code,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(document),
    }


@lambda_handler("webhook")
def handler(event: Event, context: LambdaContext) -> dict[str, Any]:
    try:
        request = url_request(event)
    except BadRequest as refused:
        return http_response(refused.status_code, refused.message)
    outcome = get_runtime().webhook_service().handle(request.headers, request.body)
    return http_response(outcome.status_code, outcome.message, batch_id=outcome.batch_id)
