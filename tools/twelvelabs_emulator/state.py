"""The emulator's state: assets, multipart uploads, batches and tasks, behind one lock.

Every public method takes the lock and first brings the simulation up to the clock's "now"
(see ``processing`` for the model), so answers are a pure function of the clock and of the requests so far.
Retention: 30 days after creation a batch and its tasks are deleted. Upload sessions expire after 24 h.
Webhook notifications are queued under the lock when a batch turns terminal and sent by ``deliver_webhooks``
outside it, so a receiver may call the emulator back.
"""

from __future__ import annotations

import hashlib
import math
import random
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from twelvelabs_emulator import limits, views
from twelvelabs_emulator.api_errors import ApiError, conflict, invalid, not_found
from twelvelabs_emulator.clock import AdvanceableClock, Clock, rfc3339
from twelvelabs_emulator.faults import FaultPlan
from twelvelabs_emulator.media import MediaInfo, MediaProbeError, probe_media, requirement_problem
from twelvelabs_emulator.models import (
    AssetMethod,
    AssetRecord,
    BatchRecord,
    EmulatorSettings,
    ItemRecord,
    UploadSession,
)
from twelvelabs_emulator.outputs import OutputGenerationError, generate_output
from twelvelabs_emulator.processing import advance_batch, request_cancel
from twelvelabs_emulator.ratelimits import RateLimiter
from twelvelabs_emulator.signing import UrlSigner
from twelvelabs_emulator.validation import BatchRequest, ItemRequest, Timeline, Window, plan_window
from twelvelabs_emulator.variants import WINDOW_OVERRUN_SECONDS, Variant
from twelvelabs_emulator.webhooks import WebhookOutbox

DEFAULT_MULTIPART_CHUNK_BYTES: Final = 5 * 1024 * 1024
DEFAULT_ITEM_FAILURE_MESSAGE: Final = "The analysis failed (injected fault)."
# The code the SDK's results example gives an item whose asset could not be read (item_level_refusals).
ASSET_UNAVAILABLE: Final = "asset_unavailable"


# Bodies up to this size are hashed to reuse an earlier probe of the same bytes; this many probes are kept.
_PROBE_CACHE_MAX_BYTES: Final = 64_000_000
_PROBE_CACHE_ENTRIES: Final = 1024


class EmulatorState:
    def __init__(
        self,
        *,
        clock: Clock,
        settings: EmulatorSettings,
        storage_dir: Path,
        seed: int = 0,
        max_direct_upload_bytes: int = limits.MAX_DIRECT_UPLOAD_BYTES,
        multipart_chunk_bytes: int = DEFAULT_MULTIPART_CHUNK_BYTES,
        public_base_url: str = "http://127.0.0.1",
        webhooks: WebhookOutbox | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.settings = settings
        self.storage_dir = storage_dir
        self.max_direct_upload_bytes = max_direct_upload_bytes
        self.multipart_chunk_bytes = multipart_chunk_bytes
        # Where presigned URLs point: configured, or the server's own address; never a request's Host header.
        self.public_base_url = public_base_url
        self.webhooks = webhooks
        self.faults: FaultPlan | None = None
        self.assets: dict[str, AssetRecord] = {}
        self.uploads: dict[str, UploadSession] = {}
        self.batches: dict[str, BatchRecord] = {}
        self.tasks: dict[str, ItemRecord] = {}
        self.limiter = RateLimiter()
        self._ids = random.Random(seed)
        self._signer = UrlSigner()
        self._probes: dict[str, tuple[MediaInfo | None, str | None]] = {}

    # ----- clock, settings, rate limits

    def now(self) -> datetime:
        return self.clock.now()

    def sync(self) -> datetime:
        """Bring every batch and upload session up to now; returns now."""
        with self.lock:
            now = self.clock.now()
            for batch in list(self.batches.values()):
                if now >= batch.created_at + timedelta(seconds=limits.RESULT_RETENTION_SECONDS):
                    self._forget_batch(batch)
                    continue
                advance_batch(batch, now, self.settings, self._finish_item)
                self._queue_notification(batch)
            for session in self.uploads.values():
                if session.status == "active" and now >= session.expires_at:
                    session.status = "expired"
            return now

    def advance_clock(self, seconds: float) -> datetime:
        with self.lock:
            if not isinstance(self.clock, AdvanceableClock):
                raise conflict("The clock can only be moved when it is virtual.")
            if seconds < 0:
                raise invalid("advance_seconds", "must be >= 0")
            self.sync()
            moment = self.clock.advance(seconds)
            self.sync()
            return moment

    def update_settings(self, changes: dict[str, Any]) -> EmulatorSettings:
        with self.lock:
            self.sync()
            merged = EmulatorSettings.model_validate({**self.settings.model_dump(), **changes})
            self.settings = merged
            return merged

    def admit_request(self) -> dict[str, str]:
        """Count one request on a rate-limited endpoint: its X-Ratelimit headers, or 429."""
        with self.lock:
            now = self.sync()
            retry_after = not self.settings.has(Variant.RATELIMIT_HEADERS_ONLY)
            return self.limiter.admit(self.settings.rate_limits, now, "requests", 1, retry_after=retry_after)

    def new_id(self) -> str:
        with self.lock:
            return f"{self._ids.getrandbits(96):024x}"

    # ----- webhooks

    def deliver_webhooks(self) -> int:
        """Send the notifications due now, outside the lock; returns how many were attempted."""
        if self.webhooks is None:
            return 0
        with self.lock:
            now = self.sync()
            due = self.webhooks.take_due(now)
        outcomes = [(note, self.webhooks.send(note, now)) for note in due]
        with self.lock:
            for note, error in outcomes:
                self.webhooks.settle(note, error, self.batches.get(note.batch_id), now)
        return len(outcomes)

    def _queue_notification(self, batch: BatchRecord) -> None:
        if self.webhooks is None or batch.notification_queued:
            return
        if batch.status in limits.TERMINAL_BATCH_STATUSES:
            event_id = hashlib.sha256(f"event:{batch.batch_id}".encode()).hexdigest()[:24]
            self.webhooks.enqueue(batch, event_id)

    # ----- assets

    def add_asset(
        self,
        *,
        method: AssetMethod,
        filename: str | None,
        user_metadata: dict[str, Any] | None,
        enable_hls: bool,
        enable_thumbnail: bool,
        content_path: Path | None,
        fetch_error: str | None = None,
    ) -> dict[str, Any]:
        """Register an asset whose bytes (if any) are at ``content_path``; probes them now, reveals later."""
        media, error = self._probe(content_path) if content_path is not None else (None, fetch_error)
        with self.lock:
            now = self.sync()
            asset_id = self.new_id()
            stored = self._store(content_path, asset_id) if content_path is not None else None
            asset = AssetRecord(
                asset_id=asset_id,
                method=method,
                filename=filename,
                created_at=now,
                user_metadata=user_metadata,
                enable_hls=enable_hls,
                enable_thumbnail=enable_thumbnail,
                content_path=stored,
                media=media,
                error_message=error,
                ready_at=now + timedelta(seconds=self.settings.asset_ready_seconds),
            )
            self.assets[asset_id] = asset
            return views.asset_view(asset, now)

    def get_asset(self, asset_id: str) -> dict[str, Any]:
        with self.lock:
            now = self.sync()
            return views.asset_view(self._asset(asset_id), now)

    def asset_download(self, asset_id: str, *, expires: str, signature: str) -> Path:
        """The bytes behind a signed download URL: only an asset assembled from the caller's own upload."""
        with self.lock:
            now = self.sync()
            self._signer.check(_download_path(asset_id), expires, signature, now)
            asset = self._asset(asset_id)
            if asset.method != "multipart" or asset.content_path is None:
                raise not_found("asset content", asset_id)
            return asset.content_path

    def delete_asset(self, asset_id: str) -> None:
        with self.lock:
            asset = self._asset(asset_id)
            del self.assets[asset_id]
            if asset.content_path is not None:
                asset.content_path.unlink(missing_ok=True)

    def list_assets(
        self, *, asset_ids: list[str], asset_types: list[str], filename: str | None
    ) -> list[dict[str, Any]]:
        with self.lock:
            now = self.sync()
            chosen = [
                asset
                for asset in self.assets.values()
                if (not asset_ids or asset.asset_id in asset_ids)
                # Every emulated asset is a video (the emulator serves the video pipeline).
                and (not asset_types or "video" in asset_types)
                and (filename is None or filename.lower() in (asset.filename or "").lower())
            ]
            return [views.asset_view(asset, now) for asset in reversed(chosen)]

    # ----- multipart uploads

    def create_upload(
        self,
        *,
        filename: str,
        total_size_bytes: int,
        enable_hls: bool,
        enable_thumbnail: bool,
        user_metadata: dict[str, Any] | None,
    ) -> dict[str, Any]:
        with self.lock:
            now = self.sync()
            total_chunks = math.ceil(total_size_bytes / self.multipart_chunk_bytes)
            asset_id = self.new_id()
            self.assets[asset_id] = AssetRecord(
                asset_id=asset_id,
                method="multipart",
                filename=filename,
                created_at=now,
                user_metadata=user_metadata,
                enable_hls=enable_hls,
                enable_thumbnail=enable_thumbnail,
            )
            session = UploadSession(
                upload_id=self.new_id(),
                asset_id=asset_id,
                filename=filename,
                total_size_bytes=total_size_bytes,
                chunk_size_bytes=self.multipart_chunk_bytes,
                total_chunks=total_chunks,
                created_at=now,
                expires_at=now + timedelta(seconds=limits.UPLOAD_SESSION_SECONDS),
                updated_at=now,
            )
            self.uploads[session.upload_id] = session
            first = min(total_chunks, limits.MAX_PRESIGNED_URLS_PER_CALL)
            urls, expires_at = self._presign(session, 1, first, now)
            return {
                "upload_id": session.upload_id,
                "asset_id": asset_id,
                "upload_urls": views.upload_urls_view(urls, expires_at),
                "chunk_size": session.chunk_size_bytes,
                "total_chunks": total_chunks,
                "expires_at": rfc3339(session.expires_at),
            }

    def presigned_urls(self, upload_id: str, *, start: int, count: int) -> dict[str, Any]:
        with self.lock:
            now = self.sync()
            session = self._active_upload(upload_id)
            if not 1 <= start <= session.total_chunks:
                raise invalid("start", f"must be between 1 and {session.total_chunks}")
            if not 1 <= count <= limits.MAX_PRESIGNED_URLS_PER_CALL:
                raise invalid("count", f"must be between 1 and {limits.MAX_PRESIGNED_URLS_PER_CALL}")
            last = min(session.total_chunks, start + count - 1)
            urls, expires_at = self._presign(session, start, last, now)
            return {
                "upload_id": upload_id,
                "start_index": start,
                "count": len(urls),
                "upload_urls": views.upload_urls_view(urls, expires_at),
                "generated_at": rfc3339(now),
                "expires_at": rfc3339(expires_at),
            }

    def put_chunk(self, upload_id: str, index: int, *, expires: str, signature: str, data: bytes) -> str:
        """Store one chunk PUT to a presigned URL; returns its ETag (MD5 hex of the bytes)."""
        with self.lock:
            now = self.sync()
            self._signer.check(_upload_path(upload_id, index), expires, signature, now)
            session = self._active_upload(upload_id)
            expected = self._chunk_size(session, index)
            if len(data) != expected:
                raise invalid("body", f"chunk {index} must be {expected} bytes, got {len(data)}")
            path = self.storage_dir / "uploads" / upload_id / str(index)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
            session.received[index] = (etag, len(data))
            session.puts_received[index] = session.puts_received.get(index, 0) + 1
            session.updated_at = now
            return etag

    def report_chunks(self, upload_id: str, completed_chunks: list[dict[str, Any]]) -> dict[str, Any]:
        with self.lock:
            now = self.sync()
            session = self._upload(upload_id)
            if session.status not in ("active", "completed"):
                raise invalid("upload_id", f"the upload session {upload_id} is {session.status}")
            processed = duplicates = 0
            for position, chunk in enumerate(completed_chunks):
                index = self._verify_proof(session, chunk, f"completed_chunks.{position}")
                if index in session.reported_at:
                    duplicates += 1
                    continue
                session.reported_at[index] = now
                processed += 1
            session.updated_at = now
            answer: dict[str, Any] = {
                "asset_id": session.asset_id,
                "processed_chunks": processed,
                "duplicate_chunks": duplicates,
                "total_completed": len(session.reported_at),
            }
            if session.status == "active" and len(session.reported_at) == session.total_chunks:
                self._assemble(session, now)
            if session.status == "completed":
                expires_at = now + timedelta(seconds=limits.PRESIGNED_URL_SECONDS)
                answer["url"] = self._signer.url(self.public_base_url, _download_path(session.asset_id), expires_at)
            return answer

    def upload_status(self, upload_id: str, *, page: int, page_limit: int) -> dict[str, Any]:
        with self.lock:
            self.sync()
            session = self._upload(upload_id)
            indexes = list(range(1, session.total_chunks + 1))
            shown = indexes[(page - 1) * page_limit : page * page_limit]
            uploaded = sum(session.received[i][1] for i in session.reported_at if i in session.received)
            return {
                "upload_id": upload_id,
                "status": session.status,
                "uploaded_chunks": [views.chunk_view(session, index) for index in shown],
                "chunks_completed": len(session.reported_at),
                "chunks_failed": 0,
                "chunks_pending": session.total_chunks - len(session.reported_at),
                "page_info": views.page_info(page, page_limit, session.total_chunks),
                "total_size": session.total_size_bytes,
                "uploaded_size": uploaded,
                "created_at": rfc3339(session.created_at),
                "updated_at": rfc3339(session.updated_at),
            }

    def incomplete_uploads(self) -> list[dict[str, Any]]:
        with self.lock:
            self.sync()
            active = [s for s in self.uploads.values() if s.status == "active"]
            return [views.upload_summary_view(session) for session in reversed(active)]

    # ----- batches and tasks

    def create_batch(self, request: BatchRequest) -> tuple[dict[str, Any], dict[str, str]]:
        """The created batch's view and the rate-limit headers of its video seconds."""
        with self.lock:
            now = self.sync()
            batch_id = self.new_id()
            items = [self._plan_item(batch_id, request, index, now) for index in range(len(request.items))]
            content_seconds = sum(self._counted_seconds(item) for item in items)
            if content_seconds > limits.MAX_CONTENT_SECONDS_PER_BATCH:
                hours = content_seconds / 3_600
                raise invalid("requests", f"the batch holds {hours:.1f} content hours; at most 2,000 are accepted")
            self._check_active_batches()
            retry_after = not self.settings.has(Variant.RATELIMIT_HEADERS_ONLY)
            headers = self.limiter.admit(
                self.settings.rate_limits, now, "video_seconds", content_seconds, retry_after=retry_after
            )
            batch = BatchRecord(
                batch_id=batch_id,
                analysis_mode=request.analysis_mode,
                model_name=limits.MODEL_NAME,
                created_at=now,
                expires_at=now + timedelta(seconds=limits.BATCH_EXPIRY_SECONDS),
                items=items,
                advanced_to=now,
            )
            self.batches[batch_id] = batch
            self.tasks.update({item.task_id: item for item in items})
            return views.batch_created_view(batch, self.settings.variants), headers

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        with self.lock:
            self.sync()
            return views.batch_view(self._batch(batch_id), self.settings.variants)

    def list_batches(self, *, statuses: list[str], modes: list[str]) -> list[dict[str, Any]]:
        with self.lock:
            self.sync()
            chosen = [
                batch
                for batch in reversed(self.batches.values())
                if (not statuses or batch.status in statuses) and (not modes or batch.analysis_mode in modes)
            ]
            return [views.batch_view(batch, self.settings.variants) for batch in chosen]

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        with self.lock:
            now = self.sync()
            batch = self._batch(batch_id)
            if batch.status not in ("pending", "processing"):
                raise conflict(f"A batch in status {batch.status} cannot be canceled.")
            request_cancel(batch, now)
            return views.batch_view(batch, self.settings.variants)

    def delete_batch(self, batch_id: str) -> None:
        with self.lock:
            self.sync()
            batch = self._batch(batch_id)
            if batch.status not in limits.TERMINAL_BATCH_STATUSES:
                raise conflict(f"A batch in status {batch.status} cannot be deleted; cancel it first.")
            self._forget_batch(batch)

    def batch_results(self, batch_id: str) -> list[dict[str, Any]]:
        with self.lock:
            self.sync()
            return [views.result_line(item, self.settings.variants) for item in self._batch(batch_id).items]

    def get_task(self, task_id: str) -> dict[str, Any]:
        with self.lock:
            self.sync()
            item = self.tasks.get(task_id)
            if item is None:
                raise not_found("task", task_id)
            return views.task_view(item, self.batches[item.batch_id].analysis_mode, self.settings.variants)

    def list_tasks(self, *, status: str | None, asset_id: str | None, mode: str | None) -> list[dict[str, Any]]:
        with self.lock:
            self.sync()
            chosen: list[dict[str, Any]] = []
            for batch in reversed(self.batches.values()):
                if mode is not None and batch.analysis_mode != mode:
                    continue
                for item in batch.items:
                    if (status is None or item.status == status) and (asset_id is None or item.asset_id == asset_id):
                        chosen.append(views.task_view(item, batch.analysis_mode, self.settings.variants))
            return chosen

    def snapshot(self) -> dict[str, Any]:
        """Everything, for tests and debugging (``GET /_emulator/state``)."""
        with self.lock:
            now = self.sync()
            return {
                "now": rfc3339(now),
                "clock": "virtual" if isinstance(self.clock, AdvanceableClock) else "real",
                "settings": self.settings.model_dump(mode="json"),
                "faults": self.faults.describe() if self.faults else {"seed": 0, "rules": [], "fired": []},
                "assets": [views.asset_view(asset, now) for asset in self.assets.values()],
                "uploads": [s.model_dump(mode="json") for s in self.uploads.values()],
                "batches": [
                    {**views.batch_view(b, frozenset()), "items": [i.model_dump(mode="json") for i in b.items]}
                    for b in self.batches.values()
                ],
            }

    def iter_batches(self) -> Iterator[BatchRecord]:
        with self.lock:
            yield from list(self.batches.values())

    # ----- internals: batch planning

    def _plan_item(self, batch_id: str, request: BatchRequest, index: int, now: datetime) -> ItemRecord:
        wanted = request.items[index]
        field = f"requests.{index}"
        try:
            asset, media = self._ready_asset(wanted, field, now)
            timeline = self._timeline(media)
            window = plan_window(wanted.params, timeline, field)
        except ApiError as refusal:
            if not self.settings.has(Variant.ITEM_LEVEL_REFUSALS):
                raise
            return self._refused_item(batch_id, request, index, refusal, now)
        fails_with = None
        if window.too_long:
            message = "The analysis window exceeds 2 hours; analyse at most 2 hours per item."
            fails_with = {"code": "video_duration_too_long", "message": message}
        return self._item(
            batch_id,
            request,
            index,
            asset=asset,
            duration_seconds=timeline.measured_seconds,
            window=window,
            fails_with=fails_with,
            now=now,
        )

    def _ready_asset(self, wanted: ItemRequest, field: str, now: datetime) -> tuple[AssetRecord, MediaInfo]:
        asset = self.assets.get(wanted.asset_id)
        if asset is None:
            raise not_found("asset", wanted.asset_id)
        status = views.asset_status(asset, now)
        if status != "ready" or asset.media is None:
            raise conflict(f"{field}.video.asset_id: the asset {asset.asset_id} is {status}.")
        return asset, asset.media

    def _timeline(self, media: MediaInfo) -> Timeline:
        overrun = WINDOW_OVERRUN_SECONDS if self.settings.has(Variant.WINDOW_OVERRUN) else 0.0
        origin = media.start_seconds if self.settings.has(Variant.START_OFFSET) else 0.0
        return Timeline(
            duration_seconds=media.duration_seconds,
            measured_seconds=media.duration_seconds + overrun,
            origin_seconds=origin,
        )

    def _item(
        self,
        batch_id: str,
        request: BatchRequest,
        index: int,
        *,
        asset: AssetRecord,
        duration_seconds: float,
        window: Window,
        fails_with: dict[str, str] | None,
        now: datetime,
    ) -> ItemRecord:
        wanted = request.items[index]
        return ItemRecord(
            task_id=self.new_id(),
            batch_id=batch_id,
            custom_id=wanted.custom_id,
            asset_id=asset.asset_id,
            asset_filename=asset.filename,
            video_duration_seconds=duration_seconds,
            window_start_seconds=window.start_seconds,
            window_end_seconds=window.end_seconds,
            fails_with=fails_with,
            request_params=self._effective_params(wanted, request.analysis_mode),
            created_at=now,
        )

    def _refused_item(
        self, batch_id: str, request: BatchRequest, index: int, refusal: ApiError, now: datetime
    ) -> ItemRecord:
        """An item the platform refuses on its own (item_level_refusals): it fails when its turn comes."""
        wanted = request.items[index]
        asset = self.assets.get(wanted.asset_id)
        field = str((refusal.details or {}).get("field", ""))
        if refusal.status in (404, 409):
            code = ASSET_UNAVAILABLE
        elif field.endswith(".video"):
            code = "video_duration_too_long"
        else:
            code = refusal.code
        return ItemRecord(
            task_id=self.new_id(),
            batch_id=batch_id,
            custom_id=wanted.custom_id,
            asset_id=wanted.asset_id,
            asset_filename=asset.filename if asset is not None else None,
            video_duration_seconds=asset.media.duration_seconds if asset is not None and asset.media else 0.0,
            window_start_seconds=0.0,
            window_end_seconds=0.0,
            fails_with={"code": code, "message": refusal.message},
            refused=True,
            request_params=self._effective_params(wanted, request.analysis_mode),
            created_at=now,
        )

    def _effective_params(self, wanted: ItemRequest, mode: str) -> dict[str, Any]:
        return {
            "temperature": limits.DEFAULT_TEMPERATURE,
            "max_tokens": limits.DEFAULT_MAX_TOKENS[mode],
            **wanted.params,
        }

    def _counted_seconds(self, item: ItemRecord) -> float:
        """What an item adds to the batch's content hours: its window, or its whole video (content_per_request)."""
        if item.refused:
            return 0.0
        if self.settings.has(Variant.CONTENT_PER_REQUEST):
            return item.video_duration_seconds
        return item.content_seconds

    def _check_active_batches(self) -> None:
        active = sum(1 for b in self.batches.values() if b.status in limits.ACTIVE_BATCH_STATUSES)
        if active < limits.MAX_ACTIVE_BATCHES:
            return
        message = f"You already have {active} active batches; at most {limits.MAX_ACTIVE_BATCHES} are allowed."
        if self.settings.has(Variant.ACTIVE_LIMIT_400):
            raise ApiError(400, "parameter_invalid", message)
        if self.settings.has(Variant.ACTIVE_LIMIT_409):
            raise ApiError(409, "too_many_requests", message)
        raise ApiError(429, "too_many_requests", message)

    # ----- internals: processing

    def _finish_item(self, item: ItemRecord, at: datetime) -> None:
        item.completed_at = at
        item.finishes_at = None
        failure = self.faults.item_failure(item.task_id) if self.faults else None
        if failure is not None:
            item.status = "failed"
            item.error = {"code": failure.code, "message": failure.message or DEFAULT_ITEM_FAILURE_MESSAGE}
            return
        try:
            output = generate_output(
                analysis_mode=self.batches[item.batch_id].analysis_mode,
                request_params=item.request_params,
                asset_id=item.asset_id,
                asset_filename=item.asset_filename,
                video_duration_seconds=item.video_duration_seconds,
                window_start_seconds=item.window_start_seconds,
                window_end_seconds=item.window_end_seconds,
                seed=item.task_id,
            )
        except OutputGenerationError as exc:
            # The platform fails such a task on its own (an unsatisfiable schema, no room in max_tokens).
            item.status = "failed"
            item.error = {"code": exc.code, "message": exc.message}
            return
        item.status = "ready"
        item.result = {
            "generation_id": hashlib.sha256(f"generation:{item.task_id}".encode()).hexdigest()[:24],
            "data": output.data,
            "finish_reason": output.finish_reason,
            "usage": {"output_tokens": output.output_tokens, "input_tokens": output.input_tokens},
        }

    def _forget_batch(self, batch: BatchRecord) -> None:
        for item in batch.items:
            self.tasks.pop(item.task_id, None)
        self.batches.pop(batch.batch_id, None)

    # ----- internals: lookups

    def _asset(self, asset_id: str) -> AssetRecord:
        asset = self.assets.get(asset_id)
        if asset is None:
            raise not_found("asset", asset_id)
        return asset

    def _batch(self, batch_id: str) -> BatchRecord:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise not_found("batch", batch_id)
        return batch

    def _upload(self, upload_id: str) -> UploadSession:
        session = self.uploads.get(upload_id)
        if session is None:
            raise not_found("upload session", upload_id)
        return session

    def _active_upload(self, upload_id: str) -> UploadSession:
        session = self._upload(upload_id)
        if session.status != "active":
            raise invalid("upload_id", f"the upload session {upload_id} is {session.status}")
        return session

    # ----- internals: media and uploads

    def _probe(self, path: Path) -> tuple[MediaInfo | None, str | None]:
        # Probing is a function of the bytes: a body seen before (a simulation uploads the same few samples
        # tens of thousands of times) is not opened with PyAV again. Only small files are hashed for it.
        key = None
        if path.stat().st_size <= _PROBE_CACHE_MAX_BYTES:
            key = hashlib.sha256(path.read_bytes()).hexdigest()
            cached = self._probes.get(key)
            if cached is not None:
                return cached
        try:
            media = probe_media(path)
        except MediaProbeError as error:
            outcome: tuple[MediaInfo | None, str | None] = (None, str(error))
        else:
            problem = requirement_problem(media)
            outcome = (None, problem) if problem is not None else (media, None)
        if key is not None and len(self._probes) < _PROBE_CACHE_ENTRIES:
            self._probes[key] = outcome
        return outcome

    def _store(self, source: Path, asset_id: str) -> Path:
        target = self.storage_dir / "assets" / asset_id
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        return target

    def _presign(
        self, session: UploadSession, first: int, last: int, now: datetime
    ) -> tuple[list[tuple[int, str]], datetime]:
        expires_at = now + timedelta(seconds=limits.PRESIGNED_URL_SECONDS)
        urls = [
            (index, self._signer.url(self.public_base_url, _upload_path(session.upload_id, index), expires_at))
            for index in range(first, last + 1)
        ]
        return urls, expires_at

    def _chunk_size(self, session: UploadSession, index: int) -> int:
        if not 1 <= index <= session.total_chunks:
            raise invalid("chunk_index", f"must be between 1 and {session.total_chunks}")
        if index < session.total_chunks:
            return session.chunk_size_bytes
        return session.total_size_bytes - session.chunk_size_bytes * (session.total_chunks - 1)

    def _verify_proof(self, session: UploadSession, chunk: Any, field: str) -> int:
        if not isinstance(chunk, dict):
            raise invalid(field, "must be an object")
        index = chunk.get("chunk_index")
        if not isinstance(index, int) or not 1 <= index <= session.total_chunks:
            raise invalid(f"{field}.chunk_index", f"must be between 1 and {session.total_chunks}")
        if chunk.get("proof_type") != "etag":
            raise invalid(f"{field}.proof_type", "must be 'etag'")
        received = session.received.get(index)
        if received is None:
            raise invalid(f"{field}.chunk_index", f"chunk {index} was never uploaded")
        proof = str(chunk.get("proof", "")).strip('"')
        if proof != received[0]:
            raise invalid(f"{field}.proof", f"does not match the ETag of chunk {index}")
        if chunk.get("chunk_size") != received[1]:
            raise invalid(f"{field}.chunk_size", f"chunk {index} holds {received[1]} bytes")
        return index

    def _assemble(self, session: UploadSession, now: datetime) -> None:
        parts = self.storage_dir / "uploads" / session.upload_id
        target = self.storage_dir / "assets" / session.asset_id
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for index in range(1, session.total_chunks + 1):
                out.write((parts / str(index)).read_bytes())
        shutil.rmtree(parts, ignore_errors=True)
        asset = self.assets.get(session.asset_id)
        session.status = "completed"
        if asset is None:
            target.unlink(missing_ok=True)
            return
        asset.content_path = target
        asset.media, asset.error_message = self._probe(target)
        asset.ready_at = now + timedelta(seconds=self.settings.asset_ready_seconds)


def _upload_path(upload_id: str, index: int) -> str:
    return f"/_uploads/{upload_id}/{index}"


def _download_path(asset_id: str) -> str:
    return f"/_assets/{asset_id}/content"
