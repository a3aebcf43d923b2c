"""Multipart uploads that outlast one invocation: the session lives with the item, each run sends what its time
allows.

A video over 4 GB is streamed to TwelveLabs chunk by chunk (``domain.uploads.MultipartUploadSession``). A chunk is
read from S3 as a ranged GET of exactly its bytes (memory holds one chunk, never the object), PUT to its presigned
URL, reported to TwelveLabs and then counted in the item's session (a conditional save), in that order. So:

- a run that crashes after confirming chunk k leaves ``confirmed_chunks = k``; the next run starts at k + 1 and
  never sends a confirmed chunk again (a crash between a PUT and its save sends that one chunk once more);
- a run stops before a chunk it may not finish: when less than ``upload_chunk_reserve_seconds`` (or twice its
  slowest chunk) is left of the invocation; the caller hands the rest to the next invocation;
- a session past (or within 15 minutes of) its expiry, or one TwelveLabs no longer knows, is replaced by a new one
  (a new asset; the old one is an orphan the sweeper's orphan pass deletes) and the upload starts again at chunk 1;
- a save that loses its race (another delivery of the same event moved the item) stops the run: theirs stands.

Presigned URLs are not stored: they live an hour, so each run asks for the ones it needs (50 per call).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from videobatch.domain.uploads import MultipartUploadSession
from videobatch.errors import BadRequestError, NotFoundError, VideoBatchError
from videobatch.twelvelabs import limits

if TYPE_CHECKING:
    from videobatch.clock import Clock
    from videobatch.config import Settings
    from videobatch.domain.records import ItemRecord
    from videobatch.services.lifecycle import ItemWriter
    from videobatch.services.ports import MetricsSink, ObjectRef, ObjectStore, TwelveLabsAssets

logger = logging.getLogger(__name__)


class UploadSourceChangedError(VideoBatchError):
    """S3 returned fewer bytes than the chunk holds: the object version is not the size the item recorded."""


@dataclass(frozen=True)
class MultipartProgress:
    """Where one run left an upload."""

    item: ItemRecord | None  # the item as stored last; None: another writer moved it first (the run stopped)
    session: MultipartUploadSession | None
    chunks_sent: int

    @property
    def asset_id(self) -> str | None:
        """The asset, once every chunk is confirmed."""
        return self.session.asset_id if self.session is not None and self.session.complete else None


class _SessionLost(Exception):
    """TwelveLabs refuses the stored session (expired or unknown on its side)."""


class MultipartUploader:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        writer: ItemWriter,
        objects: ObjectStore,
        assets: TwelveLabsAssets,
        metrics: MetricsSink,
        remaining_seconds: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._writer = writer
        self._objects = objects
        self._assets = assets
        self._metrics = metrics
        self._remaining_seconds = remaining_seconds

    def upload(
        self, item: ItemRecord, ref: ObjectRef, *, filename: str, metadata: Mapping[str, Any]
    ) -> MultipartProgress:
        """Continue (or start) the item's upload for as long as the invocation allows."""
        session = item.upload_session
        if session is not None and session.complete:
            # Every chunk confirmed (a crash came before the asset was recorded): the asset exists, expired or not.
            return MultipartProgress(item=item, session=session, chunks_sent=0)
        if session is not None and not session.usable(self._clock.now()):
            self._restarted(item, session, "expired")
            return self._start(item, ref, filename, metadata, session.session_number + 1)
        if session is None:
            return self._start(item, ref, filename, metadata, 1)
        try:
            return self._send(item, ref, session, {})
        except _SessionLost:
            self._restarted(item, session, "unknown to TwelveLabs")
            return self._start(item, ref, filename, metadata, session.session_number + 1)

    def _restarted(self, item: ItemRecord, session: MultipartUploadSession, why: str) -> None:
        self._metrics.add_metric(name="UploadSessionsRestarted", unit="Count", value=1)
        logger.warning(
            "upload session %s; starting a new one",
            why,
            extra={
                "item_id": item.item_id,
                "upload_id": session.upload_id,
                "confirmed_chunks": session.confirmed_chunks,
                "total_chunks": session.total_chunks,
            },
        )

    def _start(
        self, item: ItemRecord, ref: ObjectRef, filename: str, metadata: Mapping[str, Any], session_number: int
    ) -> MultipartProgress:
        created = self._assets.create_multipart_upload(
            filename=filename, total_size=item.size_bytes, user_metadata=metadata
        )
        now = self._clock.now()
        session = MultipartUploadSession.started(
            upload_id=created.upload_id,
            asset_id=created.asset_id,
            chunk_bytes=created.chunk_size,
            total_chunks=created.total_chunks,
            total_bytes=item.size_bytes,
            upload_headers=created.upload_headers or {},
            now=now,
            expires_at=created.expires_at,
            session_number=session_number,
        )
        # Stored before the first chunk: a crash from here on resumes this session instead of opening another.
        stored = self._writer.save(item.upload_progressed(session, now=now), item)
        if stored is None:
            return MultipartProgress(item=None, session=None, chunks_sent=0)
        self._metrics.add_metric(name="UploadSessionsStarted", unit="Count", value=1)
        urls = {presigned.chunk_index: presigned.url for presigned in created.upload_urls}
        return self._send(stored, ref, session, urls, fresh=True)

    def _send(
        self,
        item: ItemRecord,
        ref: ObjectRef,
        session: MultipartUploadSession,
        urls: dict[int, str],
        *,
        fresh: bool = False,
    ) -> MultipartProgress:
        sent = 0
        slowest_seconds = 0.0
        try:
            while not session.complete:
                reserve_seconds = max(self._settings.upload_chunk_reserve_seconds, 2 * slowest_seconds)
                if self._remaining_seconds() < reserve_seconds:
                    break
                index = session.next_chunk
                if index not in urls:
                    urls.update(self._urls(session, index, lost_means_restart=not fresh and sent == 0))
                started = self._clock.now()
                start_byte, length_bytes = session.chunk_span(index)
                chunk = self._objects.read_range(ref, start_byte, length_bytes)
                if len(chunk) != length_bytes:
                    raise UploadSourceChangedError(
                        f"{ref.key}: S3 returned {len(chunk)} bytes for chunk {index}, expected {length_bytes}"
                    )
                proof = self._assets.upload_chunk(
                    urls.pop(index), chunk, chunk_index=index, upload_headers=session.upload_headers
                )
                del chunk  # one chunk in memory at a time: the next read must not overlap this one
                self._assets.report_completed_chunks(session.upload_id, [proof])
                session = session.confirmed(index)
                stored = self._writer.save(item.upload_progressed(session, now=self._clock.now()), item)
                if stored is None:
                    return MultipartProgress(item=None, session=session, chunks_sent=sent + 1)
                item, sent = stored, sent + 1
                slowest_seconds = max(slowest_seconds, (self._clock.now() - started).total_seconds())
        finally:
            if sent:
                self._metrics.add_metric(name="UploadChunksSent", unit="Count", value=sent)
        logger.info(
            "multipart upload progressed",
            extra={
                "item_id": item.item_id,
                "upload_id": session.upload_id,
                "chunks_sent": sent,
                "confirmed_chunks": session.confirmed_chunks,
                "total_chunks": session.total_chunks,
            },
        )
        return MultipartProgress(item=item, session=session, chunks_sent=sent)

    def _urls(self, session: MultipartUploadSession, start: int, *, lost_means_restart: bool) -> dict[int, str]:
        count = min(limits.MAX_PRESIGNED_URLS_PER_CALL, session.total_chunks - start + 1)
        try:
            fresh = self._assets.request_presigned_urls(session.upload_id, start=start, count=count)
        except (BadRequestError, NotFoundError) as error:
            # The first call of a resumed session: a refusal means TwelveLabs dropped it (expired early, deleted).
            if lost_means_restart:
                raise _SessionLost(str(error)) from error
            raise
        urls = {presigned.chunk_index: presigned.url for presigned in fresh.upload_urls}
        if start not in urls:
            raise VideoBatchError(f"upload {session.upload_id}: TwelveLabs returned no presigned URL for chunk {start}")
        return urls
