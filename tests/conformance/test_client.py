"""The project's TwelveLabsClient against the emulator over real HTTP: the scenarios test_sdk.py runs with the SDK.

Also the cross-check of request rules: a table of invalid batch bodies must be refused both by the emulator (400)
and by the client's local validation (RequestValidationError), and a table of valid edge cases accepted by both.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import support
from tests.emulator.support import API_KEY, Emu, running
from twelvelabs_emulator.server import EmulatorServer
from videobatch.clock import ManualClock, SystemClock
from videobatch.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DeadlineExceededError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    RequestValidationError,
    ServerError,
)
from videobatch.twelvelabs.client import TwelveLabsClient
from videobatch.twelvelabs.models import AnalysisOptions, BatchCreateRequest, BatchItemRequest, Prompt, VideoContext
from videobatch.twelvelabs.validation import parse_batch_request

pytestmark = pytest.mark.integration

SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}


@contextmanager
def _client(emu: Emu, **options: Any) -> Iterator[TwelveLabsClient]:
    options.setdefault("clock", ManualClock())
    with TwelveLabsClient(API_KEY, base_url=emu.server.api_url, **options) as client:
        yield client


@pytest.fixture
def clock() -> ManualClock:
    """The client's clock: backoff sleeps advance it instead of waiting."""
    return ManualClock()


@pytest.fixture
def client(emu: Emu, clock: ManualClock) -> Iterator[TwelveLabsClient]:
    with _client(emu, clock=clock) as tl:
        yield tl


@pytest.fixture
def file_server(videos: dict[str, Path]) -> Iterator[str]:
    """A stdlib HTTP server on 127.0.0.1 serving the sample videos by name (404 otherwise)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = videos.get(self.path.lstrip("/"))
            body = path.read_bytes() if path else b"missing"
            self.send_response(200 if path else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _ready_asset(client: TwelveLabsClient, emu: Emu, path: Path) -> str:
    asset = client.create_asset_from_file(path.read_bytes(), filename=path.name, user_metadata={"k": "v"})
    assert asset.status == "processing"
    assert asset.user_metadata == {"k": "v"}
    emu.advance(5)
    return asset.id


def _general(asset_id: str, count: int = 1, prefix: str = "item", **item_fields: Any) -> BatchCreateRequest:
    video = VideoContext(asset_id=asset_id)
    return BatchCreateRequest(
        analysis_mode="general",
        requests=[BatchItemRequest(video=video, custom_id=f"{prefix}-{i}", **item_fields) for i in range(count)],
        defaults=AnalysisOptions(prompt=Prompt(input_text="Summarise the video.")),
    )


def _fired(emu: Emu) -> list[int]:
    fired: list[int] = emu.control.get("/_emulator/state").json()["faults"]["fired"]
    return fired


def _custom_ids(client: TwelveLabsClient, batch_id: str) -> list[str | None]:
    with client.stream_batch_results(batch_id) as lines:
        return [line.custom_id for line in lines]


# --- assets -----------------------------------------------------------------------------------------------------


def test_asset_methods(client: TwelveLabsClient, emu: Emu, videos: dict[str, Path], file_server: str) -> None:
    with videos["short"].open("rb") as handle:
        from_file = client.create_asset_from_file(handle, filename="short.mp4", content_type="video/mp4")
    from_url = client.create_asset_from_url(f"{file_server}/short", filename="fetched.mp4", user_metadata={"n": 1})
    assert (from_file.method, from_url.method) == ("direct", "url")
    assert from_url.status == "processing"
    assert from_url.user_metadata == {"n": 1}
    assert client.retrieve_asset(from_file.id).status == "processing"
    emu.advance(5)

    for asset_id in (from_file.id, from_url.id):
        detail = client.retrieve_asset(asset_id)
        assert detail.status == "ready"
        assert detail.duration == pytest.approx(20, abs=0.5)
        assert detail.size == videos["short"].stat().st_size
        assert detail.technical_metadata is not None
        assert (detail.technical_metadata.video_width, detail.technical_metadata.video_height) == (360, 360)
    assert client.retrieve_asset(from_url.id).filename == "fetched.mp4"

    failed = client.create_asset_from_url(f"{file_server}/absent")
    emu.advance(5)
    failed_detail = client.retrieve_asset(failed.id)
    assert failed_detail.status == "failed"
    assert failed_detail.error is not None
    assert "404" in failed_detail.error.message

    # Newest first; the filter goes out as repeated asset_ids keys, and iter walks pages of one.
    page = client.list_assets(asset_ids=[from_file.id, from_url.id], page_limit=1)
    assert [a.id for a in page.data] == [from_url.id]
    assert page.page_info is not None
    assert (page.page_info.total_results, page.page_info.total_page) == (2, 2)
    listed = list(client.iter_assets(asset_ids=[from_file.id, from_url.id], page_limit=1))
    assert [a.id for a in listed] == [from_url.id, from_file.id]
    assert [a.id for a in client.iter_assets(filename="FETCHED")] == [from_url.id]
    assert list(client.iter_assets(asset_types=["image"])) == []

    client.delete_asset(from_file.id)
    with pytest.raises(NotFoundError) as missing:
        client.retrieve_asset(from_file.id)
    assert missing.value.code == "resource_not_exist"
    with pytest.raises(NotFoundError):
        client.delete_asset(from_file.id)
    # The client does not check URL schemes: the API's 400 comes back typed.
    with pytest.raises(BadRequestError) as bad:
        client.create_asset_from_url("file:///etc/passwd")
    assert bad.value.code == "parameter_invalid"


CHUNK = 128


def test_multipart_upload_flow(videos: dict[str, Path]) -> None:
    """Tiny chunks: the video needs more than the 50 URLs the session starts with, so upload_chunks asks."""
    data = videos["short"].read_bytes()
    consumed: list[int] = []

    def stream() -> Iterator[bytes]:
        with videos["short"].open("rb") as handle:
            while chunk := handle.read(CHUNK):
                consumed.append(len(chunk))
                yield chunk

    config = support.emulator_config().model_copy(update={"multipart_chunk_bytes": CHUNK})
    with EmulatorServer(config) as server:
        emu = Emu(server)
        try:
            with _client(emu) as client:
                upload = client.create_multipart_upload(filename="multi.mp4", total_size=len(data))
                assert upload.chunk_size == CHUNK
                assert upload.total_chunks == -(-len(data) // CHUNK)
                assert upload.total_chunks > 50
                assert [u.chunk_index for u in upload.upload_urls] == list(range(1, 51))

                more = client.request_presigned_urls(upload.upload_id, start=2, count=3)
                assert [u.chunk_index for u in more.upload_urls] == [2, 3, 4]

                proofs = client.upload_chunks(upload, stream())
                assert len(consumed) == upload.total_chunks
                assert [p.chunk_index for p in proofs] == list(range(1, upload.total_chunks + 1))
                assert sum(p.chunk_size for p in proofs) == len(data)

                before = client.get_multipart_upload_status(upload.upload_id, page_limit=3)
                assert before.status == "active"
                assert [c.status for c in before.uploaded_chunks] == ["pending"] * 3

                first = client.report_completed_chunks(upload.upload_id, proofs[:10])
                assert (first.processed_chunks, first.total_completed, first.url) == (10, 10, None)
                middle = client.get_multipart_upload_status(upload.upload_id, page=4, page_limit=3)
                assert [c.index for c in middle.uploaded_chunks] == [10, 11, 12]
                assert [c.status for c in middle.uploaded_chunks] == ["completed", "pending", "pending"]
                assert middle.chunks_completed == 10

                rest = client.report_completed_chunks(upload.upload_id, proofs)  # the first ten again: duplicates
                assert (rest.processed_chunks, rest.duplicate_chunks) == (upload.total_chunks - 10, 10)
                assert rest.url is not None
                done = client.get_multipart_upload_status(upload.upload_id)
                assert (done.status, done.chunks_pending, done.uploaded_size) == ("completed", 0, len(data))

                assert client.retrieve_asset(upload.asset_id).status == "processing"
                emu.advance(5)
                asset = client.retrieve_asset(upload.asset_id)
                assert (asset.status, asset.method, asset.size) == ("ready", "multipart", len(data))
                assert asset.duration == pytest.approx(20, abs=0.5)
                assert asset.technical_metadata is not None
                assert asset.technical_metadata.video_width == 360
                assert emu.control.get(rest.url).content == data

                with pytest.raises(BadRequestError):  # the session is completed: no more URLs
                    client.request_presigned_urls(upload.upload_id, start=1, count=1)
                with pytest.raises(NotFoundError):
                    client.get_multipart_upload_status("0" * 24)
        finally:
            emu.close()


# --- batches and tasks ------------------------------------------------------------------------------------------


def test_batch_methods_pagers_results_and_tasks(client: TwelveLabsClient, emu: Emu, videos: dict[str, Path]) -> None:
    asset_id = _ready_asset(client, emu, videos["short"])
    created = [client.create_batch(_general(asset_id, 3, prefix=f"b{n}")) for n in range(3)]
    first = created[0]
    assert (first.status, first.total_items) == ("pending", 3)
    assert len(first.batch_id) == 24
    assert [i.custom_id for i in first.items] == ["b0-0", "b0-1", "b0-2"]
    assert first.expires_at > first.created_at
    definitions = [{"id": "scene", "description": "A scene."}, {"id": "title", "description": "A title card."}]
    tbm = client.create_batch(
        parse_batch_request(
            {
                "analysis_mode": "time_based_metadata",
                "requests": [{"video": {"asset_id": asset_id}, "custom_id": "tbm-0"}],
                "defaults": {"response_format": {"type": "segment_definitions", "segment_definitions": definitions}},
            }
        )
    )

    pending = client.retrieve_batch(first.batch_id)
    assert (pending.status, pending.queued_items, pending.analysis_mode, pending.model_name) == (
        "pending",
        3,
        "general",
        "pegasus1.5",
    )

    # 20 s items at 10 content-seconds per second, 2 at a time: after 2.5 s, two ready and one processing.
    emu.advance(2.5)
    running_batch = client.retrieve_batch(first.batch_id)
    assert running_batch.status == "processing"
    assert (running_batch.ready_items, running_batch.processing_items, running_batch.queued_items) == (2, 1, 0)
    assert running_batch.completed_at is None
    with client.stream_batch_results(first.batch_id) as lines:
        partial = list(lines)
    assert [line.status for line in partial] == ["ready", "ready", "processing"]
    assert [line.custom_id for line in partial] == ["b0-0", "b0-1", "b0-2"]
    assert partial[0].data is not None
    assert partial[2].data is None
    assert partial[2].error is None

    # Filters and pages: newest first, repeated status keys, a page past the end is empty.
    assert [b.batch_id for b in client.iter_batches(analysis_mode=["time_based_metadata"])] == [tbm.batch_id]
    processing = client.list_batches(status=["processing"], analysis_mode=["general"], page_limit=2)
    assert [b.batch_id for b in processing.data] == [created[2].batch_id, created[1].batch_id]
    assert processing.page_info is not None
    assert (processing.page_info.total_results, processing.page_info.total_page) == (3, 2)
    second_page = client.list_batches(status=["processing"], analysis_mode=["general"], page=2, page_limit=2)
    assert [b.batch_id for b in second_page.data] == [first.batch_id]
    assert client.list_batches(page=9, page_limit=2).data == []
    walked = [b.batch_id for b in client.iter_batches(status=["processing", "completed"], page_limit=1)]
    assert walked == [tbm.batch_id, *[c.batch_id for c in reversed(created)]]
    assert list(client.iter_batches(status=["canceled"])) == []

    emu.advance(60)
    done = client.retrieve_batch(first.batch_id)
    assert (done.status, done.ready_items, done.failed_items) == ("completed", 3, 0)
    assert done.completed_at is not None
    assert done.canceled_at is None
    assert [b.batch_id for b in client.iter_batches(status=["completed"], analysis_mode=["general"])] == [
        c.batch_id for c in reversed(created)
    ]
    with client.stream_batch_results(first.batch_id) as lines:
        results = list(lines)
    assert [line.status for line in results] == ["ready"] * 3
    for line in results:
        assert line.data is not None
        assert line.data.data
        assert line.data.finish_reason in ("stop", "length")
        assert line.data.usage.output_tokens > 0
    with client.stream_batch_results(tbm.batch_id) as lines:
        (segment_line,) = list(lines)
    assert segment_line.data is not None
    segments = json.loads(segment_line.data.data)
    assert set(segments) == {"scene", "title"}
    for entries in segments.values():
        for entry in entries:
            assert {"start_time", "end_time", "metadata"} <= set(entry)
            assert 0 <= entry["start_time"] <= entry["end_time"] <= 20.5

    task = client.retrieve_task(results[1].task_id)
    assert (task.batch_id, task.custom_id, task.status) == (first.batch_id, "b0-1", "ready")
    assert task.result is not None
    assert results[1].data is not None
    assert task.result.data == results[1].data.data
    assert task.completed_at is not None
    assert task.video_source is not None
    assert task.video_source.asset_id == asset_id
    assert task.request_params is not None
    assert task.request_params["prompt"] == "Summarise the video."
    ready_tasks = client.list_tasks(asset_id=asset_id, status="ready", page_limit=4)
    assert len(ready_tasks.data) == 4
    assert ready_tasks.page_info is not None
    assert ready_tasks.page_info.total_results == 10
    every_task = list(client.iter_tasks(asset_id=asset_id, page_limit=3))
    assert len(every_task) == 10
    assert len({t.task_id for t in every_task}) == 10
    assert [t.custom_id for t in client.iter_tasks(analysis_mode="time_based_metadata")] == ["tbm-0"]

    client.delete_batch(first.batch_id)
    with pytest.raises(NotFoundError):
        client.retrieve_batch(first.batch_id)
    with pytest.raises(NotFoundError):
        client.retrieve_task(results[1].task_id)
    with pytest.raises(NotFoundError), client.stream_batch_results(first.batch_id) as lines:
        list(lines)
    assert len(list(client.iter_tasks(asset_id=asset_id))) == 7


def test_cancel_and_delete_rules(client: TwelveLabsClient, emu: Emu, videos: dict[str, Path]) -> None:
    asset_id = _ready_asset(client, emu, videos["short"])
    to_cancel = client.create_batch(_general(asset_id, 3, prefix="c"))
    runs = client.create_batch(_general(asset_id, 1, prefix="r"))
    emu.advance(1)
    with pytest.raises(ConflictError) as running_delete:
        client.delete_batch(runs.batch_id)
    assert running_delete.value.code == "parameter_invalid"  # no documented code for a state conflict

    canceling = client.cancel_batch(to_cancel.batch_id)
    assert canceling.status == "canceling"
    assert (canceling.processing_items, canceling.canceled_items) == (2, 1)
    with pytest.raises(ConflictError):
        client.cancel_batch(to_cancel.batch_id)
    with pytest.raises(ConflictError):
        client.delete_batch(to_cancel.batch_id)
    assert client.list_batches(status=["canceling"]).data[0].batch_id == to_cancel.batch_id

    emu.advance(5)
    canceled = client.retrieve_batch(to_cancel.batch_id)
    assert (canceled.status, canceled.ready_items, canceled.canceled_items) == ("canceled", 2, 1)
    assert canceled.canceled_at is not None
    assert canceled.completed_at is None
    with client.stream_batch_results(to_cancel.batch_id) as lines:
        last = list(lines)[-1]
    assert last.status == "canceled"
    with pytest.raises(ConflictError):
        client.cancel_batch(to_cancel.batch_id)
    assert client.retrieve_batch(runs.batch_id).status == "completed"
    with pytest.raises(ConflictError):
        client.cancel_batch(runs.batch_id)
    client.delete_batch(to_cancel.batch_id)
    client.delete_batch(runs.batch_id)
    assert list(client.iter_batches()) == []


# --- typed errors -----------------------------------------------------------------------------------------------


def test_typed_errors_the_client_cannot_catch_locally(
    client: TwelveLabsClient, clock: ManualClock, emu: Emu, videos: dict[str, Path]
) -> None:
    asset_id = _ready_asset(client, emu, videos["short"])
    # Locally valid, but only the API knows the video: the window ends after the 20 s video.
    with pytest.raises(BadRequestError) as beyond:
        client.create_batch(_general(asset_id, start_time=0, end_time=30))
    assert beyond.value.code == "parameter_invalid"
    assert beyond.value.message.startswith("requests.0.end_time")
    long_id = _ready_asset(client, emu, videos["over_four_hours"])
    with pytest.raises(BadRequestError):
        client.create_batch(_general(long_id))
    with pytest.raises(NotFoundError) as missing:
        client.create_batch(_general("f" * 24))
    assert missing.value.code == "resource_not_exist"

    processing = client.create_asset_from_file(videos["short"].read_bytes(), filename="late.mp4")
    with pytest.raises(ConflictError) as not_ready:
        client.create_batch(_general(processing.id))
    assert not_ready.value.code == "parameter_invalid"
    assert processing.id in not_ready.value.message

    for n in range(5):
        client.create_batch(_general(asset_id, prefix=f"a{n}"))
    before = clock.monotonic()
    with pytest.raises(RateLimitError) as limited:
        client.create_batch(_general(asset_id, prefix="sixth"))
    assert limited.value.status_code == 429
    assert limited.value.code == "too_many_requests"
    assert "at most 5" in limited.value.message
    # A 429 proves nothing was created, so the client retried it (on its clock) before giving up.
    assert clock.monotonic() > before
    assert len(client.list_batches().data) == 5

    with pytest.raises(NotFoundError), client.stream_batch_results("0" * 24) as lines:
        list(lines)


def test_wrong_key_is_an_authentication_error(emu: Emu) -> None:
    with TwelveLabsClient("wrong", base_url=emu.server.api_url, clock=ManualClock()) as wrong:
        with pytest.raises(AuthenticationError) as error:
            wrong.retrieve_batch("0" * 24)
        assert error.value.code == "api_key_invalid"
        with pytest.raises(AuthenticationError):
            list(wrong.iter_assets())


# --- fault injection --------------------------------------------------------------------------------------------


def test_429_with_retry_after_on_get_is_waited_out(
    client: TwelveLabsClient, clock: ManualClock, emu: Emu, videos: dict[str, Path]
) -> None:
    asset_id = _ready_asset(client, emu, videos["short"])
    rule = {"endpoint": "GET /assets/{id}", "count": 2, "status": 429, "code": "too_many_requests", "retry_after": 3}
    assert emu.faults([rule]).status_code == 200
    assert client.retrieve_asset(asset_id).status == "ready"
    assert _fired(emu) == [2]
    assert clock.monotonic() >= 6  # never less than Retry-After, twice


def test_503_on_get_is_retried_until_attempts_run_out(
    client: TwelveLabsClient, clock: ManualClock, emu: Emu, videos: dict[str, Path]
) -> None:
    asset_id = _ready_asset(client, emu, videos["short"])
    emu.faults([{"endpoint": "GET /analyze/batches", "count": 2, "status": 503}])
    assert client.list_batches().data == []
    assert _fired(emu) == [2]
    assert clock.monotonic() > 0

    emu.faults([{"endpoint": "GET /assets/{id}", "status": 503, "code": "unavailable"}])
    with pytest.raises(ServerError) as error:
        client.retrieve_asset(asset_id)
    assert (error.value.status_code, error.value.code) == (503, "unavailable")
    assert _fired(emu) == [5]  # RetryPolicy's default max_attempts


def test_lost_create_response_is_outcome_unknown_and_the_batch_exists(
    client: TwelveLabsClient, emu: Emu, videos: dict[str, Path]
) -> None:
    asset_id = _ready_asset(client, emu, videos["short"])
    emu.faults([{"endpoint": "POST /analyze/batches", "count": 1, "lose_response": True}])
    with pytest.raises(OutcomeUnknownError):
        client.create_batch(_general(asset_id, 2, prefix="lost"))
    assert _fired(emu) == [1]  # not repeated
    (batch,) = client.list_batches().data
    assert _custom_ids(client, batch.batch_id) == ["lost-0", "lost-1"]
    assert sorted(t.custom_id or "" for t in client.iter_tasks()) == ["lost-0", "lost-1"]


def test_503_on_create_is_outcome_unknown_and_not_repeated(
    client: TwelveLabsClient, emu: Emu, videos: dict[str, Path]
) -> None:
    asset_id = _ready_asset(client, emu, videos["short"])
    emu.faults([{"endpoint": "POST /analyze/batches", "count": 1, "status": 503}])
    with pytest.raises(OutcomeUnknownError) as unknown:
        client.create_batch(_general(asset_id))
    assert isinstance(unknown.value.__cause__, ServerError)
    assert _fired(emu) == [1]
    # The emulator's status faults prevent the effect; only reconciliation can tell the client that.
    assert client.list_batches().data == []
    assert client.create_batch(_general(asset_id)).total_items == 1


def test_429_on_create_is_retried_and_creates_one_batch(
    client: TwelveLabsClient, clock: ManualClock, emu: Emu, videos: dict[str, Path]
) -> None:
    asset_id = _ready_asset(client, emu, videos["short"])
    emu.faults([{"endpoint": "POST /analyze/batches", "count": 1, "status": 429, "retry_after": 2}])
    created = client.create_batch(_general(asset_id, prefix="once"))
    assert _fired(emu) == [1]
    assert clock.monotonic() >= 2
    assert [b.batch_id for b in client.list_batches().data] == [created.batch_id]

    # A Retry-After beyond the budget: no waiting, DeadlineExceededError, and provably nothing created.
    emu.faults([{"endpoint": "POST /analyze/batches", "count": 1, "status": 429, "retry_after": 60}])
    before = clock.monotonic()
    with pytest.raises(DeadlineExceededError) as deadline:
        client.create_batch(_general(asset_id, prefix="late"), max_wait_seconds=30)
    assert isinstance(deadline.value.last_error, RateLimitError)
    assert clock.monotonic() == before
    assert [b.batch_id for b in client.list_batches().data] == [created.batch_id]


def test_latency_beyond_the_budget(emu: Emu, videos: dict[str, Path]) -> None:
    """Real time here: the latency is a real sleep in the emulator and the client's timeout must see it."""
    with _client(emu, clock=SystemClock()) as client:
        asset_id = _ready_asset(client, emu, videos["short"])
        emu.faults([{"endpoint": "GET /assets/{id}", "count": 1, "latency_seconds": 0.4}])
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            client.retrieve_asset(asset_id, max_wait_seconds=0.15)
        assert time.monotonic() - started < 0.35
        time.sleep(0.3)  # let the delayed handler finish before the next rule replaces this one

        emu.faults([{"endpoint": "POST /analyze/batches", "count": 1, "latency_seconds": 0.4}])
        with pytest.raises(OutcomeUnknownError):
            client.create_batch(_general(asset_id, prefix="slow"), max_wait_seconds=0.15)
        # The request was sent; the emulator acts once its delay is over: the outcome really was unknown.
        found: list[str] = []
        for _ in range(40):
            found = [b.batch_id for b in client.list_batches().data]
            if found:
                break
            time.sleep(0.05)
        assert len(found) == 1
        assert _custom_ids(client, found[0]) == ["slow-0"]


# --- request rules: the client's validation and the emulator agree ----------------------------------------------

ASSET = "{short}"
LONG_ASSET = "{long}"
SEGMENTS = [{"id": "s", "description": "A scene."}]


def _item(asset: str = ASSET, **fields: Any) -> dict[str, Any]:
    return {"video": {"type": "asset_id", "asset_id": asset}, **fields}


def _g(*items: dict[str, Any], **body: Any) -> dict[str, Any]:
    return {
        "model_name": "pegasus1.5",
        "analysis_mode": "general",
        "requests": list(items) or [_item()],
        "defaults": {"prompt": {"input_text": "Describe."}},
        **body,
    }


def _t(
    definition: dict[str, Any] | None = None, *, definitions: list[dict[str, Any]] | None = None, **item_fields: Any
) -> dict[str, Any]:
    chosen = definitions if definitions is not None else [{"id": "s", "description": "A scene.", **(definition or {})}]
    response_format = {"type": "segment_definitions", "segment_definitions": chosen}
    return {
        "model_name": "pegasus1.5",
        "analysis_mode": "time_based_metadata",
        "requests": [_item(response_format=response_format, **item_fields)],
    }


def _field(**spec: Any) -> dict[str, Any]:
    return _t({"fields": [{"name": "f", "type": "string", "description": "d", **spec}]})


INVALID: dict[str, dict[str, Any]] = {
    "model_name": _g(model_name="pegasus1.2"),
    "analysis_mode": _g(analysis_mode="other"),
    "unknown_top_level_field": _g(extra=1),
    "unknown_item_field": _g(_item(surprise=True)),
    "no_requests": _g(requests=[]),
    "1001_requests": _g(requests=[_item()] * 1001),
    "video_type": _g({"video": {"type": "url", "asset_id": ASSET}}),
    "video_without_asset_id": _g({"video": {"type": "asset_id"}}),
    "custom_id_empty": _g(_item(custom_id="")),
    "custom_id_space": _g(_item(custom_id="bad id")),
    "custom_id_65_chars": _g(_item(custom_id="x" * 65)),
    "custom_id_trailing_newline": _g(_item(custom_id="abc\n")),
    "custom_id_duplicate": _g(_item(custom_id="a"), _item(custom_id="a")),
    "general_without_prompt": _g(defaults=None),
    "prompt_empty": _g(_item(prompt={"input_text": ""})),
    "prompt_in_time_based_metadata": {**_t(), "defaults": {"prompt": {"input_text": "x"}}},
    "media_source_not_image": _g(
        _item(prompt={"input_text": "x", "media_sources": [{"name": "a", "media_type": "video"}]})
    ),
    "five_media_sources": _g(
        _item(prompt={"input_text": "x", "media_sources": [{"name": "a", "media_type": "image"}] * 5})
    ),
    "temperature_below_0": _g(_item(temperature=-0.01)),
    "temperature_above_1": _g(_item(temperature=1.01)),
    "defaults_temperature": _g(defaults={"prompt": {"input_text": "x"}, "temperature": 2}),
    "max_tokens_general_511": _g(_item(max_tokens=511)),
    "max_tokens_general_98305": _g(_item(max_tokens=98_305)),
    "max_tokens_tbm_2047": _t(max_tokens=2_047),
    "max_tokens_fractional": _g(_item(max_tokens=5000.5)),
    "start_time_negative": _g(_item(start_time=-1)),
    "end_before_start": _g(_item(start_time=5, end_time=4)),
    "window_under_1s": _g(_item(start_time=0, end_time=0.5)),
    "window_over_2h": _g(_item(LONG_ASSET, start_time=0, end_time=7_200.5)),
    "json_schema_in_tbm": {
        **_t(),
        "requests": [_item(response_format={"type": "json_schema", "json_schema": SCHEMA})],
    },
    "segment_definitions_in_general": _g(
        _item(response_format={"type": "segment_definitions", "segment_definitions": SEGMENTS})
    ),
    "json_schema_max_length": _g(
        _item(response_format={"type": "json_schema", "json_schema": {"type": "string", "maxLength": 3}})
    ),
    "json_schema_nested_unique_items": _g(
        _item(
            response_format={
                "type": "json_schema",
                "json_schema": {"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}},
            }
        )
    ),
    "json_schema_additional_properties": _g(
        _item(response_format={"type": "json_schema", "json_schema": {"additionalProperties": False}})
    ),
    "tbm_without_response_format": {**_t(), "requests": [_item()]},
    "no_segment_definitions": _t(definitions=[]),
    "21_segment_definitions": _t(definitions=[{"id": f"s{i}", "description": "d"} for i in range(21)]),
    "duplicate_definition_id": _t(definitions=[{"id": "s", "description": "d"}] * 2),
    "segment_time_format": {
        **_t(),
        "defaults": {
            "response_format": {
                "type": "segment_definitions",
                "segment_definitions": SEGMENTS,
                "segment_time_format": "ms",
            }
        },
    },
    "field_type_time_array": _field(type="time_array"),
    "field_type_unknown": _field(type="date"),
    "timestamp_without_format": _field(type="timestamp"),
    "format_on_string": _field(format="seconds"),
    "reserved_field_name": _t({"fields": [{"name": "end_time", "type": "number", "description": "d"}]}),
    "enum_on_timestamp": _field(type="timestamp", format="seconds", enum=["a"]),
    "enum_101_values": _field(enum=[str(i) for i in range(101)]),
    "array_without_items": _field(type="array"),
    "array_of_objects": _field(type="array", items={"type": "object"}),
    "items_on_string": _field(items={"type": "string"}),
    "min_segment_duration_under_2": _t(min_segment_duration=1.5),
    "max_below_min_segment_duration": _t(min_segment_duration=5, max_segment_duration=3),
    "time_range_under_2s": _t({"time_ranges": [{"start_time": 0, "end_time": 1.5}]}),
    "time_range_negative": _t({"time_ranges": [{"start_time": -1, "end_time": 5}]}),
    "time_ranges_overlap": _t({"time_ranges": [{"start_time": 0, "end_time": 5}, {"start_time": 4, "end_time": 9}]}),
    "time_ranges_with_start_time": _t({"time_ranges": [{"start_time": 0, "end_time": 5}]}, start_time=0),
    "time_ranges_with_segment_duration": _t(
        {"time_ranges": [{"start_time": 0, "end_time": 5}]}, min_segment_duration=2
    ),
}

VALID: dict[str, dict[str, Any]] = {
    "1000_requests": _g(requests=[_item(custom_id=f"r{i}") for i in range(1_000)]),
    "window_exactly_2h": _g(_item(LONG_ASSET, start_time=600, end_time=7_800)),
    "window_exactly_1s": _g(_item(start_time=3, end_time=4)),
    "temperature_0_and_1": _g(_item(temperature=0), _item(temperature=1)),
    "max_tokens_general_bounds": _g(_item(max_tokens=512), _item(max_tokens=98_304)),
    "max_tokens_tbm_bounds": {
        **_t(max_tokens=2_048),
        "requests": [*_t(max_tokens=2_048)["requests"], *_t(max_tokens=98_304)["requests"]],
    },
    "20_segment_definitions": _t(definitions=[{"id": f"s{i}", "description": "d"} for i in range(20)]),
    "custom_id_64_chars_and_marks": _g(_item(custom_id="A-z_9" + "x" * 59)),
    "item_prompt_replaces_defaults": _g(_item(prompt={"input_text": "Mine."}), defaults={"temperature": 0.5}),
    "json_schema_property_named_like_a_keyword": _g(
        _item(
            response_format={
                "type": "json_schema",
                "json_schema": {"type": "object", "properties": {"maxLength": {"type": "string"}}},
            }
        )
    ),
    "every_field_type": _t(
        {
            "fields": [
                {"name": "s", "type": "string", "description": "d", "enum": ["a", "b"]},
                {"name": "b", "type": "boolean", "description": "d"},
                {"name": "n", "type": "number", "description": "d"},
                {"name": "i", "type": "integer", "description": "d"},
                {"name": "a", "type": "array", "description": "d", "items": {"type": "string"}},
                {"name": "t", "type": "timestamp", "description": "d", "format": "hh:mm:ss.fff"},
            ]
        }
    ),
    "touching_time_ranges": _t({"time_ranges": [{"start_time": 0, "end_time": 5}, {"start_time": 5, "end_time": 10}]}),
    "segment_durations_at_minimum": _t(min_segment_duration=2, max_segment_duration=2),
    "four_image_media_sources": _g(
        _item(
            prompt={
                "input_text": "x",
                "media_sources": [{"name": f"m{i}", "media_type": "image", "url": "https://e/x.png"} for i in range(4)],
            }
        )
    ),
}


UNSUPPORTED_KEYWORD_CASES = frozenset(
    {"json_schema_max_length", "json_schema_nested_unique_items", "json_schema_additional_properties"}
)


@pytest.fixture(scope="module")
def rules_emu(videos: dict[str, Path]) -> Iterator[tuple[Emu, dict[str, str]]]:
    """One emulator for both tables: every accepted batch is canceled at once, so the 5-batch limit never bites."""
    with running() as server:
        emu = Emu(server)
        try:
            assets = {"short": emu.upload(videos["short"]), "long": emu.upload(videos["three_hours"])}
            yield emu, assets
        finally:
            emu.close()


def _fill(value: Any, assets: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**assets) if value in (ASSET, LONG_ASSET) else value
    if isinstance(value, list):
        return [_fill(element, assets) for element in value]
    if isinstance(value, dict):
        return {key: _fill(element, assets) for key, element in value.items() if element is not None}
    return value


@pytest.mark.parametrize("name", sorted(INVALID))
def test_client_and_emulator_reject_the_same_requests(name: str, rules_emu: tuple[Emu, dict[str, str]]) -> None:
    emu, assets = rules_emu
    body = _fill(INVALID[name], assets)
    response = emu.api.post("/analyze/batches", json=body)
    # Unsupported JSON-schema keywords answer 422, every other rule 400.
    assert response.status_code == (422 if name in UNSUPPORTED_KEYWORD_CASES else 400), response.text
    assert response.json()["error"]["code"] in ("parameter_invalid", "parameter_not_provided", "parameter_unknown")
    with pytest.raises(RequestValidationError):
        parse_batch_request(body)


@pytest.mark.parametrize("name", sorted(VALID))
def test_client_and_emulator_accept_the_same_edge_cases(name: str, rules_emu: tuple[Emu, dict[str, str]]) -> None:
    emu, assets = rules_emu
    body = _fill(VALID[name], assets)
    raw = emu.api.post("/analyze/batches", json=body)
    assert raw.status_code == 201, raw.text
    assert emu.api.post(f"/analyze/batches/{raw.json()['batch_id']}/cancel").status_code == 202
    request = parse_batch_request(body)
    with _client(emu) as client:
        created = client.create_batch(request)  # what the client serialises is accepted as well
        assert created.total_items == len(body["requests"])
        assert [i.custom_id for i in created.items] == [r.get("custom_id") for r in body["requests"]]
        assert client.cancel_batch(created.batch_id).status == "canceling"
