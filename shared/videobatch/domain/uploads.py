"""Decide what to do with a newly uploaded S3 object before anything else touches it.

Outcomes:

- ``UploadDecision.IGNORE``: the object is not an upload at all (our own result files under the results prefix, or
  a "folder" marker the S3 console creates). No item is created and nothing is reported, so writing results into
  the watched bucket can never loop or flood the failure events.
- ``UploadDecision.PROCESS``: analyse it; the plan says how to hand it to TwelveLabs (``url`` up to 4 GB,
  ``multipart`` up to 10 GB) and which container the first bytes show.
- ``RejectedUploadError(reason, message)``: a real upload that cannot be analysed; the caller records a failed item
  so the uploader learns why. Reasons: ``empty_object``, ``not_a_video_extension``, ``too_large``,
  ``not_a_video_content``.

Extension and content must both look like video, but they need not agree with each other: mislabelled containers
(an MKV named .mp4) are common and play fine, a PDF named .mp4 is not a video.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, Self
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, model_validator

from videobatch.errors import ConfigurationError, RejectedUploadError
from videobatch.twelvelabs import limits

# The API's documented session life (24 h), assumed when a session is created without an ``expires_at``.
MULTIPART_SESSION_SECONDS: Final = 24 * 3_600
# A session this close to its expiry is not continued: a chunk PUT or report could fail half-way through.
MULTIPART_EXPIRY_MARGIN_SECONDS: Final = 15 * 60


class UploadDecision(StrEnum):
    PROCESS = "process"
    IGNORE = "ignore"


class IgnoreReason(StrEnum):
    RESULTS_PREFIX = "results_prefix"
    DIRECTORY_MARKER = "directory_marker"


class UploadMethod(StrEnum):
    URL = "url"  # the platform fetches a presigned S3 URL (video up to 4 GB)
    MULTIPART = "multipart"  # we stream the object in chunks (up to 10 GB)


class Container(StrEnum):
    ISO_BMFF = "iso_bmff"  # mp4, mov, m4v, 3gp
    MATROSKA = "matroska"  # mkv, webm
    AVI = "avi"
    MPEG_TS = "mpeg_ts"
    MPEG_PS = "mpeg_ps"
    FLV = "flv"
    ASF = "asf"  # wmv, asf


VIDEO_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {
        "mp4", "m4v", "mov", "qt", "3gp", "3g2",
        "mkv", "webm",
        "avi",
        "ts", "mts", "m2ts",
        "mpg", "mpeg", "vob",
        "flv",
        "wmv", "asf",
    }
)  # fmt: skip

# The ingest reads this many leading bytes (a ranged GET) for sniffing; M2TS needs offset 196.
HEAD_BYTES_NEEDED: Final = 512

_TS_PACKET_BYTES: Final = 188
_M2TS_PACKET_BYTES: Final = 192
_ASF_GUID: Final = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
# ISO-BMFF also carries still images and audio; these major brands are not video.
_NON_VIDEO_BRANDS: Final[frozenset[bytes]] = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis", b"crx ", b"M4A ", b"M4B ", b"M4P "}
    | {b"jp2 ", b"jpx ", b"jpm "}
)
# Old QuickTime files start with a top-level atom other than ftyp.
_QUICKTIME_FIRST_ATOMS: Final[frozenset[bytes]] = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


class UploadPlan(BaseModel):
    """What to do with one uploaded object; ``method`` and ``container`` are set exactly when it is processed."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    decision: UploadDecision
    size_bytes: int = Field(ge=0)
    method: UploadMethod | None = None
    container: Container | None = None
    ignore_reason: IgnoreReason | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        has_route = (self.method is not None, self.container is not None, self.ignore_reason is None)
        expected = (True, True, True) if self.decision is UploadDecision.PROCESS else (False, False, False)
        if has_route != expected:
            raise ValueError("process plans need method and container; ignore plans need only ignore_reason")
        return self


def event_key_candidates(key_in_event: str) -> tuple[str, ...]:
    """The object keys an S3 notification's key may stand for, most likely first.

    S3 notifications URL-encode keys the way HTML forms do (``my video.mp4`` arrives as ``my+video.mp4``,
    ``café`` as ``caf%C3%A9``, a literal ``+`` as ``%2B``), so the decoded key comes first; the key exactly as
    delivered follows when it differs, for a producer that sends keys unencoded (a hand-made or replayed event).
    """
    decoded = unquote_plus(key_in_event)
    return (decoded,) if decoded == key_in_event else (decoded, key_in_event)


def inspect_upload(
    *,
    key: str,
    size_bytes: int,
    head_bytes: bytes,
    results_prefix: str,
    url_upload_max_bytes: int = limits.MAX_URL_UPLOAD_BYTES,
) -> UploadPlan:
    """Classify an uploaded object from its key, size and first bytes (at least HEAD_BYTES_NEEDED when that big).

    Objects up to ``url_upload_max_bytes`` go by presigned URL (TwelveLabs fetches them), larger ones are pushed by
    multipart upload; 0 pushes every object (an endpoint that cannot reach the bucket, as the real API cannot reach
    the local stack's S3)."""
    if not results_prefix:
        # With an empty prefix every key would be "ours": refuse to guess rather than ignore all uploads.
        raise ConfigurationError("results_prefix must not be empty: results would be indistinguishable from uploads")
    if key.startswith(results_prefix):
        return UploadPlan(
            decision=UploadDecision.IGNORE, size_bytes=size_bytes, ignore_reason=IgnoreReason.RESULTS_PREFIX
        )
    if key.endswith("/"):
        if size_bytes == 0:  # what the S3 console writes for "Create folder"
            return UploadPlan(
                decision=UploadDecision.IGNORE, size_bytes=size_bytes, ignore_reason=IgnoreReason.DIRECTORY_MARKER
            )
        raise RejectedUploadError(
            "not_a_video_extension",
            f"{key} ends in '/' (a folder name) but holds {size_bytes} bytes; upload the video under a file name "
            f"with one of {', '.join(sorted(VIDEO_EXTENSIONS))}",
        )
    if size_bytes <= 0:
        raise RejectedUploadError("empty_object", f"{key} is empty (0 bytes); upload the video again")
    _check_extension(key)
    method = _upload_method(key, size_bytes, url_upload_max_bytes)
    container = sniff_container(head_bytes)
    if container is None:
        raise RejectedUploadError(
            "not_a_video_content",
            f"{key} has a video extension but its first bytes match no supported video container "
            "(MP4/MOV, MKV/WebM, AVI, MPEG-TS, MPEG-PS, FLV, WMV)",
        )
    return UploadPlan(decision=UploadDecision.PROCESS, size_bytes=size_bytes, method=method, container=container)


def _check_extension(key: str) -> None:
    name = key.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in VIDEO_EXTENSIONS:
        shown = f".{extension}" if extension else "no extension"
        if name.endswith("."):
            shown = "a name ending in '.' (an empty extension)"
        raise RejectedUploadError(
            "not_a_video_extension",
            f"{key} has {shown}; expected one of {', '.join(sorted(VIDEO_EXTENSIONS))}",
        )


def _upload_method(key: str, size_bytes: int, url_upload_max_bytes: int) -> UploadMethod:
    if size_bytes <= min(url_upload_max_bytes, limits.MAX_URL_UPLOAD_BYTES):
        return UploadMethod.URL
    if size_bytes <= limits.MAX_MULTIPART_UPLOAD_BYTES:
        return UploadMethod.MULTIPART
    raise RejectedUploadError(
        "too_large",
        f"{key} is {size_bytes / 1e9:.2f} GB; TwelveLabs accepts at most "
        f"{limits.MAX_MULTIPART_UPLOAD_BYTES / 1e9:g} GB: split or re-encode it",
    )


def sniff_container(head: bytes) -> Container | None:
    """The video container the leading bytes belong to, or None when they match none."""
    for container, matches in _SNIFFERS:
        if matches(head):
            return container
    return None


def _is_iso_bmff(head: bytes) -> bool:
    atom = head[4:8]
    if atom == b"ftyp":
        return head[8:12] not in _NON_VIDEO_BRANDS
    return atom in _QUICKTIME_FIRST_ATOMS


def _is_mpeg_ts(head: bytes) -> bool:
    # One sync byte is too weak (0x47 is "G"); require the next packet's too.
    ts = head[:1] == b"\x47" and head[_TS_PACKET_BYTES : _TS_PACKET_BYTES + 1] == b"\x47"
    # M2TS (Blu-ray, AVCHD .mts) prefixes each packet with a 4-byte timecode.
    m2ts = head[4:5] == b"\x47" and head[4 + _M2TS_PACKET_BYTES : 5 + _M2TS_PACKET_BYTES] == b"\x47"
    return ts or m2ts


_SNIFFERS: Final[tuple[tuple[Container, Callable[[bytes], bool]], ...]] = (
    (Container.ISO_BMFF, _is_iso_bmff),
    (Container.MATROSKA, lambda head: head.startswith(b"\x1a\x45\xdf\xa3")),
    (Container.AVI, lambda head: head[:4] == b"RIFF" and head[8:12] == b"AVI "),
    (Container.MPEG_PS, lambda head: head.startswith(b"\x00\x00\x01\xba")),
    (Container.FLV, lambda head: head.startswith(b"FLV\x01")),
    (Container.ASF, lambda head: head.startswith(_ASF_GUID)),
    (Container.MPEG_TS, _is_mpeg_ts),
)


class MultipartUploadSession(BaseModel):
    """A multipart upload under way, stored with its item (``ItemRecord.upload_session``) so that the next ingest
    invocation continues it where the last one stopped.

    Chunks go up in order and each is reported to TwelveLabs before it is counted here, so the confirmed chunks are
    always the prefix ``1..confirmed_chunks``: a crash after confirming chunk k resumes at k + 1 and never sends a
    confirmed chunk again (a crash between a chunk's PUT and its save sends that one chunk again, harmlessly).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    upload_id: str = Field(min_length=1)
    asset_id: str = Field(min_length=1)
    chunk_bytes: int = Field(gt=0)
    total_chunks: int = Field(ge=1)
    total_bytes: int = Field(gt=0)
    confirmed_chunks: int = Field(default=0, ge=0)
    started_at: datetime
    expires_at: datetime
    # Sessions this item started (1 for the first); an expired one is replaced by a new one, counted here.
    session_number: int = Field(default=1, ge=1)
    # Headers the API asked every chunk PUT to carry (none today; kept so a resumed run sends them too).
    upload_headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.confirmed_chunks > self.total_chunks:
            raise ValueError("confirmed_chunks cannot exceed total_chunks")
        if not (self.total_chunks - 1) * self.chunk_bytes < self.total_bytes <= self.total_chunks * self.chunk_bytes:
            raise ValueError("total_chunks chunks of chunk_bytes must hold total_bytes, the last one partly")
        return self

    @classmethod
    def started(
        cls,
        *,
        upload_id: str,
        asset_id: str,
        chunk_bytes: int,
        total_chunks: int,
        total_bytes: int,
        now: datetime,
        expires_at: datetime | None,
        session_number: int = 1,
        upload_headers: dict[str, str] | None = None,
    ) -> MultipartUploadSession:
        return cls(
            upload_id=upload_id,
            asset_id=asset_id,
            chunk_bytes=chunk_bytes,
            total_chunks=total_chunks,
            total_bytes=total_bytes,
            started_at=now,
            expires_at=expires_at or now + timedelta(seconds=MULTIPART_SESSION_SECONDS),
            session_number=session_number,
            upload_headers=upload_headers or {},
        )

    @property
    def next_chunk(self) -> int:
        """The first unconfirmed chunk (1-based); ``total_chunks + 1`` once every chunk is confirmed."""
        return self.confirmed_chunks + 1

    @property
    def complete(self) -> bool:
        return self.confirmed_chunks >= self.total_chunks

    @property
    def confirmed_bytes(self) -> int:
        return min(self.confirmed_chunks * self.chunk_bytes, self.total_bytes)

    def usable(self, now: datetime) -> bool:
        """Whether the session may be continued at ``now`` (not expired, nor about to)."""
        return now + timedelta(seconds=MULTIPART_EXPIRY_MARGIN_SECONDS) < self.expires_at

    def chunk_span(self, chunk_index: int) -> tuple[int, int]:
        """(first byte, length in bytes) of chunk ``chunk_index`` (1-based) in the object."""
        if not 1 <= chunk_index <= self.total_chunks:
            raise ValueError(f"chunk {chunk_index} is outside 1..{self.total_chunks}")
        start = (chunk_index - 1) * self.chunk_bytes
        return start, min(self.chunk_bytes, self.total_bytes - start)

    def confirmed(self, chunk_index: int) -> MultipartUploadSession:
        """The session with chunk ``chunk_index`` confirmed; only the next chunk can be (the prefix stays whole)."""
        if chunk_index != self.next_chunk:
            raise ValueError(f"chunk {chunk_index} confirmed out of order; the next is {self.next_chunk}")
        return self.model_copy(update={"confirmed_chunks": chunk_index})
