"""Fault injection: seeded, replayable failures of requests and of batch items.

``POST /_emulator/faults`` installs a ``FaultPlan`` (``{"seed": N, "rules": [...]}``; an empty list clears).

A request rule names a route template (``"POST /analyze/batches"``, ``"GET /assets/{id}"``, ...) and fires:
- with ``count`` only: on the first ``count`` matching requests;
- with ``rate`` only: on each matching request with probability ``rate``;
- with both: with probability ``rate``, until it has fired ``count`` times;
- with neither: on every matching request.
Its effect is one of:
- ``status`` (+ ``code``, ``message``, ``retry_after`` seconds sent as ``Retry-After``): the API answers that
  error and the request has no effect. Without ``code``: ``too_many_requests`` for 429 (documented),
  ``request_canceled_or_timed_out`` for 504 (documented), ``internal_error`` otherwise (the docs list no code
  for server errors);
- ``lose_response``: the request takes effect, then the connection is closed without an answer;
- ``latency_seconds``: a real sleep in the server thread before the request is handled (wall time also under
  the virtual clock: latency is a transport property that client timeouts must see, not API time).
The first rule that fires wins. Draws come from one ``random.Random(seed)`` in request order, so the same seed
and the same request sequence replay the same faults.

An item rule ``{"item_failure": {"code", "message"?, "rate"}}`` fails items as they finish processing. The draw
is a pure function of (seed, task id), so it does not depend on request order.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twelvelabs_emulator.api_errors import ApiError, RawApiError, invalid


class RequestFaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str
    rate: float | None = Field(default=None, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=1)
    status: int | None = Field(default=None, ge=400, le=599)
    code: str | None = None
    message: str | None = None
    retry_after: int | None = Field(default=None, ge=0)
    latency_seconds: float | None = Field(default=None, gt=0.0, le=600.0)
    lose_response: bool = False

    @model_validator(mode="after")
    def _one_effect(self) -> RequestFaultRule:
        effects = [self.status is not None, self.latency_seconds is not None, self.lose_response]
        if sum(effects) != 1:
            raise ValueError("a rule needs exactly one effect: status, latency_seconds or lose_response")
        if self.status is None and (self.code or self.message or self.retry_after is not None):
            raise ValueError("code, message and retry_after go with status")
        if self.retry_after is not None and self.status != 429:
            raise ValueError("retry_after goes with status 429")
        return self


class ItemFailure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1)
    message: str | None = None
    rate: float = Field(ge=0.0, le=1.0)


class ItemFailureRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    item_failure: ItemFailure


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    rules: list[RequestFaultRule | ItemFailureRule] = Field(default_factory=list)


class RequestFault(BaseModel):
    """What the server must do to one request."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: Literal["status", "lose_response", "latency"]
    error: ApiError | None = None
    latency_seconds: float = 0.0


class FaultPlan:
    """The installed rules with their firing counters and RNG; thread-safe."""

    def __init__(self, spec: FaultSpec, known_endpoints: frozenset[str]) -> None:
        for rule in spec.rules:
            if isinstance(rule, RequestFaultRule) and rule.endpoint not in known_endpoints:
                raise invalid("rules", f"unknown endpoint {rule.endpoint!r}")
        self.spec = spec
        self._rng = random.Random(spec.seed)
        self._fired = [0] * len(spec.rules)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, body: Any, known_endpoints: frozenset[str]) -> FaultPlan:
        try:
            spec = FaultSpec.model_validate(body)
        except ValidationError as error:
            raise invalid("rules", f"invalid fault rules: {error.errors()[0]['msg']}") from error
        return cls(spec, known_endpoints)

    def for_request(self, endpoint: str) -> RequestFault | None:
        with self._lock:
            for index, rule in enumerate(self.spec.rules):
                if isinstance(rule, RequestFaultRule) and rule.endpoint == endpoint and self._fires(index, rule):
                    return _effect(rule)
        return None

    def item_failure(self, task_id: str) -> ItemFailure | None:
        for rule in self.spec.rules:
            if isinstance(rule, ItemFailureRule):
                draw = random.Random(f"{self.spec.seed}:{task_id}").random()
                if draw < rule.item_failure.rate:
                    return rule.item_failure
        return None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "seed": self.spec.seed,
                "rules": [r.model_dump(exclude_none=True) for r in self.spec.rules],
                "fired": list(self._fired),
            }

    def _fires(self, index: int, rule: RequestFaultRule) -> bool:
        if rule.count is not None and self._fired[index] >= rule.count:
            return False
        if rule.rate is not None and self._rng.random() >= rule.rate:
            return False
        self._fired[index] += 1
        return True


def _effect(rule: RequestFaultRule) -> RequestFault:
    if rule.lose_response:
        return RequestFault(kind="lose_response")
    if rule.latency_seconds is not None:
        return RequestFault(kind="latency", latency_seconds=rule.latency_seconds)
    status = rule.status or 500
    headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else None
    error = RawApiError(
        status,
        rule.code or _DEFAULT_CODES.get(status, "internal_error"),
        rule.message or f"Injected fault ({status}).",
        headers=headers,
    )
    return RequestFault(kind="status", error=error)


_DEFAULT_CODES = {429: "too_many_requests", 504: "request_canceled_or_timed_out"}
