"""A small HTTP toolkit for the emulator: request/response values, bounded JSON and a route table with templates."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from twelvelabs_emulator.api_errors import ApiError, Shape, invalid

# Deeper than any schema a profile needs, far below the interpreter's recursion limit that validation would hit.
MAX_JSON_DEPTH: Final = 64
RouteKind = Literal["api", "upload", "download", "control"]
BodyKind = Literal["json", "form", "chunk"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)
    # The peer's address as the socket reports it: the only thing control access may trust.
    client_host: str = ""

    def json(self) -> Any:
        return parse_json(self.body, "body")

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


def parse_json(raw: bytes | str, field_name: str) -> Any:
    """``raw`` as JSON, nested at most ``MAX_JSON_DEPTH`` deep; 400 otherwise, never a RecursionError."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except RecursionError as error:
        raise invalid(field_name, f"nests deeper than {MAX_JSON_DEPTH} levels") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise invalid(field_name, f"is not valid JSON ({error})") from error
    if _depth(value) > MAX_JSON_DEPTH:
        raise invalid(field_name, f"nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """Nesting depth without recursion (the value may come from json.loads at any depth it accepts)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        current, level = pending.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children)
    return deepest


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def error(cls, error: ApiError, shape: Shape) -> Response:
        return cls.json(error.status, error.body(shape), error.headers)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    # api: under /v1.3 with the API key; upload/download: presigned (signed, no key, like S3); control: /_emulator.
    kind: RouteKind
    body: BodyKind = "json"

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
            # No documented code names a wrong method: the endpoint (method and path) does not exist.
            raise ApiError(405, "resource_not_exist", f"{method} is not allowed on {path}.")
        raise ApiError(404, "resource_not_exist", f"No endpoint at {path}.")


def _compile(route: Route) -> re.Pattern[str]:
    prefix = "/v1.3" if route.kind == "api" else ""
    body = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route.template))
    return re.compile(prefix + body)
