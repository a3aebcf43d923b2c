"""A small HTTP toolkit for the emulator: request/response values and a route table with templates."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twelvelabs_emulator.api_errors import ApiError, invalid


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The URL the client reached us by, for links that point back at the emulator."""
        return f"http://{self.headers.get('host', '127.0.0.1')}"

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise invalid("body", f"is not valid JSON ({error})") from error

    def query_one(self, key: str) -> str | None:
        values = self.query.get(key)
        return values[-1] if values else None

    def query_int(self, key: str, default: int, *, low: int, high: int | None = None) -> int:
        raw = self.query_one(key)
        if raw is None or raw == "":
            return default
        if not raw.lstrip("-").isdigit():
            raise invalid(key, "must be an integer")
        value = int(raw)
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise invalid(key, f"must be {bound}")
        return value


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def error(cls, error: ApiError) -> Response:
        headers = {}
        if error.retry_after_seconds is not None:
            headers["Retry-After"] = str(error.retry_after_seconds)
        return cls.json(error.status, error.body(), headers)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    # API routes live under /v1.3 and need the API key; the others (presigned uploads, control) do not.
    api: bool

    @property
    def endpoint(self) -> str:
        """The name fault rules use: ``"GET /analyze/batches/{id}"``."""
        return f"{self.method} {self.template}"


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._patterns = [(route, _compile(route)) for route in routes]

    @property
    def endpoints(self) -> frozenset[str]:
        return frozenset(route.endpoint for route in self.routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for a request; 404 for an unknown path, 405 for a known path with another method."""
        path_known = False
        for route, pattern in self._patterns:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            path_known = True
        if path_known:
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}.")
        raise ApiError(404, "endpoint_not_found", f"No endpoint at {path}.")


def _compile(route: Route) -> re.Pattern[str]:
    prefix = "/v1.3" if route.api else ""
    body = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route.template))
    return re.compile(prefix + body)
