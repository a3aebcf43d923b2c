"""functions/webhook: a Function URL event (payload format 2.0) through the handler to WebhookService and back as
HTTP. The service's rules are the domain's; here: what reaches it (the body bytes exactly as signed), what is
refused before it (405, 413, bad base64), how each outcome maps to a status, and that nothing secret is logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from videobatch import runtime
from videobatch.adapters.memory import (
    MemoryBatchStore,
    MemoryClaimStore,
    MemoryEventBus,
    MemoryInvoker,
    MemoryItemStore,
    MemoryLeaseStore,
    MemoryMetrics,
    MemoryObjectStore,
    MemoryReplayGuard,
    MemoryScheduler,
)
from videobatch.clock import ManualClock
from videobatch.config import Settings
from videobatch.domain.profiles import load_default_profiles
from videobatch.domain.webhooks import MAX_BODY_BYTES
from videobatch.errors import InvalidInputError, NotFoundError
from videobatch.runtime import Runtime, logger

from .conftest import FakeContext, load_handler

SECRET = "whsec-test-0123456789"
OURS = "batch-ours"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class CountingSecret:
    """The webhook secret, counting reads (a request refused before the service reads none)."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.reads = 0

    def get(self) -> str:
        self.reads += 1
        return self.value

    def refresh(self) -> str:
        return self.get()


class KnownBatches(MemoryBatchStore):
    """Only ``OURS`` is a batch of this pipeline."""

    def get_progress(self, batch_id: str) -> Any:
        return SimpleNamespace(batch_id=batch_id) if batch_id == OURS else None


class Tasks:
    """TwelveLabs' task lookup: task-ours belongs to OURS, any other task is unknown."""

    def retrieve_task(self, task_id: str) -> Any:
        if task_id == "task-ours":
            return SimpleNamespace(batch_id=OURS)
        raise NotFoundError(f"task {task_id} not found", status_code=404)


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    # The module-level Metrics read the environment at import; the template sets it for real Lambdas.
    monkeypatch.setattr(runtime.metrics, "namespace", "videobatch-test")
    settings = Settings.model_validate(
        {"table_name": "t", "event_bus_name": "b", "video_bucket": "v", "twelvelabs_api_key_secret": "k"}
    )
    clock = ManualClock(NOW)
    secret, invoker, metrics = CountingSecret(SECRET), MemoryInvoker(), MemoryMetrics()
    built = Runtime(
        settings=settings,
        clock=clock,
        twelvelabs=cast(Any, Tasks()),
        items=MemoryItemStore(),
        batches=KnownBatches(),
        claims=MemoryClaimStore(),
        leases=MemoryLeaseStore(),
        objects=MemoryObjectStore(),
        events=MemoryEventBus(),
        scheduler=MemoryScheduler(),
        profiles=load_default_profiles(),
        metrics=metrics,
        invoker=invoker,
        replays=MemoryReplayGuard(),
        webhook_secret=secret,
    )
    with runtime.use_runtime(built):
        yield SimpleNamespace(clock=clock, secret=secret, invoker=invoker, handler=load_handler("webhook").handler)


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    collected = io.StringIO()
    stream = logger.registered_handler
    assert isinstance(stream, logging.StreamHandler)
    previous = stream.setStream(collected)
    try:
        yield collected
    finally:
        stream.setStream(previous)


def signed(body: bytes, *, at: datetime = NOW, secret: str = SECRET) -> str:
    timestamp = int(at.timestamp())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def url_event(
    body: bytes | str, *, signature: str | None = None, method: str = "POST", base64_encoded: bool = False
) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else body.encode()
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["tl-signature"] = signature
    return {
        "version": "2.0",
        "rawPath": "/",
        "headers": headers,
        "requestContext": {"http": {"method": method, "path": "/"}},
        "body": base64.b64encode(raw).decode() if base64_encoded else raw.decode(),
        "isBase64Encoded": base64_encoded,
    }


def notification(batch_id: str = OURS, **data: Any) -> bytes:
    document = {"id": "evt-1", "type": "analyze.batch.completed", "data": {"batch_id": batch_id, **data}}
    return json.dumps(document, separators=(",", ":")).encode()


def answer(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    assert response["headers"] == {"content-type": "application/json"}
    return response["statusCode"], json.loads(response["body"])


def test_a_signed_notification_of_our_batch_starts_its_check_at_once(wired: SimpleNamespace) -> None:
    body = notification()
    status, document = answer(wired.handler(url_event(body, signature=signed(body)), FakeContext()))
    assert (status, document["batch_id"]) == (202, OURS)
    assert wired.invoker.drain() == [("batch_checker", {"batch_id": OURS, "source": "webhook"})]


def test_a_base64_body_is_verified_over_its_decoded_bytes(wired: SimpleNamespace) -> None:
    # Signed over the bytes; the event carries their base64, which matches nothing unless decoded first.
    body = notification(note="\u00e9t\u00e9").replace(b"\\u00e9", "\u00e9".encode())
    event = url_event(body, signature=signed(body), base64_encoded=True)
    assert event["body"].encode() != body
    assert answer(wired.handler(event, FakeContext()))[0] == 202
    assert [name for name, _ in wired.invoker.drain()] == ["batch_checker"]


def test_a_text_body_is_verified_over_its_utf8_bytes(wired: SimpleNamespace) -> None:
    body = json.dumps(
        {"type": "analyze.batch.completed", "data": {"batch_id": OURS, "note": "caf\u00e9"}}, ensure_ascii=False
    )
    event = url_event(body, signature=signed(body.encode("utf-8")))
    assert answer(wired.handler(event, FakeContext()))[0] == 202


def test_a_task_notification_starts_the_check_of_the_tasks_batch(wired: SimpleNamespace) -> None:
    body = json.dumps({"type": "analyze.task.ready", "data": {"id": "task-ours"}}).encode()
    assert answer(wired.handler(url_event(body, signature=signed(body)), FakeContext()))[0] == 202
    assert wired.invoker.drain() == [("batch_checker", {"batch_id": OURS, "source": "webhook"})]


@pytest.mark.parametrize(
    "body",
    [notification("batch-of-another-tool"), json.dumps({"type": "analyze.task.ready", "data": {"id": "t-x"}}).encode()],
    ids=["another-batch", "unknown-task"],
)
def test_a_trusted_notification_about_nothing_of_ours_is_answered_and_ignored(
    wired: SimpleNamespace, body: bytes
) -> None:
    assert answer(wired.handler(url_event(body, signature=signed(body)), FakeContext()))[0] == 200
    assert wired.invoker.drain() == []


@pytest.mark.parametrize(
    ("signature_of", "reason"),
    [
        (lambda body: None, "no TL-Signature"),
        (lambda body: signed(body, secret="not-the-secret"), "does not match"),
        (lambda body: signed(body + b" "), "does not match"),
        (lambda body: "t=1,v1=zz", "is not t="),
        (lambda body: signed(body, at=datetime(2026, 5, 1, 11, 54, tzinfo=UTC)), "stale"),
        (lambda body: signed(body, at=datetime(2026, 5, 1, 12, 6, tzinfo=UTC)), "stale"),
    ],
    ids=["unsigned", "forged-secret", "other-body", "malformed", "stale", "future"],
)
def test_an_unverifiable_request_is_refused_with_401_and_starts_nothing(
    wired: SimpleNamespace, signature_of: Any, reason: str
) -> None:
    body = notification()
    status, document = answer(wired.handler(url_event(body, signature=signature_of(body)), FakeContext()))
    assert status == 401
    assert reason in document["message"]
    assert wired.invoker.drain() == []


def test_a_replayed_signature_is_refused_with_401(wired: SimpleNamespace) -> None:
    body = notification()
    event = url_event(body, signature=signed(body))
    assert answer(wired.handler(event, FakeContext()))[0] == 202
    wired.clock.advance(30)  # still within the 5-minute tolerance: only the replay guard tells it apart
    status, document = answer(wired.handler(event, FakeContext()))
    assert (status, "replay" in document["message"]) == (401, True)
    assert len(wired.invoker.drain()) == 1


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"type": "analyze.batch.completed"}'])
def test_a_signed_body_that_cannot_be_read_is_refused_with_400(wired: SimpleNamespace, body: bytes) -> None:
    assert answer(wired.handler(url_event(body, signature=signed(body)), FakeContext()))[0] == 400
    assert wired.invoker.drain() == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_method_other_than_post_is_refused_with_405_before_the_secret_is_read(
    wired: SimpleNamespace, method: str
) -> None:
    body = notification()
    assert answer(wired.handler(url_event(body, signature=signed(body), method=method), FakeContext()))[0] == 405
    assert wired.secret.reads == 0


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_an_oversized_body_is_refused_with_413_before_the_secret_is_read(
    wired: SimpleNamespace, base64_encoded: bool
) -> None:
    body = b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    event = url_event(body, signature=signed(body), base64_encoded=base64_encoded)
    assert answer(wired.handler(event, FakeContext()))[0] == 413
    assert (wired.secret.reads, wired.invoker.drain()) == (0, [])


def test_a_body_of_exactly_the_limit_reaches_the_service(wired: SimpleNamespace) -> None:
    body = notification()
    body = body[:-1] + b"," + b'"pad":"' + b"x" * (MAX_BODY_BYTES - len(body) - 9) + b'"}'
    assert len(body) == MAX_BODY_BYTES
    assert answer(wired.handler(url_event(body, signature=signed(body)), FakeContext()))[0] == 202


def test_a_body_that_is_not_base64_is_refused_with_400(wired: SimpleNamespace) -> None:
    event = {**url_event(b"{}", signature="t=1,v1=00"), "body": "not base64!", "isBase64Encoded": True}
    assert answer(wired.handler(event, FakeContext()))[0] == 400
    assert wired.secret.reads == 0


def test_neither_the_secret_nor_the_signature_is_logged(
    wired: SimpleNamespace, logs: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = notification()
    good, forged = signed(body), signed(body, secret="forger")
    for signature in (good, good, forged):
        wired.handler(url_event(body, signature=signature), FakeContext())
    # The Powertools JSON lines and every stdlib record with its extras (the service logs through logging).
    text = logs.getvalue() + "".join(str(record.__dict__) for record in caplog.records)
    for captured in ("run summary", "webhook refused", "a replay"):  # the logs were captured
        assert captured in text
    for secret_part in (SECRET, good.split("v1=")[1], forged.split("v1=")[1]):
        assert secret_part not in text


def test_an_event_that_is_not_an_object_is_refused_by_name() -> None:
    with pytest.raises(InvalidInputError, match="must be an object"):
        load_handler("webhook").url_request([])
