"""The errors the emulated API answers with: documented codes only, in the body shape of the route that raised them.

Codes: ``ErrorCode`` lists the codes of the API's error-codes page that apply to these endpoints. Where no
documented code fits a situation (a 409 on a resource in the wrong state, a 405), the nearest documented one is used
and docs/emulator.md says so. Fault rules may inject any code (``RawApiError``): that is the tester's choice.

Shapes (``error_shape``): ``/v1.3/analyze/*`` answers nested ``{"error": {code, message, details?}}`` (the SDK
validates batch-create 503/504 bodies as that shape); every other route answers flat ``{code, message}``. A 401 is
flat everywhere: the key is refused before any route runs, and the SDK types the analyze routes' 401 body as
``FlatErrorResponse``.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal, get_args

ErrorCode = Literal[
    "parameter_invalid",
    "parameter_not_provided",
    "parameter_unknown",
    "resource_not_exist",
    "api_key_invalid",
    "too_many_requests",
]
DOCUMENTED_CODES: Final[frozenset[str]] = frozenset(get_args(ErrorCode))
Shape = Literal["flat", "nested"]

_NESTED_PREFIX: Final = "/v1.3/analyze/"
_UNAUTHORIZED: Final = 401
_REQUEST_PREFIX = re.compile(r"\brequests\.\d+\.")
_REQUEST_REFERENCE = re.compile(r"\brequests\.\d+\b")
# An index after a name (``segment_definitions.0``), not a decimal number (``2000.5``).
_INNER_INDEX = re.compile(r"(?<=[A-Za-z_])\.\d+(?=[.:\s]|$)")


class ApiError(Exception):
    """An HTTP error answer: status, documented code, message, optional details and extra headers."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._set(status, code, message, details, headers)

    def _set(
        self, status: int, code: str, message: str, details: dict[str, Any] | None, headers: dict[str, str] | None
    ) -> None:
        Exception.__init__(self, f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    def body(self, shape: Shape) -> dict[str, Any]:
        if shape == "flat":
            return {"code": self.code, "message": self.message}
        nested: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            nested["details"] = self.details
        return {"error": nested}

    def without_request_indexes(self) -> ApiError:
        """The same error naming no ``requests.N``: field paths as the docs write them (``response_format.x``)."""
        details = {
            key: _strip(value) if isinstance(value, str) else value for key, value in (self.details or {}).items()
        }
        copy = RawApiError(self.status, self.code, _strip(self.message), details=details or None, headers=self.headers)
        copy.__cause__ = self
        return copy


class RawApiError(ApiError):
    """An error with any code: injected by a fault rule, or answered by a storage URL (not the API)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._set(status, code, message, details, headers)


def error_shape(path: str, status: int) -> Shape:
    """Which body shape the route at ``path`` answers errors in."""
    if status == _UNAUTHORIZED:
        return "flat"
    return "nested" if path.startswith(_NESTED_PREFIX) else "flat"


def invalid(field: str, rule: str, *, status: int = 400) -> ApiError:
    """``parameter_invalid`` naming the dotted field path that broke ``rule``."""
    return ApiError(status, "parameter_invalid", f"{field}: {rule}", details={"field": field})


def missing(field: str) -> ApiError:
    """400 ``parameter_not_provided`` for a required field."""
    return ApiError(400, "parameter_not_provided", f"{field}: is required", details={"field": field})


def unknown(field: str) -> ApiError:
    """400 ``parameter_unknown`` for a field the API does not know."""
    return ApiError(400, "parameter_unknown", f"{field}: is not a known parameter", details={"field": field})


def not_found(kind: str, resource_id: str) -> ApiError:
    return ApiError(404, "resource_not_exist", f"The {kind} {resource_id} does not exist.")


def conflict(message: str) -> ApiError:
    """409: the resource is in the wrong state. No documented code fits; ``parameter_invalid`` is the nearest."""
    return ApiError(409, "parameter_invalid", message)


def _strip(text: str) -> str:
    text = _REQUEST_PREFIX.sub("", text)
    text = _REQUEST_REFERENCE.sub("another request", text)
    return _INNER_INDEX.sub("", text)
