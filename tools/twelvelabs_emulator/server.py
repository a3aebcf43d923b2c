"""The emulator's HTTP server: a threaded stdlib server routing to ``EmulatorApi``.

Each request, in this order, so that nothing costly happens for a request that will be refused:

1. match the route (404/405);
2. check access from the headers alone: ``x-api-key`` on API routes (401), a loopback peer or the control token on
   ``/_emulator`` routes (403); presigned routes check their signature in the handler;
3. check the declared body length: malformed (400), chunked (411), above the route's bound (413); only then is the
   body read, never more than that bound;
4. apply any fault rule, count the request against the rate limits (429), handle it, write the answer.

A refusal before the body was read drains a small body (so keep-alive stays in step) and closes the connection
otherwise. A ``lose_response`` fault lets the request take effect and then closes the connection without writing
anything, which the client sees as a dropped connection. Webhooks that became due are sent before the answer, so a
clock move returns only once its notifications went out.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from types import TracebackType
from typing import Final, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twelvelabs_emulator import limits
from twelvelabs_emulator.api import EmulatorApi, UrlFetcher
from twelvelabs_emulator.api_errors import ApiError, RawApiError, error_shape, invalid
from twelvelabs_emulator.clock import Clock, ManualClock, SystemClock
from twelvelabs_emulator.fetch import DEFAULT_ALLOWED_HOSTS, HostAllowList, fetch_to_file
from twelvelabs_emulator.http import Request, Response, Route
from twelvelabs_emulator.models import EmulatorSettings
from twelvelabs_emulator.ratelimits import RATE_LIMITED_ENDPOINTS
from twelvelabs_emulator.state import DEFAULT_MULTIPART_CHUNK_BYTES, EmulatorState
from twelvelabs_emulator.webhooks import WebhookOutbox, WebhookSender, http_sender

# An idle keep-alive connection is closed after this long, so stopped servers leave no thread waiting forever.
CONNECTION_IDLE_TIMEOUT_SECONDS: Final = 30.0
# The form fields and multipart framing around a direct upload's file.
FORM_OVERHEAD_BYTES: Final = 1_000_000
# JSON bodies: the docs state no limit; a 1,000-request batch with large schemas stays well below this.
DEFAULT_MAX_JSON_BODY_BYTES: Final = 32_000_000
# A refused request's unread body up to this size is read and dropped to keep the connection usable.
DRAIN_LIMIT_BYTES: Final = 1_000_000
CONTROL_TOKEN_HEADER: Final = "x-emulator-token"  # noqa: S105 - a header name, not a token
_WILDCARD_HOSTS: Final = frozenset({"", "0.0.0.0", "::"})
_IN_PROCESS_WEBHOOK_URL: Final = "inprocess://webhook"


class EmulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65_535)
    api_key: str = Field(default="emulator-key", min_length=1)
    clock: Literal["real", "virtual"] = "virtual"
    settings: EmulatorSettings = Field(default_factory=EmulatorSettings)
    seed: int = 0
    max_direct_upload_bytes: int = Field(default=limits.MAX_DIRECT_UPLOAD_BYTES, ge=1)
    multipart_chunk_bytes: int = Field(default=DEFAULT_MULTIPART_CHUNK_BYTES, ge=1)
    max_json_body_bytes: int = Field(default=DEFAULT_MAX_JSON_BODY_BYTES, ge=1)
    storage_dir: Path | None = None
    # Base of the presigned URLs handed out (chunk uploads, downloads); default: the server's own address.
    public_base_url: str | None = None
    # When set, /_emulator routes need it in X-Emulator-Token, from any peer; when not, only loopback peers.
    control_token: str | None = Field(default=None, min_length=1)
    # Hosts a URL asset may be fetched from: names, and IP networks such as 127.0.0.0/8.
    url_fetch_allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    # Batch notifications: sent to webhook_url (or to the sender given to EmulatorServer), signed with the secret.
    webhook_url: str | None = None
    webhook_secret: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> EmulatorConfig:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("webhook_url needs webhook_secret to sign notifications")
        return self


@dataclass(frozen=True)
class Incoming:
    """A request as far as it is known before its body is read."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    client_host: str
    # None when the Content-Length header is malformed.
    content_length: int | None
    chunked: bool = False


BodyReader = Callable[[int], bytes]


class EmulatorServer:
    """Run the emulator in a background thread: ``with EmulatorServer(config) as server: server.base_url``.

    ``clock``: any object with ``now()`` (and ``advance(seconds)`` for ``POST /_emulator/clock``), such as the
    pipeline's ``ManualClock``. ``webhook_sender``: a callable receiving each signed notification instead of an
    HTTP POST (the local stack hands them to a handler in process); it needs ``config.webhook_secret``.
    ``sleep`` serves latency faults (default: a real sleep; an in-process transport turns it into a timeout) and
    ``url_fetcher`` fetches URL assets (default: HTTP GET): both for ``handle`` without sockets (``inprocess``).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        webhook_sender: WebhookSender | None = None,
        sleep: Callable[[float], None] = time.sleep,
        url_fetcher: UrlFetcher = fetch_to_file,
    ) -> None:
        self.config = config or EmulatorConfig()
        self._sleep = sleep
        # Checked before anything is allocated: a refused configuration leaves nothing behind.
        webhooks = _outbox(self.config, webhook_sender)
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        storage = self.config.storage_dir
        if storage is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="twelvelabs-emulator-")
            storage = Path(self._tempdir.name)
        self.state = EmulatorState(
            clock=clock or (ManualClock() if self.config.clock == "virtual" else SystemClock()),
            settings=self.config.settings.model_copy(),
            storage_dir=storage,
            seed=self.config.seed,
            max_direct_upload_bytes=self.config.max_direct_upload_bytes,
            multipart_chunk_bytes=self.config.multipart_chunk_bytes,
            webhooks=webhooks,
        )
        self.api = EmulatorApi(
            self.state, allowed_hosts=HostAllowList(self.config.url_fetch_allowed_hosts), url_fetcher=url_fetcher
        )
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` (the API is under ``/v1.3``)."""
        if self._httpd is None:
            raise RuntimeError("the emulator is not running")
        host, port = self._httpd.server_address[:2]
        shown = "127.0.0.1" if str(host) in _WILDCARD_HOSTS else str(host)
        return f"http://{shown}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1.3"

    def start(self) -> str:
        if self._httpd is not None:
            raise RuntimeError("the emulator is already running")
        self._bind()
        assert self._httpd is not None
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        return self.base_url

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI)."""
        self._bind()
        assert self._httpd is not None
        try:
            self._httpd.serve_forever()
        finally:
            self._close()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close()

    def deliver_webhooks(self) -> int:
        """Send the notifications due at the clock's now (call after moving a shared clock); how many were tried."""
        return self.state.deliver_webhooks()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def handle(self, incoming: Incoming, read_body: BodyReader) -> Response | None:
        """The answer to one request (None: drop the connection); ``read_body(n)`` reads the body when allowed."""
        try:
            return self._answer(incoming, read_body)
        except ApiError as error:
            return Response.error(error, error_shape(incoming.path, error.status))
        finally:
            self.state.deliver_webhooks()

    def _answer(self, incoming: Incoming, read_body: BodyReader) -> Response | None:
        route, params = self.api.router.match(incoming.method, incoming.path)
        self._authorize(route, incoming)
        length = self._body_length(route, incoming)
        request = Request(
            incoming.method,
            incoming.path,
            incoming.query,
            incoming.headers,
            read_body(length) if length else b"",
            params,
            client_host=incoming.client_host,
        )
        fault = self.state.faults.for_request(route.endpoint) if self.state.faults else None
        if fault is not None and fault.kind == "latency":
            self._sleep(fault.latency_seconds)
        if fault is not None and fault.error is not None:
            return Response.error(fault.error, error_shape(incoming.path, fault.error.status))
        limit_headers = self.state.admit_request() if route.endpoint in RATE_LIMITED_ENDPOINTS else {}
        response = route.handler(request)
        if fault is not None and fault.kind == "lose_response":
            return None
        response.headers = {**limit_headers, **response.headers}
        return response

    def _authorize(self, route: Route, incoming: Incoming) -> None:
        if route.kind == "api":
            key = incoming.headers.get("x-api-key", "")
            if not hmac.compare_digest(key.encode(), self.config.api_key.encode()):
                raise ApiError(401, "api_key_invalid", "The API key is missing or invalid; send it in x-api-key.")
        elif route.kind == "control" and not self._control_allowed(incoming):
            # Control endpoints are the emulator's, not the API's: their code is not an API code.
            raise RawApiError(403, "forbidden", "Control endpoints answer loopback clients or the control token.")

    def _control_allowed(self, incoming: Incoming) -> bool:
        token = self.config.control_token
        if token is not None:
            sent = incoming.headers.get(CONTROL_TOKEN_HEADER, "")
            return hmac.compare_digest(sent.encode(), token.encode())
        return _is_loopback(incoming.client_host)

    def _body_length(self, route: Route, incoming: Incoming) -> int:
        if incoming.chunked:
            raise invalid("Transfer-Encoding", "chunked bodies are not accepted; send a Content-Length", status=411)
        if incoming.content_length is None:
            raise invalid("Content-Length", "must be a non-negative integer")
        bound = self._body_bound(route)
        if incoming.content_length > bound:
            raise invalid("body", f"the request body exceeds {bound} bytes", status=413)
        return incoming.content_length

    def _body_bound(self, route: Route) -> int:
        if route.body == "form":
            return self.config.max_direct_upload_bytes + FORM_OVERHEAD_BYTES
        if route.body == "chunk":
            return self.config.multipart_chunk_bytes
        return self.config.max_json_body_bytes

    def _bind(self) -> None:
        self._httpd = _Server((self.config.host, self.config.port), _Handler)
        self._httpd.emulator = self
        self.state.public_base_url = self.config.public_base_url or self.base_url

    def _close(self) -> None:
        if self._httpd is not None:
            self._httpd.server_close()
            self._httpd = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None


def _outbox(config: EmulatorConfig, sender: WebhookSender | None) -> WebhookOutbox | None:
    if config.webhook_secret is None:
        if sender is not None:
            raise ValueError("a webhook_sender needs config.webhook_secret to sign notifications")
        return None
    if config.webhook_url is None and sender is None:
        raise ValueError("webhook_secret needs webhook_url or a webhook_sender")
    return WebhookOutbox(
        url=config.webhook_url or _IN_PROCESS_WEBHOOK_URL, secret=config.webhook_secret, sender=sender or http_sender
    )


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _content_length(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return 0
    text = raw.strip()
    # Digits only: int() would also take "+5", " 5" or "5_0", none of them a valid header value.
    return int(text) if text.isascii() and text.isdigit() else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: EmulatorServer


class _BodyReader:
    def __init__(self, stream: BufferedIOBase) -> None:
        self._stream = stream
        self.consumed = False

    def read(self, length: int) -> bytes:
        self.consumed = True
        return self._stream.read(length)

    def drain(self, length: int) -> None:
        remaining = length
        while remaining > 0:
            piece = self._stream.read(min(remaining, 65_536))
            if not piece:
                return
            remaining -= len(piece)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = CONNECTION_IDLE_TIMEOUT_SECONDS

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes; without NODELAY, Nagle plus delayed ACK adds ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the emulator runs inside tests."""

    def _serve(self) -> None:
        incoming = self._incoming()
        reader = _BodyReader(self.rfile)
        response = self.server.emulator.handle(incoming, reader.read)
        if response is None:
            # lose_response: the request took effect; the client gets no answer at all.
            self.close_connection = True
            return
        if not reader.consumed and not self._drained(incoming, reader):
            self.close_connection = True
            response.headers["Connection"] = "close"
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _drained(self, incoming: Incoming, reader: _BodyReader) -> bool:
        length = incoming.content_length
        if incoming.chunked or length is None or length > DRAIN_LIMIT_BYTES:
            return False
        reader.drain(length)
        return True

    def _incoming(self) -> Incoming:
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        lengths = set(self.headers.get_all("Content-Length") or [])
        # Several different lengths are as malformed as one unreadable length.
        declared = _content_length(lengths.pop() if lengths else None) if len(lengths) <= 1 else None
        encoding = headers.get("transfer-encoding", "").strip().lower()
        return Incoming(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            client_host=str(self.client_address[0]),
            content_length=declared,
            chunked=encoding not in ("", "identity"),
        )
