"""Lambda Function URLs on the local stack, and the emulator's signed notifications delivered through one.

``FunctionUrl``: an HTTP request becomes the payload format 2.0 event a Function URL hands its function (header
names lower-cased; the body as text for textual content types, else base64 with ``isBase64Encoded``;
``requestContext.http.method``), the function runs through the wiring (synchronously, as a URL invokes it), and
its answer becomes the response: ``statusCode`` / ``headers`` / ``body`` as returned, a bare value as a 200 JSON
body, and a function that raised as 502, as Lambda's front end answers.

``WebhookRelay``: the emulator's ``webhook_sender``. The emulator sends a notification from whichever thread made
the request that let it see a batch end (its own HTTP thread, mostly), while the handlers must run one at a time on
the wiring's thread (they share the process's environment and Powertools objects). So the relay only queues what
the emulator sends (the emulator records it as delivered, as a URL front end that accepted the request would), and
delivers it through the webhook function's URL at the wiring's next step, keeping every answer in ``deliveries``.
It is a ``WiringSource``: each step first lets the emulator notice batches that ended by then
(``deliver_webhooks``), and its ``next_due`` is the emulator's next item completion, so the virtual clock stops
where a batch can end instead of jumping to the next schedule.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from videobatch.clock import Clock

if TYPE_CHECKING:
    from twelvelabs_emulator.server import EmulatorServer
    from twelvelabs_emulator.webhooks import WebhookRequest
    from videobatch_tools.localstack.wiring import Invocation

# Content types a Function URL passes as text (anything else arrives base64-encoded).
_TEXT_TYPES: Final = ("text/", "application/json", "application/xml", "application/javascript")
_ACTIVE_BATCH_STATUSES: Final = ("pending", "processing", "canceling")


@dataclass(frozen=True)
class UrlResponse:
    status_code: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def url_event(method: str, url: str, body: bytes, headers: Mapping[str, str], *, now: datetime) -> dict[str, Any]:
    """The event a Function URL hands its function for one request (payload format 2.0)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type", "")
    text: str | None = None
    if any(content_type.startswith(kind) for kind in _TEXT_TYPES):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    parts = urlsplit(url)
    path = parts.path or "/"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": parts.hostname.split(".", 1)[0] if parts.hostname else "local",
            "domainName": parts.hostname or "localhost",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text if text is not None else base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": text is None,
    }


class FunctionUrl:
    """``url`` of one function; ``invoke(event)`` runs it through the wiring."""

    def __init__(self, url: str, invoke: Callable[[dict[str, Any]], Invocation], clock: Clock) -> None:
        self.url = url
        self._invoke = invoke
        self._clock = clock

    def request(self, method: str, body: bytes, headers: Mapping[str, str]) -> UrlResponse:
        invocation = self._invoke(url_event(method, self.url, body, headers, now=self._clock.now()))
        if invocation.error is not None:
            return UrlResponse(
                502, {"content-type": "application/json"}, json.dumps({"Message": "Internal Server Error"})
            )
        result = invocation.result
        if isinstance(result, Mapping) and "statusCode" in result:
            headers_out = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
            raw = result.get("body") or ""
            text = base64.b64decode(raw).decode("utf-8") if result.get("isBase64Encoded") else str(raw)
            return UrlResponse(int(result["statusCode"]), headers_out, text)
        return UrlResponse(200, {"content-type": "application/json"}, json.dumps(result))


@dataclass
class Delivery:
    request: WebhookRequest
    response: UrlResponse
    at: datetime


@dataclass
class WebhookRelay:
    """The emulator's notifications, queued as sent and delivered through ``url`` on the wiring's steps."""

    clock: Clock
    url: FunctionUrl | None = None
    emulator: EmulatorServer | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    _queued: list[WebhookRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, request: WebhookRequest) -> None:
        """The emulator's ``webhook_sender`` (any thread)."""
        with self._lock:
            self._queued.append(request)

    def step(self) -> int:
        if self.emulator is not None:
            self.emulator.deliver_webhooks()  # batches that ended by now queue their notification
        with self._lock:
            taken, self._queued = self._queued, []
        if taken and self.url is None:
            raise RuntimeError("the webhook relay has no function URL to deliver to")
        for request in taken:
            assert self.url is not None
            response = self.url.request("POST", request.body, request.headers)
            self.deliveries.append(Delivery(request, response, self.clock.now()))
        return len(taken)

    def pending(self) -> list[str]:
        with self._lock:
            waiting = len(self._queued)
        return [f"{waiting} webhook notification(s) not yet delivered"] if waiting else []

    def next_due(self) -> datetime | None:
        """When the emulator can next see a batch end: its next item completion (or a batch about to start)."""
        if self.emulator is None:
            return None
        state = self.emulator.state
        candidates: list[datetime] = []
        with state.lock:
            for batch in state.batches.values():
                if batch.status not in _ACTIVE_BATCH_STATUSES:
                    continue
                if batch.status == "pending":
                    candidates.append(batch.created_at + timedelta(milliseconds=1))
                candidates.append(batch.expires_at)
                candidates += [
                    item.finishes_at
                    for item in batch.items
                    if item.status == "processing" and item.finishes_at is not None
                ]
            if state.webhooks is not None:
                candidates += [note.due_at for note in state.webhooks.pending]
        now = self.clock.now()
        # What is due by now the emulator noticed at this step (deliver_webhooks syncs it): only the future counts,
        # or the wiring would wait for nothing.
        return min((moment for moment in candidates if moment > now), default=None)
