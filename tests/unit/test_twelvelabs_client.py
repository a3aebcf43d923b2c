import io
import json
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from videobatch import errors
from videobatch.clock import ManualClock
from videobatch.twelvelabs.client import TwelveLabsClient
from videobatch.twelvelabs.models import MultipartUpload, PresignedUrl
from videobatch.twelvelabs.retry import RetryPolicy
from videobatch.twelvelabs.validation import parse_batch_request

BASE = "https://api.test/v1.3"
BATCH_ID = "6" * 24
Handler = Callable[[httpx.Request], httpx.Response]


class FakeServer:
    """Answers from a script of handlers (the last one repeats) and records every request."""

    def __init__(self, *script: Handler) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        handler = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return handler(request)


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx.Response(status, json=body, headers=headers)


def fail(exc_type: type[httpx.HTTPError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return handler


def make_client(server: FakeServer, clock: ManualClock | None = None, **options: Any) -> TwelveLabsClient:
    return TwelveLabsClient(
        options.pop("api_key", "key-123"),
        base_url=BASE,
        clock=clock or ManualClock(),
        transport=httpx.MockTransport(server),
        retry_policy=options.pop("retry_policy", RetryPolicy(random_source=lambda: 0.0)),
        **options,
    )


def batch_body(status: str = "processing") -> dict[str, Any]:
    return {
        "batch_id": BATCH_ID,
        "analysis_mode": "general",
        "model_name": "pegasus1.5",
        "status": status,
        "total_items": 1,
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-02T00:00:00Z",
    }


CREATED = {
    "batch_id": BATCH_ID,
    "status": "pending",
    "total_items": 1,
    "created_at": "2026-01-01T00:00:00Z",
    "expires_at": "2026-01-02T00:00:00Z",
    "items": [{"task_id": "t1", "custom_id": "v0"}],
}


def create_request() -> Any:
    return parse_batch_request(
        {
            "analysis_mode": "general",
            "defaults": {"prompt": {"input_text": "Summarise"}, "temperature": 0.2},
            "requests": [{"video": {"asset_id": "a0"}, "custom_id": "v0"}],
        }
    )


# --- wire format -----------------------------------------------------------------------------------------------


def test_create_batch_sends_json_with_api_key_and_parses_the_answer() -> None:
    server = FakeServer(answer(201, CREATED))
    created = make_client(server).create_batch(create_request())
    request = server.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/analyze/batches")
    assert request.headers["x-api-key"] == "key-123"
    assert json.loads(request.content) == {
        "model_name": "pegasus1.5",
        "analysis_mode": "general",
        "requests": [{"video": {"type": "asset_id", "asset_id": "a0"}, "custom_id": "v0"}],
        "defaults": {"prompt": {"input_text": "Summarise"}, "temperature": 0.2},
    }
    assert created.items[0].task_id == "t1"


def test_create_batch_validates_before_sending() -> None:
    server = FakeServer(answer(201, CREATED))
    request = create_request()
    request.requests[0].temperature = 5
    with pytest.raises(errors.RequestValidationError, match=r"requests\.0\.temperature"):
        make_client(server).create_batch(request)
    assert server.requests == []


def test_list_batches_repeats_filter_keys() -> None:
    server = FakeServer(answer(200, {"data": [batch_body()], "page_info": {"page": 2}}))
    page = make_client(server).list_batches(
        page=2, page_limit=50, status=["processing", "canceling"], analysis_mode=["general"]
    )
    assert server.requests[0].url.query == (
        b"page=2&page_limit=50&status=processing&status=canceling&analysis_mode=general"
    )
    assert page.data[0].batch_id == BATCH_ID


def test_list_assets_repeats_asset_ids_and_types() -> None:
    server = FakeServer(answer(200, {"data": [{"_id": "a1", "status": "ready"}]}))
    page = make_client(server).list_assets(asset_ids=["a1", "a2"], asset_types=["video"], filename="clip")
    params = server.requests[0].url.params
    assert params.get_list("asset_ids") == ["a1", "a2"]
    assert (params.get_list("asset_types"), params["filename"], params["page"]) == (["video"], "clip", "1")
    assert page.data[0].id == "a1"


def test_page_limit_above_the_maximum_is_rejected() -> None:
    with pytest.raises(errors.RequestValidationError) as caught:
        make_client(FakeServer(answer(200, {}))).list_batches(page_limit=51)
    assert caught.value.field == "page_limit"


def test_empty_id_is_rejected_before_it_turns_into_a_list_call() -> None:
    with pytest.raises(errors.RequestValidationError) as caught:
        make_client(FakeServer(answer(200, {}))).retrieve_batch("")
    assert caught.value.field == "batch_id"


def test_iterator_walks_pages_until_an_empty_one() -> None:
    server = FakeServer(
        answer(200, {"data": [batch_body(), batch_body()]}),
        answer(200, {"data": [batch_body()]}),
        answer(200, {"data": [], "page_info": {"page": 3}}),
        answer(500, {"message": "must not be called"}),
    )
    batches = list(make_client(server).iter_batches(page_limit=2, status=["completed"]))
    assert len(batches) == 3
    assert [request.url.params["page"] for request in server.requests] == ["1", "2", "3"]
    assert all(request.url.params["status"] == "completed" for request in server.requests)


def test_iter_assets_and_tasks_use_their_endpoints() -> None:
    server = FakeServer(answer(200, {"data": []}))
    client = make_client(server)
    assert list(client.iter_assets(asset_ids=["a"])) == []
    assert list(client.iter_tasks(status="ready", asset_id="a")) == []
    assert [request.url.path for request in server.requests] == ["/v1.3/assets", "/v1.3/analyze/tasks"]
    assert server.requests[1].url.params["status"] == "ready"


def test_create_asset_from_url_is_multipart_form_data() -> None:
    server = FakeServer(answer(201, {"_id": "asset1", "status": "processing"}))
    asset = make_client(server).create_asset_from_url(
        "https://videos.example/v.mp4", filename="v.mp4", user_metadata={"k": "v"}, enable_hls=False
    )
    request = server.requests[0]
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = request.content.decode()
    for name, value in [("method", "url"), ("url", "https://videos.example/v.mp4"), ("enable_hls", "false")]:
        assert f'name="{name}"\r\n\r\n{value}\r\n' in body
    assert 'name="user_metadata"\r\n\r\n{"k": "v"}\r\n' in body
    assert "enable_thumbnail" not in body
    assert asset.id == "asset1"


def test_create_asset_from_file_sends_the_file_part() -> None:
    server = FakeServer(fail(httpx.ConnectError), answer(201, {"_id": "asset2"}))
    file = io.BytesIO(b"\x00\x01video-bytes")
    make_client(server).create_asset_from_file(file, filename="v.mp4", content_type="video/mp4")
    # The connect failure sent nothing, so the retry must carry the whole file again.
    body = server.requests[1].content
    assert b'name="method"\r\n\r\ndirect\r\n' in body
    assert b'name="file"; filename="v.mp4"\r\nContent-Type: video/mp4\r\n\r\n\x00\x01video-bytes\r\n' in body


def test_direct_upload_over_200_mb_is_rejected() -> None:
    with pytest.raises(errors.RequestValidationError) as caught:
        make_client(FakeServer(answer(201, {}))).create_asset_from_file(b"x" * 200_000_001, filename="v")
    assert caught.value.field == "file"


def test_asset_retrieve_and_delete_paths() -> None:
    server = FakeServer(answer(200, {"_id": "a/1", "status": "failed", "error": {"message": "corrupt"}}), answer(204))
    client = make_client(server)
    asset = client.retrieve_asset("a/1")
    client.delete_asset("a/1", force=True)
    assert asset.error is not None
    assert asset.error.message == "corrupt"
    assert [str(request.url) for request in server.requests] == [
        f"{BASE}/assets/a%2F1",
        f"{BASE}/assets/a%2F1?force=true",
    ]


def test_multipart_upload_endpoints_mirror_the_sdk() -> None:
    server = FakeServer(
        answer(201, {"upload_id": "u1", "asset_id": "a1", "chunk_size": 5, "total_chunks": 2, "upload_urls": []}),
        answer(200, {"url": "https://done", "processed_chunks": 2, "duplicate_chunks": 0}),
        answer(200, {"upload_id": "u1", "upload_urls": [{"chunk_index": 3, "url": "https://s3/3"}]}),
        answer(
            200, {"upload_id": "u1", "status": "completed", "uploaded_chunks": [{"index": 1, "status": "completed"}]}
        ),
    )
    client = make_client(server)
    upload = client.create_multipart_upload(filename="v.mp4", total_size=10)
    from videobatch.twelvelabs.models import CompletedChunk

    report = client.report_completed_chunks("u1", [CompletedChunk(chunk_index=1, proof="e1", chunk_size=5)])
    urls = client.request_presigned_urls("u1", start=3, count=1)
    status = client.get_multipart_upload_status("u1", page_limit=10)
    bodies = [json.loads(request.content) if request.content else None for request in server.requests]
    assert bodies[0] == {"filename": "v.mp4", "type": "video", "total_size": 10}
    assert bodies[1] == {"completed_chunks": [{"chunk_index": 1, "proof": "e1", "proof_type": "etag", "chunk_size": 5}]}
    assert bodies[2] == {"start": 3, "count": 1}
    assert [request.url.path for request in server.requests] == [
        "/v1.3/assets/multipart-uploads",
        "/v1.3/assets/multipart-uploads/u1",
        "/v1.3/assets/multipart-uploads/u1/presigned-urls",
        "/v1.3/assets/multipart-uploads/u1",
    ]
    assert (upload.upload_id, report.url, urls.upload_urls[0].url, status.status) == (
        "u1",
        "https://done",
        "https://s3/3",
        "completed",
    )


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.create_multipart_upload(filename="v", total_size=0), "total_size"),
        (lambda c: c.request_presigned_urls("u", start=0, count=1), "start"),
        (lambda c: c.request_presigned_urls("u", start=1, count=51), "count"),
        (lambda c: c.report_completed_chunks("u", []), "completed_chunks"),
    ],
)
def test_multipart_arguments_are_checked(call: Callable[[TwelveLabsClient], Any], field: str) -> None:
    with pytest.raises(errors.RequestValidationError) as caught:
        call(make_client(FakeServer(answer(200, {}))))
    assert caught.value.field == field


# --- chunk upload helper ---------------------------------------------------------------------------------------


def s3_and_api(request: httpx.Request) -> httpx.Response:
    if request.url.host == "s3.test":
        return httpx.Response(200, headers={"ETag": f'"etag-{request.url.path[1:]}-{len(request.content)}"'})
    start = json.loads(request.content)["start"]
    return httpx.Response(200, json={"upload_urls": [{"chunk_index": start, "url": f"https://s3.test/{start}"}]})


def session(total_chunks: int, urls: int) -> MultipartUpload:
    return MultipartUpload(
        upload_id="u1",
        asset_id="a1",
        chunk_size=4,
        total_chunks=total_chunks,
        upload_headers={"x-amz-meta": "m"},
        upload_urls=[PresignedUrl(chunk_index=i, url=f"https://s3.test/{i}") for i in range(1, urls + 1)],
    )


def test_upload_chunks_puts_each_chunk_and_collects_etags() -> None:
    server = FakeServer(s3_and_api)
    consumed: list[int] = []

    def chunks() -> Iterator[bytes]:
        for index, chunk in enumerate([b"aaaa", b"bbbb", b"cc"], start=1):
            consumed.append(index)
            yield chunk

    proofs = make_client(server).upload_chunks(session(3, urls=2), chunks())
    assert [(p.chunk_index, p.proof, p.chunk_size) for p in proofs] == [
        (1, "etag-1-4", 4),
        (2, "etag-2-4", 4),
        (3, "etag-3-2", 2),
    ]
    puts = [request for request in server.requests if request.method == "PUT"]
    assert all("x-api-key" not in request.headers for request in puts)
    assert puts[0].headers["x-amz-meta"] == "m"
    # Chunk 3 had no URL yet: the helper asked for more, starting at 3.
    api_calls = [request for request in server.requests if request.method == "POST"]
    assert json.loads(api_calls[0].content) == {"start": 3, "count": 1}
    assert api_calls[0].headers["x-api-key"] == "key-123"


@pytest.mark.parametrize(
    ("chunks", "field", "rule"),
    [
        ([b"aaa", b"bb"], "chunks.1", "exactly chunk_size=4"),
        ([b"aaaa", b"bbbb", b"cccc", b"d"], "chunks", "more chunks"),
        ([b"aaaa"], "chunks", "got 1 chunk(s)"),
        ([b"aaaa", b"bbbb", b""], "chunks.3", "1 to chunk_size=4"),
    ],
)
def test_upload_chunks_checks_the_sizes(chunks: list[bytes], field: str, rule: str) -> None:
    with pytest.raises(errors.RequestValidationError) as caught:
        make_client(FakeServer(s3_and_api)).upload_chunks(session(3, urls=3), iter(chunks))
    assert (caught.value.field, rule in caught.value.rule) == (field, True)


def test_upload_without_etag_is_an_error() -> None:
    server = FakeServer(answer(200))
    with pytest.raises(errors.TwelveLabsError, match=r"chunk 1: .* without an ETag"):
        make_client(server).upload_chunks(session(1, urls=1), [b"aa"])


def test_upload_without_a_presigned_url_is_an_error() -> None:
    server = FakeServer(answer(200, {"upload_urls": []}))
    with pytest.raises(errors.TwelveLabsError, match="no presigned URL for chunk 1"):
        make_client(server).upload_chunks(session(1, urls=0), [b"aa"])


# --- error mapping ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "message", "details"),
    [
        ({"code": "resource_not_exist", "message": "flat"}, "resource_not_exist", "flat", None),
        (
            {"error": {"code": "batch_not_found", "message": "nested", "details": {"id": 1}}},
            "batch_not_found",
            "nested",
            {"id": 1},
        ),
        (
            {"code": "flat_code", "message": "flat", "error": {"code": "nested_code", "message": "nested"}},
            "nested_code",
            "nested",
            None,
        ),
        ({"error": "just a string", "message": "flat"}, None, "flat", None),
        (["not", "an", "object"], None, '["not","an","object"]', None),
    ],
)
def test_error_bodies_of_both_shapes(body: Any, code: str | None, message: str, details: Any) -> None:
    with pytest.raises(errors.NotFoundError) as caught:
        make_client(FakeServer(answer(404, body))).retrieve_batch(BATCH_ID)
    assert (caught.value.code, caught.value.message, caught.value.details) == (code, message, details)
    assert caught.value.status_code == 404


def test_non_json_error_body_keeps_the_text() -> None:
    server = FakeServer(lambda request: httpx.Response(403, text="<html>denied</html>"))
    with pytest.raises(errors.PermissionDeniedError, match="denied"):
        make_client(server).retrieve_task("t1")


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (409, errors.ConflictError),
        (422, errors.UnprocessableEntityError),
    ],
)
def test_4xx_is_definitive_and_not_retried(status: int, error_class: type[errors.APIStatusError]) -> None:
    server = FakeServer(answer(status, {"code": "x", "message": "no"}))
    with pytest.raises(error_class):
        make_client(server).retrieve_batch(BATCH_ID)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("header", "value", "expected_seconds"),
    [
        ("Retry-After", "7", 7.0),
        ("Retry-After", "Thu, 01 Jan 2026 00:00:12 GMT", 12.0),  # ManualClock starts at 2026-01-01T00:00:00Z
        ("Retry-After", "Wed, 31 Dec 2025 23:00:00 GMT", 0.0),  # in the past
        ("Retry-After", "soon", None),
        ("Retry-After-Ms", "1500", 1.5),
    ],
)
def test_retry_after_is_parsed(header: str, value: str, expected_seconds: float | None) -> None:
    server = FakeServer(answer(429, {"code": "too_many_requests", "message": "slow"}, {header: value}))
    client = make_client(server, retry_policy=RetryPolicy(max_attempts=1))
    with pytest.raises(errors.RateLimitError) as caught:
        client.retrieve_batch(BATCH_ID)
    assert caught.value.retry_after_seconds == expected_seconds


def test_unreadable_success_body_is_a_clear_error() -> None:
    server = FakeServer(answer(200, {"batch_id": BATCH_ID}))
    with pytest.raises(
        errors.TwelveLabsError, match=r"GET /v1.3/analyze/batches/6+ answered 200 .* Batch at analysis_mode"
    ):
        make_client(server).retrieve_batch(BATCH_ID)


def test_unreadable_create_answer_leaves_the_outcome_unknown() -> None:
    server = FakeServer(lambda request: httpx.Response(201, text="not json"))
    with pytest.raises(errors.OutcomeUnknownError, match="BatchCreated"):
        make_client(server).create_batch(create_request())


# --- retries and deadlines -------------------------------------------------------------------------------------


def test_get_retries_5xx_and_transport_errors_with_backoff_on_the_clock() -> None:
    clock = ManualClock()
    server = FakeServer(
        answer(503, {"message": "busy"}), fail(httpx.ConnectError), fail(httpx.ReadTimeout), answer(200, batch_body())
    )
    batch = make_client(server, clock).retrieve_batch(BATCH_ID)
    assert batch.status == "processing"
    assert len(server.requests) == 4
    assert clock.monotonic() == pytest.approx(0.5 + 1.0 + 2.0)


def test_429_waits_at_least_retry_after() -> None:
    clock = ManualClock()
    server = FakeServer(answer(429, {"message": "slow"}, {"Retry-After": "4"}), answer(201, CREATED))
    make_client(server, clock).create_batch(create_request())
    assert clock.monotonic() == pytest.approx(4.0)
    assert len(server.requests) == 2


def test_retry_after_beyond_the_budget_raises_deadline_exceeded_without_sleeping() -> None:
    clock = ManualClock()
    server = FakeServer(answer(429, {"message": "slow"}, {"Retry-After": "120"}))
    with pytest.raises(errors.DeadlineExceededError) as caught:
        make_client(server, clock).retrieve_batch(BATCH_ID, max_wait_seconds=30)
    assert isinstance(caught.value.last_error, errors.RateLimitError)
    assert clock.monotonic() == 0
    assert len(server.requests) == 1


def test_budget_runs_out_across_retries() -> None:
    clock = ManualClock()
    server = FakeServer(answer(500, {"message": "down"}))
    with pytest.raises(errors.DeadlineExceededError) as caught:
        make_client(
            server, clock, retry_policy=RetryPolicy(max_attempts=100, random_source=lambda: 0.0)
        ).retrieve_batch(BATCH_ID, max_wait_seconds=5)
    assert isinstance(caught.value.last_error, errors.ServerError)
    # Attempts at 0, 0.5, 1.5 and 3.5 s; the next wait (4 s) would overrun the 5 s budget.
    assert clock.monotonic() == pytest.approx(3.5)
    assert len(server.requests) == 4


def test_attempts_exhausted_raises_the_last_error() -> None:
    server = FakeServer(answer(502, {"message": "bad gateway"}))
    with pytest.raises(errors.ServerError):
        make_client(server, retry_policy=RetryPolicy(max_attempts=2, random_source=lambda: 0.0)).retrieve_task("t1")
    assert len(server.requests) == 2


def test_time_remaining_caps_the_budget_and_the_attempt_timeout() -> None:
    clock = ManualClock()
    seen_timeouts: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen_timeouts.append(request.extensions["timeout"]["read"])
        return httpx.Response(200, json=batch_body())

    make_client(FakeServer(handler), clock, time_remaining=lambda: 2.5).retrieve_batch(BATCH_ID, max_wait_seconds=60)
    assert seen_timeouts == [2.5]


def test_no_budget_at_all_sends_nothing() -> None:
    server = FakeServer(answer(200, batch_body()))
    with pytest.raises(errors.DeadlineExceededError) as caught:
        make_client(server, time_remaining=lambda: 0.0).retrieve_batch(BATCH_ID)
    assert caught.value.last_error is None
    assert server.requests == []


# --- batch create never repeats blindly ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        fail(httpx.ReadTimeout),
        fail(httpx.WriteTimeout),
        fail(httpx.ReadError),
        fail(httpx.RemoteProtocolError),
        answer(500, {"error": {"code": "internal", "message": "oops"}}),
        answer(503, {"error": {"code": "unavailable", "message": "later"}}),
        answer(504, {"error": {"code": "timeout", "message": "gateway"}}),
    ],
)
def test_create_batch_outcome_unknown_is_raised_not_retried(failure: Handler) -> None:
    server = FakeServer(failure, answer(201, CREATED))
    with pytest.raises(errors.OutcomeUnknownError):
        make_client(server).create_batch(create_request())
    assert len(server.requests) == 1


def test_create_batch_retries_a_connect_failure() -> None:
    server = FakeServer(fail(httpx.ConnectError), fail(httpx.ConnectTimeout), answer(201, CREATED))
    assert make_client(server).create_batch(create_request()).batch_id == BATCH_ID
    assert len(server.requests) == 3


def test_create_batch_connect_failures_until_the_deadline_mean_nothing_was_created() -> None:
    server = FakeServer(fail(httpx.ConnectError))
    with pytest.raises(errors.DeadlineExceededError) as caught:
        make_client(server).create_batch(create_request(), max_wait_seconds=1)
    assert isinstance(caught.value.last_error, errors.TransportError)


@pytest.mark.parametrize(
    ("status", "error_class"), [(400, errors.BadRequestError), (404, errors.NotFoundError), (409, errors.ConflictError)]
)
def test_create_batch_4xx_is_definitive(status: int, error_class: type[errors.APIStatusError]) -> None:
    server = FakeServer(answer(status, {"code": "asset_not_ready", "message": "no"}))
    with pytest.raises(error_class):
        make_client(server).create_batch(create_request())
    assert len(server.requests) == 1


def test_other_creates_do_not_repeat_after_a_timeout() -> None:
    server = FakeServer(fail(httpx.ReadTimeout), answer(201, {"_id": "a"}))
    with pytest.raises(errors.OutcomeUnknownError):
        make_client(server).create_asset_from_url("https://v/1.mp4")
    assert len(server.requests) == 1


# --- cancel and delete after ambiguity -------------------------------------------------------------------------


def test_cancel_resolves_a_409_that_follows_its_own_lost_attempt() -> None:
    server = FakeServer(
        fail(httpx.ReadTimeout),
        answer(409, {"code": "batch_not_cancelable", "message": "canceling"}),
        answer(200, batch_body("canceling")),
    )
    batch = make_client(server).cancel_batch(BATCH_ID)
    assert batch.status == "canceling"
    assert [request.method for request in server.requests] == ["POST", "POST", "GET"]


def test_cancel_409_without_ambiguity_is_raised() -> None:
    server = FakeServer(answer(409, {"code": "batch_not_cancelable", "message": "completed"}))
    with pytest.raises(errors.ConflictError):
        make_client(server).cancel_batch(BATCH_ID)
    assert len(server.requests) == 1


def test_cancel_409_after_ambiguity_is_raised_when_the_batch_was_not_canceled() -> None:
    server = FakeServer(
        answer(503, {"message": "x"}), answer(409, {"message": "completed"}), answer(200, batch_body("completed"))
    )
    with pytest.raises(errors.ConflictError):
        make_client(server).cancel_batch(BATCH_ID)


def test_cancel_returns_the_batch() -> None:
    server = FakeServer(answer(200, batch_body("canceling")))
    assert make_client(server).cancel_batch(BATCH_ID).status == "canceling"
    assert server.requests[0].url.path == f"/v1.3/analyze/batches/{BATCH_ID}/cancel"


def test_delete_treats_404_after_its_own_lost_attempt_as_done() -> None:
    server = FakeServer(fail(httpx.RemoteProtocolError), answer(404, {"message": "gone"}))
    make_client(server).delete_batch(BATCH_ID)
    assert [request.method for request in server.requests] == ["DELETE", "DELETE"]


def test_delete_404_without_ambiguity_is_raised() -> None:
    with pytest.raises(errors.NotFoundError):
        make_client(FakeServer(answer(404, {"message": "gone"}))).delete_batch(BATCH_ID)


# --- results streaming -----------------------------------------------------------------------------------------

READY_LINE = (
    '{"task_id":"t1","custom_id":"c1","status":"ready","data":{"generation_id":"g","data":"text",'
    '"finish_reason":"stop","usage":{"output_tokens":3}}}'
)


class ChunkedBody(httpx.SyncByteStream):
    """A body delivered in small pieces that split lines, counting how much the client has read."""

    def __init__(self, payload: bytes, piece_bytes: int) -> None:
        self.pieces = [payload[i : i + piece_bytes] for i in range(0, len(payload), piece_bytes)]
        self.delivered = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            self.delivered += 1
            yield piece


def test_results_stream_line_by_line_keeping_every_line_that_names_a_task() -> None:
    lines = [
        READY_LINE,
        "",
        "   ",
        "{not json",
        '{"task_id":"t2"}',
        '{"task_id":"t3","status":"failed","error":{"message":"x"}}',
        '{"task_id":"t4","custom_id":"c4","status":"ready","data":{"data":"no generation id"}}',
        '{"task_id":"t5","status":"ready","data":{"generation_id":"g","data":"d","finish_reason":"stop",',
        '{"task_id": "t6", "custom_id": "c6", "status": "ready", "data": {"generation_id": "g", "data": "d", '
        '"finish_reason": "stop", "usage": {"output_tokens": 1}}, "error": {"message": "partial"}}',
        '{"custom_id":"orphan","status":"ready"}',
        '{"task_id": "abc',
    ]
    body = ChunkedBody(("\n".join(lines)).encode(), piece_bytes=7)
    server = FakeServer(lambda request: httpx.Response(200, stream=body, headers={"content-type": "application/jsonl"}))
    with make_client(server).stream_batch_results(BATCH_ID) as results:
        first = next(results)
        assert body.delivered < len(body.pieces)  # not read whole before the first item
        rest = list(results)
    assert first.data is not None
    assert first.data.data == "text"
    assert first.parsed
    assert [(item.task_id, item.custom_id, item.status, item.parsed) for item in rest] == [
        ("t2", None, "", False),
        ("t3", None, "failed", True),
        ("t4", "c4", "ready", False),
        ("t5", None, "", False),
        ("t6", "c6", "ready", True),
    ]
    assert rest[0].parse_error is not None
    assert "status" in rest[0].parse_error
    assert rest[2].parse_error is not None
    assert rest[2].parse_error.startswith("data.")
    assert rest[2].data is None
    assert rest[3].parse_error is not None
    assert "not valid JSON" in rest[3].parse_error
    assert rest[4].warning is not None
    assert rest[4].warning.message == "partial"
    assert rest[1].warning is None  # an error on a failed line is the failure, not a warning
    assert (results.blank_lines, results.skipped_lines, results.unparsable_lines) == (2, 3, 3)
    assert server.requests[0].url.path == f"/v1.3/analyze/batches/{BATCH_ID}/results"


def test_results_report_counts_not_content(caplog: pytest.LogCaptureFixture) -> None:
    payload = f'{READY_LINE}\n{{"task_id":"t9","status":7}}\n{{"task_id": "secret-'.encode()
    server = FakeServer(lambda request: httpx.Response(200, content=payload))
    with caplog.at_level("WARNING"), make_client(server).stream_batch_results(BATCH_ID) as results:
        assert len(list(results)) == 2
    assert "1 line(s) without a readable task_id skipped, 1 unparsable line(s) kept" in caplog.text
    assert "secret" not in caplog.text


def test_unknown_statuses_and_finish_reasons_are_carried() -> None:
    line = READY_LINE.replace('"status":"ready"', '"status":"scheduled"').replace('"stop"', '"end_turn"')
    server = FakeServer(
        answer(200, batch_body("validating")),
        answer(200, {"data": [batch_body("validating"), batch_body("archived")]}),
        answer(200, {"data": []}),
        lambda request: httpx.Response(200, content=line.encode()),
        answer(200, {"task_id": "t1", "status": "paused", "created_at": "2026-01-01T00:00:00Z"}),
        answer(200, {"_id": "a1", "status": "transcoding"}),
    )
    client = make_client(server)
    assert client.retrieve_batch(BATCH_ID).status == "validating"
    assert [b.status for b in client.iter_batches()] == ["validating", "archived"]
    with client.stream_batch_results(BATCH_ID) as results:
        [item] = list(results)
    assert (item.status, item.parsed) == ("scheduled", True)
    assert item.data is not None
    assert (item.data.finish_reason, item.data.known_finish_reason) == ("end_turn", None)
    assert client.retrieve_task("t1").status == "paused"
    assert client.retrieve_asset("a1").status == "transcoding"


def test_results_open_errors_raise_on_entering() -> None:
    server = FakeServer(
        answer(503, {"message": "busy"}), answer(404, {"code": "batch_not_found", "message": "expired"})
    )
    with pytest.raises(errors.NotFoundError, match="expired"), make_client(server).stream_batch_results(BATCH_ID):
        pytest.fail("must not enter")
    assert len(server.requests) == 2


def test_results_on_crlf_and_no_trailing_newline() -> None:
    payload = f"{READY_LINE}\r\n{READY_LINE}".encode()
    server = FakeServer(lambda request: httpx.Response(200, content=payload))
    with make_client(server).stream_batch_results(BATCH_ID) as results:
        assert len(list(results)) == 2


def test_client_requires_an_api_key() -> None:
    with pytest.raises(errors.RequestValidationError) as caught:
        TwelveLabsClient("")
    assert caught.value.field == "api_key"


# --- rate limits ------------------------------------------------------------------------------------------------

EPOCH_AT_START = 1_767_225_600  # ManualClock's 2026-01-01T00:00:00Z


def limited(remaining: str, reset: str, **extra: str) -> Handler:
    headers = {"X-Ratelimit-Limit": "10", "X-Ratelimit-Remaining": remaining, "X-Ratelimit-Reset": reset, **extra}
    return answer(429, {"code": "too_many_requests", "message": "slow down"}, headers)


def test_429_without_retry_after_waits_until_the_ratelimit_reset() -> None:
    clock = ManualClock()
    server = FakeServer(limited("0", str(EPOCH_AT_START + 40)), answer(200, batch_body()))
    client = make_client(server, clock, default_max_wait_seconds=60)
    assert client.retrieve_batch(BATCH_ID).batch_id == BATCH_ID
    assert clock.monotonic() == 40
    assert len(server.requests) == 2


def test_a_spent_window_outlasts_a_shorter_retry_after() -> None:
    clock = ManualClock()
    server = FakeServer(limited("0", str(EPOCH_AT_START + 25), **{"Retry-After": "3"}), answer(200, batch_body()))
    make_client(server, clock, default_max_wait_seconds=60).retrieve_batch(BATCH_ID)
    assert clock.monotonic() == 25


def test_a_reset_beyond_the_budget_raises_at_once() -> None:
    clock = ManualClock()
    server = FakeServer(limited("0", str(EPOCH_AT_START + 3_600)))
    with pytest.raises(errors.DeadlineExceededError):
        make_client(server, clock, default_max_wait_seconds=30).retrieve_batch(BATCH_ID)
    assert clock.monotonic() == 0
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("headers", "expected_seconds"),
    [
        ({"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": str(EPOCH_AT_START + 12)}, 12.0),
        ({"X-Ratelimit-Reset": str(EPOCH_AT_START + 12)}, 12.0),  # no Remaining: the 429 says it is spent
        ({"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "30"}, 30.0),  # too small for epoch: seconds
        ({"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": str(EPOCH_AT_START - 5)}, 0.0),
        ({"X-Ratelimit-Remaining": "4", "X-Ratelimit-Reset": str(EPOCH_AT_START + 12)}, None),
        ({"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "tomorrow"}, None),
        ({}, None),
    ],
)
def test_ratelimit_headers_are_read_on_429(headers: dict[str, str], expected_seconds: float | None) -> None:
    server = FakeServer(answer(429, {"code": "too_many_requests", "message": "slow"}, headers))
    with pytest.raises(errors.RateLimitError) as caught:
        make_client(server, retry_policy=RetryPolicy(max_attempts=1)).retrieve_batch(BATCH_ID)
    assert caught.value.retry_after_seconds == expected_seconds


def test_429_without_any_hint_backs_off_and_retries() -> None:
    clock = ManualClock()
    server = FakeServer(answer(429, {"code": "too_many_requests", "message": "slow"}), answer(200, batch_body()))
    make_client(server, clock).retrieve_batch(BATCH_ID)
    assert clock.monotonic() == RetryPolicy().base_delay_seconds
    assert len(server.requests) == 2


# --- key rotation -----------------------------------------------------------------------------------------------


class RotatingKey:
    """A provider over a secret that was rotated: its cache holds the old key until refreshed."""

    def __init__(self, cached: str, current: str, *, fail_refresh: bool = False) -> None:
        self.cached, self.current, self.fail_refresh = cached, current, fail_refresh
        self.refreshes = 0

    def get(self) -> str:
        return self.cached

    def refresh(self) -> str:
        self.refreshes += 1
        if self.fail_refresh:
            raise RuntimeError("secret store unreachable")
        self.cached = self.current
        return self.cached


def accepts_only(key: str, success: Handler, status: int = 401) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("x-api-key") != key:
            return httpx.Response(status, json={"code": "api_key_invalid", "message": "API Key is invalid"})
        return success(request)

    return handler


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_refreshed_once_and_the_same_create_repeated(status: int) -> None:
    keys = RotatingKey("old-key-111", "new-key-222")
    server = FakeServer(accepts_only("new-key-222", answer(201, CREATED), status))
    created = make_client(server, api_key=keys).create_batch(create_request())
    assert created.batch_id == BATCH_ID
    assert [r.headers["x-api-key"] for r in server.requests] == ["old-key-111", "new-key-222"]
    assert json.loads(server.requests[0].content) == json.loads(server.requests[1].content)
    assert keys.refreshes == 1


@pytest.mark.parametrize(
    ("status", "error_class"), [(401, errors.AuthenticationError), (403, errors.PermissionDeniedError)]
)
def test_a_second_refusal_raises(status: int, error_class: type[errors.APIStatusError]) -> None:
    keys = RotatingKey("old-key-111", "also-wrong-333")
    server = FakeServer(accepts_only("right-key", answer(200, batch_body()), status))
    with pytest.raises(error_class):
        make_client(server, api_key=keys).retrieve_batch(BATCH_ID)
    assert len(server.requests) == 2
    assert keys.refreshes == 1


def test_an_unchanged_key_is_not_sent_again() -> None:
    server = FakeServer(answer(401, {"code": "api_key_invalid", "message": "invalid"}))
    with pytest.raises(errors.AuthenticationError):
        make_client(server).retrieve_batch(BATCH_ID)
    assert len(server.requests) == 1


def test_a_failing_refresh_keeps_the_refusal_with_its_cause() -> None:
    keys = RotatingKey("old-key-111", "new-key-222", fail_refresh=True)
    server = FakeServer(answer(401, {"code": "api_key_invalid", "message": "invalid"}))
    with pytest.raises(errors.AuthenticationError) as caught:
        make_client(server, api_key=keys).retrieve_batch(BATCH_ID)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert len(server.requests) == 1


def test_a_refused_presigned_upload_does_not_touch_the_key() -> None:
    keys = RotatingKey("old-key-111", "new-key-222")
    server = FakeServer(answer(403, {"code": "AccessDenied", "message": "expired"}))
    with pytest.raises(errors.PermissionDeniedError):
        make_client(server, api_key=keys).upload_chunks(session(1, urls=1), [b"aa"])
    assert keys.refreshes == 0
    assert "x-api-key" not in server.requests[0].headers


def test_the_key_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    keys = RotatingKey("old-key-111", "new-key-222")
    server = FakeServer(accepts_only("new-key-222", answer(503, {"message": "busy"})), answer(200, batch_body()))
    with caplog.at_level("DEBUG"):
        make_client(server, api_key=keys).retrieve_batch(BATCH_ID)
        with pytest.raises(errors.AuthenticationError) as caught:
            make_client(FakeServer(answer(401, {"message": "no"})), api_key=keys).retrieve_batch(BATCH_ID)
    assert caplog.records  # the refresh and the retries were logged
    for secret in ("old-key-111", "new-key-222"):
        assert secret not in caplog.text
        assert secret not in str(caught.value)
    assert "new-key-222" not in repr(TwelveLabsClient("new-key-222", base_url=BASE))


# --- observer ---------------------------------------------------------------------------------------------------


def test_every_answer_reaches_the_observer_with_its_path_template() -> None:
    seen: list[tuple[str, str, int]] = []
    server = FakeServer(answer(503, {"message": "busy"}), answer(200, batch_body()), answer(404, {"message": "gone"}))
    client = make_client(server, on_response=lambda method, template, status: seen.append((method, template, status)))
    client.retrieve_batch(BATCH_ID)
    with pytest.raises(errors.NotFoundError):
        client.cancel_batch(BATCH_ID)
    assert seen == [
        ("GET", "analyze/batches/{batch_id}", 503),
        ("GET", "analyze/batches/{batch_id}", 200),
        ("POST", "analyze/batches/{batch_id}/cancel", 404),
    ]


def test_an_observer_that_raises_does_not_fail_the_call() -> None:
    def broken(method: str, template: str, status: int) -> None:
        raise RuntimeError("metrics backend down")

    server = FakeServer(answer(200, batch_body()))
    assert make_client(server, on_response=broken).retrieve_batch(BATCH_ID).batch_id == BATCH_ID


# --- documented sizes -------------------------------------------------------------------------------------------


def test_multipart_limit_is_ten_decimal_gigabytes() -> None:
    server = FakeServer(answer(201, {"upload_id": "u", "asset_id": "a", "chunk_size": 1, "total_chunks": 1}))
    client = make_client(server)
    with pytest.raises(errors.RequestValidationError):
        client.create_multipart_upload(filename="v.mp4", total_size=10_000_000_001)
    client.create_multipart_upload(filename="v.mp4", total_size=10_000_000_000)
    assert json.loads(server.requests[0].content)["total_size"] == 10_000_000_000


def test_chunk_uploads_hold_about_one_chunk_however_many_are_sent() -> None:
    # A dead httpx request (holding its chunk) sits in a Request/Response cycle; without collecting it, several
    # chunks pile up before the cyclic collector runs on its own.
    chunk_bytes = 1 << 20

    def accept(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200, headers={"etag": '"e"'})

    client = TwelveLabsClient("key", base_url="https://api.test/v1.3", transport=httpx.MockTransport(accept))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for index in range(1, 31):
            proof = client.upload_chunk("https://upload.test/u/1", b"v" * chunk_bytes, chunk_index=index)
            assert (proof.chunk_index, proof.proof, proof.chunk_size) == (index, "e", chunk_bytes)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
        client.close()
    assert peak < 3 * chunk_bytes, f"{peak / chunk_bytes:.1f} chunks held at the peak"
