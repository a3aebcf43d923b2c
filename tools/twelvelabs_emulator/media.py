"""Probe an uploaded file the way the platform does when it indexes an asset: really open it with PyAV.

The emulator turns a ``MediaProbeError`` into a failed asset whose ``error.message`` is the exception's text,
so messages are written for a person reading an API response.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer
from pydantic import BaseModel, ConfigDict

from twelvelabs_emulator import limits

# ffmpeg happily "plays" text files (the tty demuxer renders them as ANSI art) and single pictures
# (image2 and the *_pipe demuxers). Neither is a video the platform would index.
_TEXT_DEMUXERS = frozenset({"tty", "bin", "xbin", "adf", "idf"})
_IMAGE_DEMUXERS = frozenset({"image2", "gif", "webp"})
_AV_TIME_BASE = Fraction(1, 1_000_000)


class MediaProbeError(Exception):
    """The file is not a video the platform could index; the message says why, for a person."""


class MediaInfo(BaseModel):
    """What the platform reports about a ready asset (``duration``, ``size``, ``technical_metadata``)."""

    model_config = ConfigDict(frozen=True)

    duration_seconds: float
    size_bytes: int
    video_fps: float
    video_width: int
    video_height: int
    video_codec: str
    has_audio: bool
    format_name: str
    # The first frame's timestamp (the container's start time): 0 for most files, not for clips cut from streams.
    start_seconds: float = 0.0


@contextmanager
def quiet_libav_logs() -> Iterator[None]:
    """Keep ffmpeg's own log lines out of stderr and Python logging while media is opened or written.

    PyAV ignores ffmpeg logs by default, but any code in the process may turn them on (``av.logging.set_level``);
    a thread-local capture swallows them for this block only, without touching the process-wide level.
    """
    with av.logging.Capture(local=True):
        yield


def probe_media(path: Path) -> MediaInfo:
    """Open ``path`` with PyAV and describe its first video stream; raises MediaProbeError if it is no video."""
    size_bytes = _size_bytes(path)
    with quiet_libav_logs():
        try:
            with av.open(str(path), mode="r") as container:
                return _describe(container, size_bytes=size_bytes)
        except (av.FFmpegError, OSError) as exc:
            raise MediaProbeError(f"unrecognised or corrupt media: {_reason(exc)}") from exc


def requirement_problem(info: MediaInfo) -> str | None:
    """Why the platform would refuse this video (resolution or aspect ratio), for a person; None when it is fine.

    360x360 to 5184x2160 in either orientation: the short side 360 to 2160 pixels, the long side at most 5184,
    and the long side at most 2.4 times the short one.
    """
    width, height = info.video_width, info.video_height
    short_side, long_side = min(width, height), max(width, height)
    if not (
        limits.MIN_VIDEO_SIDE_PIXELS <= short_side <= limits.MAX_VIDEO_SHORT_SIDE_PIXELS
        and long_side <= limits.MAX_VIDEO_LONG_SIDE_PIXELS
    ):
        return (
            f"unsupported resolution {width}x{height}: videos must be between 360x360 and 5184x2160 "
            "(either orientation)"
        )
    if long_side > short_side * limits.MAX_VIDEO_ASPECT_RATIO:
        return f"unsupported aspect ratio {width}:{height}: videos must be between 1:1 and 2.4:1 (either orientation)"
    return None


def _size_bytes(path: Path) -> int:
    try:
        size_bytes = path.stat().st_size
    except FileNotFoundError as exc:
        raise MediaProbeError(f"file not found: {path.name}") from exc
    if size_bytes == 0:
        raise MediaProbeError("empty file (0 bytes)")
    return size_bytes


def _describe(container: InputContainer, *, size_bytes: int) -> MediaInfo:
    format_name: str = container.format.name
    if set(format_name.split(",")) & _TEXT_DEMUXERS:
        raise MediaProbeError(f"not a video: the file is text ({format_name})")
    if format_name in _IMAGE_DEMUXERS or format_name.endswith("_pipe"):
        raise MediaProbeError(f"not a video: the file is a still image ({format_name})")
    if not container.streams:
        # Typical of a truncated file: the header parsed, the track boxes did not.
        raise MediaProbeError(f"unrecognised or corrupt media: no streams found ({format_name})")
    if not container.streams.video:
        raise MediaProbeError("no video stream")
    video = container.streams.video[0]
    duration_seconds = _duration_seconds(container, video)
    if duration_seconds <= 0:
        raise MediaProbeError("the video has no duration (zero length or unknown)")
    _require_decodable_frame(container, video)
    return MediaInfo(
        duration_seconds=duration_seconds,
        size_bytes=size_bytes,
        video_fps=float(video.average_rate or video.guessed_rate or 0),
        video_width=int(video.codec_context.width),
        video_height=int(video.codec_context.height),
        video_codec=str(video.codec_context.name),
        has_audio=bool(container.streams.audio),
        format_name=format_name,
        start_seconds=max(0.0, float((container.start_time or 0) * _AV_TIME_BASE)),
    )


def _duration_seconds(container: InputContainer, video: av.VideoStream) -> float:
    # The container's duration covers every stream; a stream's own duration is the fallback for formats
    # whose header does not carry one.
    if container.duration is not None and container.duration > 0:
        return float(container.duration * _AV_TIME_BASE)
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    return 0.0


def _require_decodable_frame(container: InputContainer, video: av.VideoStream) -> None:
    """A header can be intact while the sample data is missing or garbage: insist on decoding one frame."""
    cause: av.FFmpegError | None = None
    try:
        first_frame = next(iter(container.decode(video)), None)
    except av.FFmpegError as exc:
        first_frame, cause = None, exc
    if first_frame is None:
        detail = _reason(cause) if cause is not None else "no frame in the stream"
        raise MediaProbeError(f"unrecognised or corrupt media: the video data cannot be decoded ({detail})") from cause


def _reason(exc: BaseException) -> str:
    # PyAV errors carry the ffmpeg text in strerror; str() would add the errno and the full path.
    strerror = getattr(exc, "strerror", None)
    return str(strerror) if strerror else exc.__class__.__name__
