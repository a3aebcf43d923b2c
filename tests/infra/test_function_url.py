"""localstack.function_url: requests become Function URL events (payload 2.0) and answers become responses, as
Lambda's URL front end does; the webhook relay queues what the emulator sends and delivers it on the wiring's step."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime
from typing import Any

from twelvelabs_emulator.webhooks import WebhookRequest
from videobatch.clock import ManualClock
from videobatch_tools.localstack.function_url import FunctionUrl, WebhookRelay, url_event
from videobatch_tools.localstack.wiring import Invocation, InvocationError

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
URL = "https://stack-webhookfunction.lambda-url.us-east-1.on.aws/"


def invocation(result: Any = None, error: InvocationError | None = None) -> Invocation:
    return Invocation("WebhookFunction", URL, {}, result, error, NOW, NOW)


def test_a_json_body_is_text_and_anything_else_base64() -> None:
    event = url_event("post", URL, b'{"a": 1}', {"Content-Type": "application/json", "TL-Signature": "t=1"}, now=NOW)
    assert (event["body"], event["isBase64Encoded"]) == ('{"a": 1}', False)
    assert event["headers"] == {"content-type": "application/json", "tl-signature": "t=1"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["version"] == "2.0"
    raw = b"\xff\x00binary"
    binary = url_event("POST", URL, raw, {"Content-Type": "application/octet-stream"}, now=NOW)
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == raw
    # Declared JSON that is not UTF-8 cannot be passed as text either.
    assert url_event("POST", URL, raw, {"Content-Type": "application/json"}, now=NOW)["isBase64Encoded"] is True


def test_the_answer_is_the_functions_and_a_raised_handler_is_a_502() -> None:
    clock = ManualClock(NOW)
    answered = {"statusCode": 401, "headers": {"Content-Type": "application/json"}, "body": '{"message": "no"}'}
    response = FunctionUrl(URL, lambda event: invocation(answered), clock).request("POST", b"{}", {})
    assert (response.status_code, response.headers, response.json()) == (
        401,
        {"content-type": "application/json"},
        {"message": "no"},
    )
    failed = FunctionUrl(URL, lambda event: invocation(error=InvocationError("RuntimeError", "boom")), clock)
    assert failed.request("POST", b"{}", {}).status_code == 502
    bare = FunctionUrl(URL, lambda event: invocation({"ok": True}), clock).request("POST", b"{}", {})
    assert (bare.status_code, bare.json()) == (200, {"ok": True})


def test_the_relay_queues_from_any_thread_and_delivers_on_its_step() -> None:
    clock = ManualClock(NOW)
    seen: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> Invocation:
        seen.append(event)
        return invocation({"statusCode": 202, "body": "{}"})

    relay = WebhookRelay(clock, url=FunctionUrl(URL, invoke, clock))
    request = WebhookRequest("inprocess://webhook", b'{"id": "e"}', {"Content-Type": "application/json"})
    sender = threading.Thread(target=relay.send, args=(request,))
    sender.start()
    sender.join()
    assert seen == []  # not run on the sender's thread
    assert relay.pending() == ["1 webhook notification(s) not yet delivered"]
    assert relay.step() == 1
    assert [event["body"] for event in seen] == ['{"id": "e"}']
    assert [d.response.status_code for d in relay.deliveries] == [202]
    assert (relay.pending(), relay.step(), relay.next_due()) == ([], 0, None)
