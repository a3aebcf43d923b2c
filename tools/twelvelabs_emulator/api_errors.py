"""The error the emulated API answers with, in the body shape every SDK parser accepts."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error answer: status, machine code, message and optional details.

    The body carries both of the API's shapes at once (flat ``{code, message}`` and nested
    ``{"error": {code, message, details}}``): the SDK validates some bodies as the nested shape and documents
    others as flat, and a body with both satisfies every parser.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after_seconds = retry_after_seconds

    def body(self) -> dict[str, Any]:
        nested: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            nested["details"] = self.details
        return {"code": self.code, "message": self.message, "error": nested}


def invalid(field: str, rule: str) -> ApiError:
    """400 ``parameter_invalid`` naming the dotted field path that broke ``rule``."""
    return ApiError(400, "parameter_invalid", f"{field}: {rule}", details={"field": field})


def missing(field: str) -> ApiError:
    """400 ``parameter_not_provided`` for a required field."""
    return ApiError(400, "parameter_not_provided", f"{field}: is required", details={"field": field})


def not_found(kind: str, resource_id: str) -> ApiError:
    return ApiError(404, "resource_not_exists", f"The {kind} {resource_id} does not exist.")
