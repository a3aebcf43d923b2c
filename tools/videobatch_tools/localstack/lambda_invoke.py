"""Lambda ``Invoke`` on the local stack: moto's invoke, routed to the local wiring's handlers.

moto runs a function only in Docker; the local stack has its functions' handlers in-process (``LocalWiring``).
While a ``LocalPipeline`` runs, its functions are registered here by their physical names, and a synchronous
``Invoke`` of one of them (``videobatch sweep``) runs the real handler through the wiring, with the function's
environment and context (an asynchronous one, InvocationType Event, is queued in the wiring for its next step, with
Lambda's retries), and answers as Lambda does: the returned JSON, or ``X-Amz-Function-Error: Unhandled``
with ``errorType`` / ``errorMessage``. Functions not registered (created in moto by other means) get moto's own
answer. Installed once per process, like moto's backends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from moto.awslambda.responses import LambdaResponse

# physical function name -> run the handler on an event: (result, error type, error message)
Invoker = Callable[[Any], tuple[Any, str | None, str | None]]
# physical function name -> hand an asynchronous (InvocationType Event) invocation to the wiring
LaterInvoker = Callable[[Any], None]

_lock = threading.Lock()
_functions: dict[str, Invoker] = {}
_later: dict[str, LaterInvoker] = {}
_original: dict[str, Any] = {}


def register(name: str, invoker: Invoker, later: LaterInvoker | None = None) -> None:
    with _lock:
        _functions[name] = invoker
        if later is not None:
            _later[name] = later


def unregister(name: str) -> None:
    with _lock:
        _functions.pop(name, None)
        _later.pop(name, None)


def _function_name(path: str) -> str:
    named = unquote(path.rsplit("/", 2)[-2])
    if named.startswith("arn:"):  # arn:aws:lambda:region:account:function:name[:qualifier]
        return named.split(":")[6]
    return named.split(":")[0]


def _invoke(self: LambdaResponse) -> tuple[int, dict[str, str], str | bytes]:
    name = _function_name(self.path)
    with _lock:
        invoker, later = _functions.get(name), _later.get(name)
    if later is not None and self.headers.get("X-Amz-Invocation-Type") == "Event":
        body = self.body.decode() if isinstance(self.body, bytes) else (self.body or "")
        later(json.loads(body) if body else {})
        return 202, {"content-type": "application/json"}, ""
    if invoker is None or self.headers.get("X-Amz-Invocation-Type") not in (None, "RequestResponse"):
        result: tuple[int, dict[str, str], str | bytes] = _original["invoke"](self)
        return result
    body = self.body.decode() if isinstance(self.body, bytes) else (self.body or "")
    returned, error_type, error_message = invoker(json.loads(body) if body else {})
    headers = {"content-type": "application/json", "x-amz-executed-version": "$LATEST"}
    if error_type is not None:
        headers["x-amz-function-error"] = "Unhandled"
        return 200, headers, json.dumps({"errorType": error_type, "errorMessage": error_message})
    return 200, headers, json.dumps(returned)


def install_invoke_bridge() -> None:
    with _lock:
        if "invoke" in _original:
            return
        _original["invoke"] = LambdaResponse.invoke
        LambdaResponse.invoke = _invoke  # type: ignore[method-assign]
