"""The emulator's HTTP server: a threaded stdlib server routing to ``EmulatorApi``.

Each request: match the route (404/405), check ``x-api-key`` on API routes (401), apply any fault rule,
handle it, write the answer. A ``lose_response`` fault lets the request take effect and then closes the
connection without writing anything, which the client sees as a dropped connection.
"""

from __future__ import annotations

import hmac
import socket
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from twelvelabs_emulator import limits
from twelvelabs_emulator.api import EmulatorApi
from twelvelabs_emulator.api_errors import ApiError
from twelvelabs_emulator.clock import Clock, ManualClock, SystemClock
from twelvelabs_emulator.http import Request, Response
from twelvelabs_emulator.models import EmulatorSettings
from twelvelabs_emulator.state import DEFAULT_MULTIPART_CHUNK_BYTES, EmulatorState

# An idle keep-alive connection is closed after this long, so stopped servers leave no thread waiting forever.
CONNECTION_IDLE_TIMEOUT_SECONDS = 30.0


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
    storage_dir: Path | None = None


class EmulatorServer:
    """Run the emulator in a background thread: ``with EmulatorServer(config) as server: server.base_url``."""

    def __init__(self, config: EmulatorConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or EmulatorConfig()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        storage = self.config.storage_dir
        if storage is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="videobatch-emulator-")
            storage = Path(self._tempdir.name)
        self.state = EmulatorState(
            clock=clock or (ManualClock() if self.config.clock == "virtual" else SystemClock()),
            settings=self.config.settings.model_copy(),
            storage_dir=storage,
            seed=self.config.seed,
            max_direct_upload_bytes=self.config.max_direct_upload_bytes,
            multipart_chunk_bytes=self.config.multipart_chunk_bytes,
        )
        self.api = EmulatorApi(self.state)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` (the API is under ``/v1.3``)."""
        if self._httpd is None:
            raise RuntimeError("the emulator is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1.3"

    def start(self) -> str:
        if self._httpd is not None:
            raise RuntimeError("the emulator is already running")
        self._httpd = _Server((self.config.host, self.config.port), _Handler)
        self._httpd.emulator = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        return self.base_url

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI)."""
        self._httpd = _Server((self.config.host, self.config.port), _Handler)
        self._httpd.emulator = self
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

    def _close(self) -> None:
        if self._httpd is not None:
            self._httpd.server_close()
            self._httpd = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def handle(self, request: Request) -> tuple[Response | None, float]:
        """The answer to ``request`` (None: drop the connection) and the latency to add before answering."""
        try:
            route, params = self.api.router.match(request.method, request.path)
            if route.api:
                self._authenticate(request)
            fault = self.state.faults.for_request(route.endpoint) if self.state.faults else None
            if fault is not None and fault.kind == "latency":
                time.sleep(fault.latency_seconds)
            if fault is not None and fault.error is not None:
                return Response.error(fault.error), 0.0
            response = route.handler(_with_params(request, params))
            if fault is not None and fault.kind == "lose_response":
                return None, 0.0
            return response, 0.0
        except ApiError as error:
            return Response.error(error), 0.0

    def _authenticate(self, request: Request) -> None:
        key = request.headers.get("x-api-key", "")
        if not hmac.compare_digest(key.encode(), self.config.api_key.encode()):
            raise ApiError(401, "api_key_invalid", "The API key is missing or invalid; send it in x-api-key.")


def _with_params(request: Request, params: dict[str, str]) -> Request:
    return Request(request.method, request.path, request.query, request.headers, request.body, params)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: EmulatorServer


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
        request = self._read_request()
        response, _ = self.server.emulator.handle(request)
        if response is None:
            # lose_response: the request took effect; the client gets no answer at all.
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _read_request(self) -> Request:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        query = parse_qs(parts.query, keep_blank_values=True)
        return Request(self.command, parts.path, query, headers, body)
