"""The emulator without sockets: an httpx transport that hands each request to ``EmulatorServer.handle``.

The same routing, access checks, body bounds, fault rules, rate limits and state as over HTTP, minus the TCP
round trip (a new connection, Nagle, a thread per request), which is most of what an emulator call costs over the
loopback. What the wire would add is mapped to what the client would have seen:

- a ``lose_response`` fault (the request took effect, no answer) raises ``httpx.RemoteProtocolError``, as the
  dropped connection does;
- a latency fault at or beyond the request's read timeout raises ``httpx.ReadTimeout`` at once instead of sleeping
  (the request is not carried out: latency rules are put on safe calls, whose effect nobody reads); a shorter one
  costs no time at all, since the pipeline's clock is virtual anyway.
"""

from __future__ import annotations

import threading
from typing import Final
from urllib.parse import parse_qs

import httpx

from twelvelabs_emulator.server import EmulatorServer, Incoming

LOOPBACK: Final = "127.0.0.1"


class InProcessTransport(httpx.BaseTransport):
    """``httpx.Client(transport=InProcessTransport(server))``: requests served by ``server`` in the caller's thread.

    ``server`` is an ``EmulatorServer`` that is not started (``start()`` would bind a socket); give it
    ``sleep=transport.sleep`` so latency faults become timeouts, then ``bind`` it.
    """

    def __init__(self, server: EmulatorServer | None = None) -> None:
        self._server = server
        self._local = threading.local()

    def bind(self, server: EmulatorServer, *, base_url: str) -> None:
        self._server = server
        # Presigned URLs (chunk uploads, multipart asset content) point here; this transport serves them too.
        server.state.public_base_url = base_url

    def sleep(self, seconds: float) -> None:
        timeout = getattr(self._local, "read_timeout", None)
        if timeout is not None and seconds >= timeout:
            message = f"no answer within {timeout} s (latency fault of {seconds} s)"
            raise httpx.ReadTimeout(message, request=self._local.request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._server is None:
            raise RuntimeError("InProcessTransport has no emulator: call bind() first")
        body = request.read()
        timeouts = request.extensions.get("timeout", {})
        self._local.read_timeout = timeouts.get("read") if isinstance(timeouts, dict) else None
        self._local.request = request
        incoming = Incoming(
            method=request.method,
            path=request.url.path,
            query=parse_qs(request.url.query.decode("ascii"), keep_blank_values=True),
            headers={name.lower(): value for name, value in request.headers.items()},
            client_host=LOOPBACK,
            content_length=len(body),
        )
        try:
            response = self._server.handle(incoming, lambda length: body[:length])
        finally:
            self._local.read_timeout = None
        if response is None:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(response.status, headers=response.headers, content=response.body, request=request)
