"""The project's TwelveLabs API client: httpx + pydantic, light to import, deadline-aware, safe on retries.

Time budget: every call gets a deadline on ``clock.monotonic()``: the smaller of the call's ``max_wait_seconds``
(else the client's ``default_max_wait_seconds``) and ``time_remaining()`` when given (e.g. the Lambda's remaining
time minus a margin). Each attempt's timeout is clamped to what is left, backoff sleeps go through ``clock.sleep``,
and when the budget runs out the call raises DeadlineExceededError carrying the last error.

Retries follow RetryPolicy. Creates (batch, asset, upload session) are never repeated after they may have
reached the API: a timeout, a dropped connection or a 5xx raises OutcomeUnknownError. For ``create_batch`` this
means DeadlineExceededError, TransportError, RateLimitError and other 4xx all guarantee no batch was created.
A 429 waits at least what ``Retry-After`` or a spent ``X-Ratelimit-Reset`` asks.

Key: a string, or an ``ApiKeyProvider`` read on every request. A 401/403 refreshes it once and, if the key changed,
repeats that call once (an auth refusal created nothing, so this holds for creates too). The key is never logged.

``on_response(method, path_template, status)`` is called for every HTTP answer, retries included (e.g. ``"GET",
"analyze/batches/{batch_id}", 503``), so the runtime can count errors by status; an observer that raises is logged
and ignored.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Final, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from videobatch.clock import Clock, SystemClock
from videobatch.errors import (
    AuthenticationError,
    ConflictError,
    DeadlineExceededError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RequestValidationError,
    ServerError,
    TwelveLabsError,
)
from videobatch.twelvelabs import limits
from videobatch.twelvelabs.keys import ApiKeyProvider, StaticApiKey
from videobatch.twelvelabs.models import (
    Asset,
    AssetType,
    Batch,
    BatchCreated,
    BatchCreateRequest,
    BatchStatus,
    ChunkReport,
    CompletedChunk,
    MultipartUpload,
    MultipartUploadStatus,
    Page,
    PresignedUrls,
    Task,
    TaskStatus,
    UploadType,
)
from videobatch.twelvelabs.results import ResultLines
from videobatch.twelvelabs.retry import RetryPolicy, StopReason
from videobatch.twelvelabs.validation import validate_batch_request
from videobatch.twelvelabs.wire import status_error, transport_error

DEFAULT_BASE_URL: Final = "https://api.twelvelabs.io/v1.3"
DEFAULT_MAX_WAIT_SECONDS: Final = 30.0
DEFAULT_ATTEMPT_TIMEOUT_SECONDS: Final = 10.0
_CANCELED_OR_CANCELING: Final = frozenset({"canceling", "canceled"})

ModelT = TypeVar("ModelT", bound=BaseModel)
ItemT = TypeVar("ItemT", bound=BaseModel)
logger = logging.getLogger(__name__)

Params = Mapping[str, str | int | bool | Sequence[str] | None]
RequestBuilder = Callable[[httpx.Timeout], httpx.Request]
ResponseObserver = Callable[[str, str, int], None]
_API_KEY_HEADER: Final = "x-api-key"
PRESIGNED_URL_TEMPLATE: Final = "{presigned_upload_url}"


@dataclass(frozen=True)
class _Call:
    """One call's requests: how to build them, and the path template observers see."""

    method: str
    template: str
    build: RequestBuilder


@dataclass
class _Trace:
    """What happened across one call's attempts; lets cancel/delete recognise their own earlier success."""

    attempts: int = 0
    retried_after_ambiguity: bool = False
    key_refreshed: bool = False


class TwelveLabsClient:
    def __init__(
        self,
        api_key: str | ApiKeyProvider,
        *,
        base_url: str = DEFAULT_BASE_URL,
        clock: Clock | None = None,
        time_remaining: Callable[[], float] | None = None,
        default_max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
        attempt_timeout_seconds: float = DEFAULT_ATTEMPT_TIMEOUT_SECONDS,
        retry_policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        on_response: ResponseObserver | None = None,
    ) -> None:
        if isinstance(api_key, str):
            if not api_key:
                raise RequestValidationError("api_key", "must not be empty")
            api_key = StaticApiKey(api_key)
        self._keys: ApiKeyProvider = api_key
        self._clock: Clock = clock or SystemClock()
        self._time_remaining = time_remaining
        self._default_max_wait_seconds = default_max_wait_seconds
        self._attempt_timeout_seconds = attempt_timeout_seconds
        self._policy = retry_policy or RetryPolicy()
        self._on_response = on_response
        self._base_url = base_url
        self._transport = transport
        self._client: httpx.Client | None = None

    @property
    def _http(self) -> httpx.Client:
        # Made on first use, as boto3 makes its connection pool: the TLS context (loading the CA bundle, ~30 ms)
        # is not paid by a cold start whose invocation never calls TwelveLabs (a flusher with no free slot).
        # No default headers: the key is read per request, so a rotated key is picked up without a new client.
        if self._client is None:
            self._client = httpx.Client(base_url=self._base_url, transport=self._transport)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> TwelveLabsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- assets -----------------------------------------------------------------------------------------------

    def create_asset_from_url(
        self,
        url: str,
        *,
        filename: str | None = None,
        user_metadata: Mapping[str, Any] | None = None,
        enable_hls: bool | None = None,
        enable_thumbnail: bool | None = None,
        max_wait_seconds: float | None = None,
    ) -> Asset:
        """``POST /assets`` with ``method=url``: the platform fetches the video (up to 4 GB) itself."""
        fields = _form_fields(
            method="url",
            url=url,
            filename=filename,
            user_metadata=user_metadata,
            enable_hls=enable_hls,
            enable_thumbnail=enable_thumbnail,
        )
        return self._create_asset(fields, None, max_wait_seconds)

    def create_asset_from_file(
        self,
        file: bytes | IO[bytes],
        *,
        filename: str,
        content_type: str = "application/octet-stream",
        user_metadata: Mapping[str, Any] | None = None,
        enable_hls: bool | None = None,
        enable_thumbnail: bool | None = None,
        max_wait_seconds: float | None = None,
    ) -> Asset:
        """``POST /assets`` with ``method=direct``: the file travels in the multipart body (up to 200 MB)."""
        if isinstance(file, bytes) and len(file) > limits.MAX_DIRECT_UPLOAD_BYTES:
            raise RequestValidationError(
                "file", f"direct uploads are limited to {limits.MAX_DIRECT_UPLOAD_BYTES} bytes"
            )
        fields = _form_fields(
            method="direct",
            filename=filename,
            user_metadata=user_metadata,
            enable_hls=enable_hls,
            enable_thumbnail=enable_thumbnail,
        )
        return self._create_asset(fields, (filename, file, content_type), max_wait_seconds)

    def retrieve_asset(self, asset_id: str, *, max_wait_seconds: float | None = None) -> Asset:
        return self._json_call(
            Asset, "GET", "assets/{asset_id}", segments={"asset_id": asset_id}, max_wait_seconds=max_wait_seconds
        )

    def list_assets(
        self,
        *,
        page: int = 1,
        page_limit: int | None = None,
        asset_ids: Sequence[str] | None = None,
        asset_types: Sequence[AssetType] | None = None,
        filename: str | None = None,
        max_wait_seconds: float | None = None,
    ) -> Page[Asset]:
        """One page of ``GET /assets``; ``asset_ids`` and ``asset_types`` go out as repeated query keys."""
        params: Params = {
            "page": page,
            "page_limit": _page_limit(page_limit),
            "asset_ids": asset_ids,
            "asset_types": asset_types,
            "filename": filename,
        }
        return self._json_call(Page[Asset], "GET", "assets", params=params, max_wait_seconds=max_wait_seconds)

    def iter_assets(
        self,
        *,
        page_limit: int | None = None,
        asset_ids: Sequence[str] | None = None,
        asset_types: Sequence[AssetType] | None = None,
        filename: str | None = None,
    ) -> Iterator[Asset]:
        """Every matching asset, page after page, until a page comes back empty."""
        return _iter_pages(
            lambda page: self.list_assets(
                page=page, page_limit=page_limit, asset_ids=asset_ids, asset_types=asset_types, filename=filename
            )
        )

    def delete_asset(self, asset_id: str, *, force: bool | None = None, max_wait_seconds: float | None = None) -> None:
        self._delete("assets/{asset_id}", {"asset_id": asset_id}, {"force": force}, max_wait_seconds)

    # --- multipart upload -------------------------------------------------------------------------------------

    def create_multipart_upload(
        self,
        *,
        filename: str,
        total_size: int,
        type: UploadType = "video",
        enable_hls: bool | None = None,
        enable_thumbnail: bool | None = None,
        user_metadata: Mapping[str, Any] | None = None,
        max_wait_seconds: float | None = None,
    ) -> MultipartUpload:
        """``POST /assets/multipart-uploads``: a session with an asset id, chunk size and the first presigned URLs."""
        if not 1 <= total_size <= limits.MAX_MULTIPART_UPLOAD_BYTES:
            raise RequestValidationError("total_size", f"must be 1 to {limits.MAX_MULTIPART_UPLOAD_BYTES} bytes")
        body = _without_none(
            {
                "filename": filename,
                "type": type,
                "total_size": total_size,
                "enable_hls": enable_hls,
                "enable_thumbnail": enable_thumbnail,
                "user_metadata": user_metadata,
            }
        )
        return self._json_call(
            MultipartUpload,
            "POST",
            "assets/multipart-uploads",
            json_body=body,
            idempotent=False,
            max_wait_seconds=max_wait_seconds,
        )

    def report_completed_chunks(
        self, upload_id: str, completed_chunks: Sequence[CompletedChunk], *, max_wait_seconds: float | None = None
    ) -> ChunkReport:
        """``POST /assets/multipart-uploads/{id}``; repeating a report is harmless (the API counts duplicates)."""
        if not completed_chunks:
            raise RequestValidationError("completed_chunks", "must hold at least one chunk")
        body = {"completed_chunks": [chunk.model_dump(mode="json") for chunk in completed_chunks]}
        return self._json_call(
            ChunkReport,
            "POST",
            "assets/multipart-uploads/{upload_id}",
            segments={"upload_id": upload_id},
            json_body=body,
            max_wait_seconds=max_wait_seconds,
        )

    def request_presigned_urls(
        self, upload_id: str, *, start: int, count: int, max_wait_seconds: float | None = None
    ) -> PresignedUrls:
        """``POST /assets/multipart-uploads/{id}/presigned-urls`` for chunks ``start`` .. ``start + count - 1``."""
        return self._presigned_urls(upload_id, start, count, self._deadline(max_wait_seconds))

    def get_multipart_upload_status(
        self, upload_id: str, *, page: int = 1, page_limit: int | None = None, max_wait_seconds: float | None = None
    ) -> MultipartUploadStatus:
        params: Params = {"page": page, "page_limit": _page_limit(page_limit)}
        return self._json_call(
            MultipartUploadStatus,
            "GET",
            "assets/multipart-uploads/{upload_id}",
            segments={"upload_id": upload_id},
            params=params,
            max_wait_seconds=max_wait_seconds,
        )

    def upload_chunks(
        self, upload: MultipartUpload, chunks: Iterable[bytes], *, max_wait_seconds: float | None = None
    ) -> list[CompletedChunk]:
        """PUT each chunk to its presigned URL (fetching more URLs when needed) and return the ETag proofs.

        ``chunks`` is consumed lazily, so it can stream from S3; every chunk but the last must be exactly
        ``upload.chunk_size`` bytes and there must be ``upload.total_chunks`` of them. The proofs still have to be
        reported with ``report_completed_chunks``. ``max_wait_seconds`` budgets the whole upload.
        """
        deadline = self._deadline(max_wait_seconds)
        urls = {presigned.chunk_index: presigned.url for presigned in upload.upload_urls}
        proofs: list[CompletedChunk] = []
        for chunk_index, chunk in enumerate(_sized_chunks(chunks, upload.chunk_size, upload.total_chunks), start=1):
            if chunk_index not in urls:
                count = min(limits.MAX_PRESIGNED_URLS_PER_CALL, upload.total_chunks - chunk_index + 1)
                fresh = self._presigned_urls(upload.upload_id, chunk_index, count, deadline)
                urls.update({presigned.chunk_index: presigned.url for presigned in fresh.upload_urls})
            if chunk_index not in urls:
                raise TwelveLabsError(
                    f"upload {upload.upload_id}: the API returned no presigned URL for chunk {chunk_index}"
                )
            etag = self._put_chunk(urls[chunk_index], chunk, chunk_index, upload.upload_headers or {}, deadline)
            proofs.append(CompletedChunk(chunk_index=chunk_index, proof=etag, chunk_size=len(chunk)))
        return proofs

    def upload_chunk(
        self,
        url: str,
        chunk: bytes,
        *,
        chunk_index: int,
        upload_headers: Mapping[str, str] | None = None,
        max_wait_seconds: float | None = None,
    ) -> CompletedChunk:
        """PUT one chunk to its presigned URL and return its proof, for callers that upload a session in pieces
        across invocations (``services.ingest``); the proof still has to be reported."""
        if chunk_index < 1:
            raise RequestValidationError("chunk_index", "must be >= 1 (chunk indexes are 1-based)")
        if not chunk:
            raise RequestValidationError("chunk", "must not be empty")
        etag = self._put_chunk(url, chunk, chunk_index, upload_headers or {}, self._deadline(max_wait_seconds))
        # httpx's Request and Response refer to each other, so the request holding the chunk is freed only by the
        # cyclic collector, often after surviving into an older generation: without this, several chunks'
        # worth of dead requests pile up (8x a chunk measured, benchmarks/multipart_upload.py). The young
        # generations are cheap to collect, and memory stays at about one chunk.
        gc.collect(1)
        return CompletedChunk(chunk_index=chunk_index, proof=etag, chunk_size=len(chunk))

    # --- batches ----------------------------------------------------------------------------------------------

    def create_batch(self, request: BatchCreateRequest, *, max_wait_seconds: float | None = None) -> BatchCreated:
        """``POST /analyze/batches`` after checking every documented rule locally.

        Only attempts that provably created nothing are repeated (connect failures, 429). A timeout, a dropped
        connection or a 5xx raises OutcomeUnknownError: reconcile by listing batches, never resubmit blindly.
        """
        validate_batch_request(request)
        body = request.model_dump(mode="json", exclude_none=True)
        deadline = self._deadline(max_wait_seconds)
        response = self._execute(
            self._builder("POST", "analyze/batches", json_body=body), deadline=deadline, idempotent=False
        )
        # A success status means the batch exists; a body we cannot read leaves its id unknown to us.
        return _parse(BatchCreated, response, unreadable=OutcomeUnknownError)

    def retrieve_batch(self, batch_id: str, *, max_wait_seconds: float | None = None) -> Batch:
        return self._json_call(
            Batch,
            "GET",
            "analyze/batches/{batch_id}",
            segments={"batch_id": batch_id},
            max_wait_seconds=max_wait_seconds,
        )

    def list_batches(
        self,
        *,
        page: int = 1,
        page_limit: int | None = None,
        status: Sequence[BatchStatus] | None = None,
        analysis_mode: Sequence[limits.AnalysisMode] | None = None,
        max_wait_seconds: float | None = None,
    ) -> Page[Batch]:
        """One page of ``GET /analyze/batches`` (newest first); filters go out as repeated query keys."""
        params: Params = {
            "page": page,
            "page_limit": _page_limit(page_limit),
            "status": status,
            "analysis_mode": analysis_mode,
        }
        return self._json_call(Page[Batch], "GET", "analyze/batches", params=params, max_wait_seconds=max_wait_seconds)

    def iter_batches(
        self,
        *,
        page_limit: int | None = None,
        status: Sequence[BatchStatus] | None = None,
        analysis_mode: Sequence[limits.AnalysisMode] | None = None,
    ) -> Iterator[Batch]:
        """Every matching batch, page after page, until a page comes back with an empty ``data``."""
        return _iter_pages(
            lambda page: self.list_batches(page=page, page_limit=page_limit, status=status, analysis_mode=analysis_mode)
        )

    @contextmanager
    def stream_batch_results(self, batch_id: str, *, max_wait_seconds: float | None = None) -> Iterator[ResultLines]:
        """``GET /analyze/batches/{id}/results`` as an iterator of parsed lines, read from the network as consumed.

        Opening is retried like any GET; errors (404 ...) raise when the ``with`` block is entered. No line naming
        a task is dropped: one that does not parse comes with ``parse_error`` set (see ``results``); blank lines and
        lines without a readable task id are skipped and counted on the iterator. ``max_wait_seconds`` covers
        opening the stream and bounds each read, not the consumer's time between lines.
        """
        deadline = self._deadline(max_wait_seconds)
        call = self._builder("GET", "analyze/batches/{batch_id}/results", segments={"batch_id": batch_id})
        response = self._execute(call, deadline=deadline, idempotent=True, stream=True)
        try:
            yield ResultLines(response.iter_lines(), batch_id)
        finally:
            response.close()

    def cancel_batch(self, batch_id: str, *, max_wait_seconds: float | None = None) -> Batch:
        """``POST /analyze/batches/{id}/cancel``; repeats after an ambiguous attempt are safe.

        A cancel that reached the API moves the batch to ``canceling``, so a repeat answers 409; when an earlier
        attempt of this call may have landed, that 409 is resolved by reading the batch and returning it if it
        is canceling or canceled.
        """
        segments = {"batch_id": batch_id}
        deadline = self._deadline(max_wait_seconds)
        trace = _Trace()
        try:
            cancel = self._builder("POST", "analyze/batches/{batch_id}/cancel", segments=segments)
            response = self._execute(cancel, deadline=deadline, idempotent=True, trace=trace)
        except ConflictError:
            if not trace.retried_after_ambiguity:
                raise
            read = self._builder("GET", "analyze/batches/{batch_id}", segments=segments)
            batch = _parse(Batch, self._execute(read, deadline=deadline, idempotent=True))
            if batch.status not in _CANCELED_OR_CANCELING:
                raise
            return batch
        return _parse(Batch, response)

    def delete_batch(self, batch_id: str, *, max_wait_seconds: float | None = None) -> None:
        """``DELETE /analyze/batches/{id}`` (terminal batches only, else ConflictError)."""
        self._delete("analyze/batches/{batch_id}", {"batch_id": batch_id}, None, max_wait_seconds)

    # --- tasks ------------------------------------------------------------------------------------------------

    def retrieve_task(self, task_id: str, *, max_wait_seconds: float | None = None) -> Task:
        return self._json_call(
            Task, "GET", "analyze/tasks/{task_id}", segments={"task_id": task_id}, max_wait_seconds=max_wait_seconds
        )

    def list_tasks(
        self,
        *,
        page: int = 1,
        page_limit: int | None = None,
        status: TaskStatus | None = None,
        video_url: str | None = None,
        asset_id: str | None = None,
        analysis_mode: limits.AnalysisMode | None = None,
        max_wait_seconds: float | None = None,
    ) -> Page[Task]:
        params: Params = {
            "page": page,
            "page_limit": _page_limit(page_limit),
            "status": status,
            "video_url": video_url,
            "asset_id": asset_id,
            "analysis_mode": analysis_mode,
        }
        return self._json_call(Page[Task], "GET", "analyze/tasks", params=params, max_wait_seconds=max_wait_seconds)

    def iter_tasks(
        self,
        *,
        page_limit: int | None = None,
        status: TaskStatus | None = None,
        asset_id: str | None = None,
        analysis_mode: limits.AnalysisMode | None = None,
    ) -> Iterator[Task]:
        return _iter_pages(
            lambda page: self.list_tasks(
                page=page, page_limit=page_limit, status=status, asset_id=asset_id, analysis_mode=analysis_mode
            )
        )

    # --- machinery --------------------------------------------------------------------------------------------

    def _deadline(self, max_wait_seconds: float | None) -> float:
        budget_seconds = self._default_max_wait_seconds if max_wait_seconds is None else max_wait_seconds
        if self._time_remaining is not None:
            budget_seconds = min(budget_seconds, self._time_remaining())
        return self._clock.monotonic() + budget_seconds

    def _builder(
        self,
        method: str,
        template: str,
        *,
        segments: Mapping[str, str] | None = None,
        params: Params | None = None,
        json_body: Any = None,
        files: list[tuple[str, Any]] | None = None,
    ) -> _Call:
        path = template.format(**{name: _segment(name, value) for name, value in (segments or {}).items()})
        query = _query(params) if params else None

        def build(timeout: httpx.Timeout) -> httpx.Request:
            headers = {_API_KEY_HEADER: self._keys.get()}
            return self._http.build_request(
                method, path, params=query, json=json_body, files=files, headers=headers, timeout=timeout
            )

        return _Call(method, template, build)

    def _json_call(
        self,
        model: type[ModelT],
        method: str,
        template: str,
        *,
        segments: Mapping[str, str] | None = None,
        params: Params | None = None,
        json_body: Any = None,
        idempotent: bool = True,
        max_wait_seconds: float | None,
    ) -> ModelT:
        call = self._builder(method, template, segments=segments, params=params, json_body=json_body)
        response = self._execute(call, deadline=self._deadline(max_wait_seconds), idempotent=idempotent)
        return _parse(model, response)

    def _create_asset(
        self,
        fields: list[tuple[str, Any]],
        file: tuple[str, bytes | IO[bytes], str] | None,
        max_wait_seconds: float | None,
    ) -> Asset:
        parts = [*fields, ("file", file)] if file is not None else fields
        stream = None if file is None or isinstance(file[1], bytes) else file[1]
        start = stream.tell() if stream is not None else 0
        call = self._builder("POST", "assets", files=parts)

        def rewinding_build(timeout: httpx.Timeout) -> httpx.Request:
            # A retry (after a connect failure or a refreshed key) must send the file from its start again.
            if stream is not None:
                stream.seek(start)
            return call.build(timeout)

        rewinding = _Call(call.method, call.template, rewinding_build)
        response = self._execute(rewinding, deadline=self._deadline(max_wait_seconds), idempotent=False)
        return _parse(Asset, response)

    def _delete(
        self, template: str, segments: Mapping[str, str], params: Params | None, max_wait_seconds: float | None
    ) -> None:
        trace = _Trace()
        try:
            self._execute(
                self._builder("DELETE", template, segments=segments, params=params),
                deadline=self._deadline(max_wait_seconds),
                idempotent=True,
                trace=trace,
            )
        except NotFoundError:
            # After an ambiguous attempt, "gone" is most likely our own earlier delete having worked.
            if not trace.retried_after_ambiguity:
                raise

    def _presigned_urls(self, upload_id: str, start: int, count: int, deadline: float) -> PresignedUrls:
        if start < 1:
            raise RequestValidationError("start", "must be >= 1 (chunk indexes are 1-based)")
        if not 1 <= count <= limits.MAX_PRESIGNED_URLS_PER_CALL:
            raise RequestValidationError("count", f"must be 1 to {limits.MAX_PRESIGNED_URLS_PER_CALL}")
        call = self._builder(
            "POST",
            "assets/multipart-uploads/{upload_id}/presigned-urls",
            segments={"upload_id": upload_id},
            json_body={"start": start, "count": count},
        )
        return _parse(PresignedUrls, self._execute(call, deadline=deadline, idempotent=True))

    def _put_chunk(self, url: str, chunk: bytes, chunk_index: int, headers: Mapping[str, str], deadline: float) -> str:
        def build(timeout: httpx.Timeout) -> httpx.Request:
            # Built outside the API client's defaults on purpose: the presigned URL must not receive the API key.
            request = httpx.Request(
                "PUT", url, content=chunk, headers={**headers, "content-type": "application/octet-stream"}
            )
            request.extensions["timeout"] = timeout.as_dict()
            return request

        response = self._execute(_Call("PUT", PRESIGNED_URL_TEMPLATE, build), deadline=deadline, idempotent=True)
        etag = str(response.headers.get("etag", "")).strip('"')
        if not etag:
            raise TwelveLabsError(f"chunk {chunk_index}: the upload answered {response.status_code} without an ETag")
        return etag

    def _execute(
        self,
        call: _Call,
        *,
        deadline: float,
        idempotent: bool,
        trace: _Trace | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send until a success, a definitive error, exhausted attempts or the deadline."""
        trace = trace or _Trace()
        last_error: Exception | None = None
        while True:
            remaining_seconds = deadline - self._clock.monotonic()
            if remaining_seconds <= 0:
                raise DeadlineExceededError(f"time budget spent after {trace.attempts} attempt(s)", last_error)
            trace.attempts += 1
            timeout = httpx.Timeout(min(self._attempt_timeout_seconds, remaining_seconds))
            request = call.build(timeout)
            outcome = self._attempt(call, request, idempotent=idempotent, stream=stream)
            if isinstance(outcome, httpx.Response):
                return outcome
            error = outcome
            if self._key_was_refreshed(error, request, trace):
                last_error = error
                continue
            decision = self._policy.decide(
                attempt=trace.attempts,
                error=error,
                remaining_seconds=deadline - self._clock.monotonic(),
                idempotent=idempotent,
            )
            if not decision.retry:
                if decision.stop_reason is StopReason.BUDGET_EXHAUSTED:
                    raise DeadlineExceededError(
                        f"no time left to retry after {trace.attempts} attempt(s): {error}", error
                    ) from error
                raise error
            trace.retried_after_ambiguity |= isinstance(error, OutcomeUnknownError | ServerError)
            last_error = error
            self._clock.sleep(decision.delay_seconds)

    def _key_was_refreshed(self, error: Exception, request: httpx.Request, trace: _Trace) -> bool:
        """After the first 401/403 of a call that sent the key: re-read it; True when it changed (try once more)."""
        sent = request.headers.get(_API_KEY_HEADER)
        if trace.key_refreshed or sent is None or not isinstance(error, AuthenticationError | PermissionDeniedError):
            return False
        trace.key_refreshed = True
        try:
            fresh = self._keys.refresh()
        except Exception as refresh_error:
            # The provider failed (its source unreachable): the refusal stands, with the reason attached.
            raise error from refresh_error
        if fresh == sent:
            return False
        logger.info("TwelveLabs refused the API key with %d; retrying once with the refreshed key", error.status_code)
        return True

    def _attempt(
        self, call: _Call, request: httpx.Request, *, idempotent: bool, stream: bool
    ) -> httpx.Response | TwelveLabsError:
        """One send: the response on success, else the error it amounts to (not raised, so the caller can retry)."""
        try:
            response = self._http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            return transport_error(exc, request)
        self._observe(call, response.status_code)
        if response.is_success:
            return response
        if stream:
            response.read()
            response.close()
        error: TwelveLabsError = status_error(response, self._clock.now())
        if not idempotent and isinstance(error, ServerError):
            # A gateway may answer 5xx after the backend acted: for a create, that outcome is unknown.
            unknown = OutcomeUnknownError(f"{request.method} {request.url.path}: {error}")
            unknown.__cause__ = error
            error = unknown
        return error

    def _observe(self, call: _Call, status: int) -> None:
        if self._on_response is None:
            return
        try:
            self._on_response(call.method, call.template, status)
        except Exception:
            # Metrics must never fail an API call.
            logger.warning("the on_response observer raised; ignored", exc_info=True)


def _parse(
    model: type[ModelT], response: httpx.Response, *, unreadable: type[TwelveLabsError] = TwelveLabsError
) -> ModelT:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "body"
        raise unreadable(
            f"{response.request.method} {response.request.url.path} answered {response.status_code} with an "
            f"unexpected body for {model.__name__} at {location}: {first['msg']} "
            f"({exc.error_count()} problem(s))"
        ) from exc


def _iter_pages(fetch: Callable[[int], Page[ItemT]]) -> Iterator[ItemT]:
    # The SDK's pager ignores page_info and stops only at a page with no data; do the same.
    page_number = 1
    while True:
        page = fetch(page_number)
        if not page.data:
            return
        yield from page.data
        page_number += 1


def _sized_chunks(chunks: Iterable[bytes], chunk_size: int, total_chunks: int) -> Iterator[bytes]:
    """Yield the chunks, holding one back to know which is last: only the last may be shorter than chunk_size."""
    held: bytes | None = None
    count = 0
    for chunk in chunks:
        if held is not None:
            if len(held) != chunk_size:
                raise RequestValidationError(
                    f"chunks.{count}", f"must be exactly chunk_size={chunk_size} bytes (only the last may be shorter)"
                )
            yield held
        count += 1
        if count > total_chunks:
            raise RequestValidationError("chunks", f"more chunks than the session's total_chunks={total_chunks}")
        held = chunk
    if held is None or count != total_chunks:
        raise RequestValidationError("chunks", f"got {count} chunk(s), the session expects total_chunks={total_chunks}")
    if not 1 <= len(held) <= chunk_size:
        raise RequestValidationError(f"chunks.{count}", f"must be 1 to chunk_size={chunk_size} bytes")
    yield held


def _segment(field: str, value: str) -> str:
    if not value:
        raise RequestValidationError(field, "must not be empty")
    return quote(value, safe="")


def _page_limit(page_limit: int | None) -> int | None:
    if page_limit is not None and not 1 <= page_limit <= limits.MAX_PAGE_LIMIT:
        raise RequestValidationError("page_limit", f"must be 1 to {limits.MAX_PAGE_LIMIT}")
    return page_limit


def _query(params: Params) -> list[tuple[str, str | int | float | bool | None]]:
    """Query pairs without the unset ones; sequences become repeated keys (``status=a&status=b``)."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str | int):
            pairs.append((key, value))
        else:
            pairs.extend((key, element) for element in value)
    return pairs


def _form_fields(**values: Any) -> list[tuple[str, Any]]:
    """multipart/form-data text parts (no filename), as the API expects even when no file is attached."""
    fields: list[tuple[str, Any]] = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, Mapping):
            text = json.dumps(dict(value))
        else:
            text = str(value)
        fields.append((name, (None, text)))
    return fields


def _without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in values.items() if value is not None
    }
