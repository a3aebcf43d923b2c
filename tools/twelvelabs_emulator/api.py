"""The endpoints: each turns a ``Request`` into state calls and a ``Response``.

API routes (under ``/v1.3``, ``x-api-key`` required) follow the TwelveLabs API; ``/_uploads/...`` (chunk uploads)
and ``/_assets/.../content`` (a multipart asset's bytes) are presigned URLs (signed, no key, like S3);
``/_emulator/...`` control the emulator (loopback clients only, or a control token; see the server).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from twelvelabs_emulator import limits
from twelvelabs_emulator.api_errors import ApiError, invalid, missing
from twelvelabs_emulator.clock import rfc3339
from twelvelabs_emulator.faults import FaultPlan
from twelvelabs_emulator.fetch import FetchError, HostAllowList, fetch_to_file
from twelvelabs_emulator.forms import Form, parse_form
from twelvelabs_emulator.http import BodyKind, Request, Response, Route, RouteKind, Router, parse_json
from twelvelabs_emulator.state import EmulatorState
from twelvelabs_emulator.validation import parse_batch_request
from twelvelabs_emulator.variants import Variant
from twelvelabs_emulator.views import page_info

DEFAULT_PAGE_LIMIT = 10
BATCH_STATUSES = frozenset({"pending", "processing", "canceling", "canceled", "completed", "expired"})
TASK_STATUSES = frozenset({"queued", "pending", "processing", "ready", "failed", "canceled"})
ASSET_TYPES = frozenset({"image", "video", "audio", "document"})
UPLOAD_TYPES = frozenset({"video", "audio", "image"})
USER_METADATA_SCALARS = (str, int, float, bool)


# How a ``method=url`` asset is fetched: ``fetch(url, target, max_bytes=..., allowed=...)`` writes the body to
# ``target`` or raises FetchError. The default is a real HTTP GET; an in-process emulator reads its object store.
UrlFetcher = Callable[..., None]


class EmulatorApi:
    def __init__(
        self, state: EmulatorState, *, allowed_hosts: HostAllowList, url_fetcher: UrlFetcher = fetch_to_file
    ) -> None:
        self.state = state
        self.allowed_hosts = allowed_hosts
        self._fetch = url_fetcher
        self.router = Router(self._routes())

    def _routes(self) -> list[Route]:
        api: list[tuple[str, str, Any]] = [
            ("POST", "/assets/multipart-uploads", self.create_upload),
            ("GET", "/assets/multipart-uploads", self.list_incomplete_uploads),
            ("GET", "/assets/multipart-uploads/{id}", self.upload_status),
            ("POST", "/assets/multipart-uploads/{id}", self.report_chunks),
            ("POST", "/assets/multipart-uploads/{id}/presigned-urls", self.presigned_urls),
            ("POST", "/assets", self.create_asset),
            ("GET", "/assets", self.list_assets),
            ("GET", "/assets/{id}", self.get_asset),
            ("DELETE", "/assets/{id}", self.delete_asset),
            ("POST", "/analyze/batches", self.create_batch),
            ("GET", "/analyze/batches", self.list_batches),
            ("GET", "/analyze/batches/{id}", self.get_batch),
            ("DELETE", "/analyze/batches/{id}", self.delete_batch),
            ("POST", "/analyze/batches/{id}/cancel", self.cancel_batch),
            ("GET", "/analyze/batches/{id}/results", self.batch_results),
            ("GET", "/analyze/tasks", self.list_tasks),
            ("GET", "/analyze/tasks/{id}", self.get_task),
        ]
        control = [
            ("POST", "/_emulator/clock", self.move_clock),
            ("POST", "/_emulator/settings", self.change_settings),
            ("POST", "/_emulator/faults", self.install_faults),
            ("GET", "/_emulator/state", self.show_state),
        ]
        bodies: dict[str, BodyKind] = {"POST /assets": "form"}
        routes = [_route(m, t, h, "api", bodies.get(f"{m} {t}", "json")) for m, t, h in api]
        routes.append(_route("PUT", "/_uploads/{id}/{index}", self.put_chunk, "upload", "chunk"))
        routes.append(_route("GET", "/_assets/{id}/content", self.asset_download, "download", "json"))
        return routes + [_route(m, t, h, "control", "json") for m, t, h in control]

    # ----- assets

    def create_asset(self, request: Request) -> Response:
        form = parse_form(request.headers.get("content-type", ""), request.body)
        method = form.fields.get("method")
        if method is None:
            raise missing("method")
        common = {
            "user_metadata": _user_metadata(form.fields.get("user_metadata")),
            "enable_hls": _form_bool(form, "enable_hls"),
            "enable_thumbnail": _form_bool(form, "enable_thumbnail"),
        }
        if method == "direct":
            return Response.json(201, self._direct_asset(form, common))
        if method == "url":
            return Response.json(201, self._url_asset(form, common))
        raise invalid("method", "must be 'direct' or 'url'")

    def _direct_asset(self, form: Form, common: dict[str, Any]) -> dict[str, Any]:
        upload = form.files.get("file")
        if upload is None:
            raise missing("file")
        if len(upload.content) > self.state.max_direct_upload_bytes:
            raise invalid("file", f"exceeds the {self.state.max_direct_upload_bytes}-byte limit for direct uploads")
        path = self._incoming_path()
        path.write_bytes(upload.content)
        filename = form.fields.get("filename") or upload.filename
        return self.state.add_asset(method="direct", filename=filename, content_path=path, **common)

    def _url_asset(self, form: Form, common: dict[str, Any]) -> dict[str, Any]:
        url = form.fields.get("url")
        if not url:
            raise missing("url")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise invalid("url", "must be an http(s) URL")
        if not self.allowed_hosts.allows(url):
            raise invalid("url", f"the emulator fetches only from its allowed hosts, not {parts.hostname}")
        filename = form.fields.get("filename") or parts.path.rsplit("/", 1)[-1] or None
        path = self._incoming_path()
        try:
            # Fetched outside the state lock: other requests proceed while bytes arrive.
            self._fetch(url, path, max_bytes=limits.MAX_URL_UPLOAD_BYTES, allowed=self.allowed_hosts)
        except FetchError as error:
            path.unlink(missing_ok=True)
            return self.state.add_asset(
                method="url", filename=filename, content_path=None, fetch_error=str(error), **common
            )
        return self.state.add_asset(method="url", filename=filename, content_path=path, **common)

    def _incoming_path(self) -> Path:
        directory = self.state.storage_dir / "incoming"
        directory.mkdir(parents=True, exist_ok=True)
        return directory / uuid.uuid4().hex

    def list_assets(self, request: Request) -> Response:
        asset_types = request.query.get("asset_types", [])
        for kind in asset_types:
            if kind not in ASSET_TYPES:
                raise invalid("asset_types", f"must be among {sorted(ASSET_TYPES)}")
        assets = self.state.list_assets(
            asset_ids=list(request.query.get("asset_ids", [])),
            asset_types=list(asset_types),
            filename=request.query_one("filename"),
        )
        return Response.json(200, _page(request, assets))

    def get_asset(self, request: Request) -> Response:
        return Response.json(200, self.state.get_asset(request.params["id"]))

    def delete_asset(self, request: Request) -> Response:
        self.state.delete_asset(request.params["id"])
        return Response(204)

    def asset_download(self, request: Request) -> Response:
        path = self.state.asset_download(
            request.params["id"],
            expires=request.query_one("expires") or "",
            signature=request.query_one("signature") or "",
        )
        return Response(200, path.read_bytes(), {"Content-Type": "application/octet-stream"})

    # ----- multipart uploads

    def create_upload(self, request: Request) -> Response:
        body = _json_object(request)
        filename = body.get("filename")
        if not isinstance(filename, str) or not filename:
            raise missing("filename")
        if body.get("type") not in UPLOAD_TYPES:
            raise invalid("type", f"must be one of {sorted(UPLOAD_TYPES)}")
        total_size = body.get("total_size")
        if isinstance(total_size, bool) or not isinstance(total_size, int):
            raise missing("total_size")
        if not 1 <= total_size <= limits.MAX_MULTIPART_UPLOAD_BYTES:
            raise invalid("total_size", f"must be between 1 and {limits.MAX_MULTIPART_UPLOAD_BYTES} bytes")
        metadata = body.get("user_metadata")
        answer = self.state.create_upload(
            filename=filename,
            total_size_bytes=total_size,
            enable_hls=bool(body.get("enable_hls", False)),
            enable_thumbnail=bool(body.get("enable_thumbnail", False)),
            user_metadata=_check_user_metadata(metadata) if metadata is not None else None,
        )
        return Response.json(201, answer)

    def list_incomplete_uploads(self, request: Request) -> Response:
        return Response.json(200, _page(request, self.state.incomplete_uploads()))

    def upload_status(self, request: Request) -> Response:
        page = request.query_int("page", 1, low=1)
        page_limit = request.query_int("page_limit", DEFAULT_PAGE_LIMIT, low=1, high=limits.MAX_PAGE_LIMIT)
        return Response.json(200, self.state.upload_status(request.params["id"], page=page, page_limit=page_limit))

    def report_chunks(self, request: Request) -> Response:
        chunks = _json_object(request).get("completed_chunks")
        if not isinstance(chunks, list) or not chunks:
            raise missing("completed_chunks")
        return Response.json(200, self.state.report_chunks(request.params["id"], chunks))

    def presigned_urls(self, request: Request) -> Response:
        body = _json_object(request)
        start, count = body.get("start"), body.get("count")
        if not isinstance(start, int) or not isinstance(count, int):
            raise missing("start and count")
        answer = self.state.presigned_urls(request.params["id"], start=start, count=count)
        return Response.json(200, answer)

    def put_chunk(self, request: Request) -> Response:
        index = request.params["index"]
        if not index.isdigit():
            raise invalid("chunk_index", "must be an integer")
        etag = self.state.put_chunk(
            request.params["id"],
            int(index),
            expires=request.query_one("expires") or "",
            signature=request.query_one("signature") or "",
            data=request.body,
        )
        return Response(200, b"", {"ETag": f'"{etag}"'})

    # ----- batches and tasks

    def create_batch(self, request: Request) -> Response:
        try:
            created, headers = self.state.create_batch(parse_batch_request(request.json()))
        except ApiError as error:
            if self.state.settings.has(Variant.INDEX_FREE_ERRORS):
                raise error.without_request_indexes() from error
            raise
        return Response.json(201, created, headers)

    def list_batches(self, request: Request) -> Response:
        statuses = _allowed(request, "status", BATCH_STATUSES)
        modes = _allowed(request, "analysis_mode", frozenset(limits.ANALYSIS_MODES))
        return Response.json(200, _page(request, self.state.list_batches(statuses=statuses, modes=modes)))

    def get_batch(self, request: Request) -> Response:
        return Response.json(200, self.state.get_batch(request.params["id"]))

    def delete_batch(self, request: Request) -> Response:
        self.state.delete_batch(request.params["id"])
        return Response(204)

    def cancel_batch(self, request: Request) -> Response:
        # 202: the cancellation is accepted; items already processing still finish.
        return Response.json(202, self.state.cancel_batch(request.params["id"]))

    def batch_results(self, request: Request) -> Response:
        lines = self.state.batch_results(request.params["id"])
        body = _results_body(lines, noisy=self.state.settings.has(Variant.RESULTS_NOISE))
        return Response(200, body, {"Content-Type": "application/jsonl"})

    def list_tasks(self, request: Request) -> Response:
        statuses = _allowed(request, "status", TASK_STATUSES)
        modes = _allowed(request, "analysis_mode", frozenset(limits.ANALYSIS_MODES))
        tasks = self.state.list_tasks(
            status=statuses[-1] if statuses else None,
            asset_id=request.query_one("asset_id"),
            mode=modes[-1] if modes else None,
        )
        return Response.json(200, _page(request, tasks))

    def get_task(self, request: Request) -> Response:
        return Response.json(200, self.state.get_task(request.params["id"]))

    # ----- control

    def move_clock(self, request: Request) -> Response:
        seconds = _json_object(request).get("advance_seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise missing("advance_seconds")
        return Response.json(200, {"now": rfc3339(self.state.advance_clock(float(seconds)))})

    def change_settings(self, request: Request) -> Response:
        try:
            settings = self.state.update_settings(_json_object(request))
        except ValidationError as error:
            raise invalid("settings", error.errors()[0]["msg"]) from error
        return Response.json(200, settings.model_dump(mode="json"))

    def install_faults(self, request: Request) -> Response:
        plan = FaultPlan.parse(request.json(), self.router.endpoints)
        with self.state.lock:
            self.state.faults = plan if plan.spec.rules else None
        return Response.json(200, plan.describe())

    def show_state(self, request: Request) -> Response:
        return Response.json(200, self.state.snapshot())


def _route(method: str, template: str, handler: Any, kind: RouteKind, body: BodyKind) -> Route:
    return Route(method, template, handler, kind=kind, body=body)


def _results_body(lines: list[dict[str, Any]], *, noisy: bool) -> bytes:
    """JSON Lines; with results_noise, blank lines, a stray line without custom_id and a truncated last line."""
    rendered = [json.dumps(line) for line in lines]
    if not noisy or not lines:
        return "".join(f"{text}\n" for text in rendered).encode()
    first = lines[0]
    stray = json.dumps({"task_id": first["task_id"], "status": first["status"]})
    # Cut inside the task id's value: nothing about the line can be read.
    truncated = rendered[-1][: len('{"task_id": "') + 6]
    noisy_lines = [rendered[0], "", "   ", *rendered[1:], stray]
    return ("\n".join(noisy_lines) + "\n" + truncated).encode()


def _json_object(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    return body


def _page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One page; a page past the end answers 200 with ``data: []`` (the SDK pagers stop on that)."""
    page = request.query_int("page", 1, low=1)
    page_limit = request.query_int("page_limit", DEFAULT_PAGE_LIMIT, low=1, high=limits.MAX_PAGE_LIMIT)
    shown = items[(page - 1) * page_limit : page * page_limit]
    return {"data": shown, "page_info": page_info(page, page_limit, len(items))}


def _allowed(request: Request, key: str, allowed: frozenset[str]) -> list[str]:
    values = list(request.query.get(key, []))
    for value in values:
        if value not in allowed:
            raise invalid(key, f"{value!r} is not one of {sorted(allowed)}")
    return values


def _form_bool(form: Form, key: str) -> bool:
    raw = form.fields.get(key)
    if raw is None or raw == "":
        return True
    if raw.lower() not in ("true", "false"):
        raise invalid(key, "must be true or false")
    return raw.lower() == "true"


def _user_metadata(raw: str | None) -> dict[str, Any] | None:
    if raw is None or raw == "":
        return None
    return _check_user_metadata(parse_json(raw, "user_metadata"))


def _check_user_metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("user_metadata", "must be an object")
    for key, entry in value.items():
        is_string_list = isinstance(entry, list) and all(isinstance(s, str) for s in entry)
        if not (entry is None or isinstance(entry, USER_METADATA_SCALARS) or is_string_list):
            raise invalid(f"user_metadata.{key}", "must be a string, number, boolean or array of strings")
    # Keys set to "", [] or null are omitted, as the API documents.
    return {key: entry for key, entry in value.items() if entry not in ("", [], None)}


__all__ = ["ApiError", "EmulatorApi"]
