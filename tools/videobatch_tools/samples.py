"""Real sample media for the local stack, generated with PyAV (no downloads, no fixtures in git).

The videos are genuine MP4 files that any demuxer accepts and that meet TwelveLabs' video requirements by
default (360x360, the smallest resolution the platform accepts), yet cost almost nothing to write: only the first
``LOOP_FRAMES`` frames are encoded, as one closed group of pictures (an IDR frame, then P frames, no B frames),
and the rest of the video repeats those encoded packets with advancing timestamps. Each repeat starts at an IDR
frame, so the stream stays valid H.264 (or MPEG-4 Part 2) from start to end, and a 4 h video writes in a
fraction of a second and weighs a few hundred kilobytes, so tests and the simulation can use realistic durations
without realistic cost.

Content moves (a square sliding over a coloured background, looping every ``LOOP_FRAMES`` frames) and is derived
from ``seed``, so two seeds give different bytes (and therefore different S3 ETags and content hashes), while one
seed always gives the same picture.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import OutputContainer
from av.video.plane import VideoPlane

from twelvelabs_emulator.media import quiet_libav_logs

AUDIO_SAMPLE_RATE_HZ = 8_000
# AAC encodes fixed frames of 1024 samples.
_AUDIO_FRAME_SAMPLES = 1_024
_AUDIO_TIME_BASE = Fraction(1, AUDIO_SAMPLE_RATE_HZ)
_TONE_FRAMES = 8
_SILENT_LEAD_FRAMES = 4
_MAX_RATE_DENOMINATOR = 1_000
# Frames actually encoded; longer videos repeat them (see the module docstring).
LOOP_FRAMES = 48
# The smallest video TwelveLabs accepts (360x360 to 5184x2160, aspect ratio 1:1 to 2.4:1).
DEFAULT_WIDTH = 360
DEFAULT_HEIGHT = 360
# The first bytes of an ISO-BMFF file: a 'ftyp' box declaring the isom brand, as a real MP4 starts.
_MP4_FTYP_BOX = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def preferred_video_codec() -> str:
    """H.264 when PyAV's bundled ffmpeg has libx264 (it usually does), else MPEG-4 Part 2."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_sample_video(
    path: Path,
    *,
    duration_seconds: float,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    fps: float = 8,
    audio: bool = False,
    seed: int = 0,
    start_seconds: float = 0.0,
) -> Path:
    """Write an MP4 of ``duration_seconds`` with moving, seed-derived content; returns ``path``.

    Encoding cost is bounded by ``LOOP_FRAMES`` frames whatever the duration; muxing costs a few microseconds per
    frame, so long videos still want a low rate (``fps=0.2``). ``start_seconds`` (video only, rounded to a whole
    frame) makes the first frame's timestamp non-zero, as in a clip cut from a longer recording: the container then
    reports that start time, and the duration still counts from the first frame.
    """
    return write_video_with_codec(
        path,
        codec=preferred_video_codec(),
        duration_seconds=duration_seconds,
        width=width,
        height=height,
        fps=fps,
        audio=audio,
        seed=seed,
        start_seconds=start_seconds,
    )


def write_video_with_codec(
    path: Path,
    *,
    codec: str,
    duration_seconds: float,
    width: int,
    height: int,
    fps: float,
    audio: bool,
    seed: int,
    start_seconds: float = 0.0,
) -> Path:
    """``write_sample_video`` with an explicit encoder, so both the H.264 and the fallback path are testable."""
    _check_video_args(codec=codec, duration_seconds=duration_seconds, width=width, height=height, fps=fps)
    if start_seconds < 0 or (start_seconds and audio):
        raise ValueError(f"start_seconds must be >= 0 and needs audio=False, got {start_seconds} (audio={audio})")
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(_MAX_RATE_DENOMINATOR)
    # At least one frame; the last frame lasts 1/fps, so n frames span n/fps seconds.
    frame_count = max(1, round(duration_seconds * rate))
    first_pts = round(start_seconds * rate)
    with quiet_libav_logs(), av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream(codec, rate=rate, options=_closed_gop_options(codec))
        assert isinstance(video, av.VideoStream)  # checked by _check_video_args; narrows the type
        video.width = width
        video.height = height
        video.pix_fmt = "yuv420p"
        audio_stream = _add_audio_stream(container) if audio else None
        _write_video(container, video, rate=rate, frame_count=frame_count, first_pts=first_pts, seed=seed)
        if audio_stream is not None:
            _write_tone(container, audio_stream, duration_seconds=frame_count / rate, seed=seed)
    return path


def _check_video_args(*, codec: str, duration_seconds: float, width: int, height: int, fps: float) -> None:
    if not duration_seconds > 0:
        raise ValueError(f"duration_seconds must be positive, got {duration_seconds}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if av.Codec(codec, "w").type != "video":
        raise ValueError(f"{codec} is not a video encoder")
    # yuv420p subsamples chroma by two in each direction, so encoders need even dimensions.
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise ValueError(f"width and height must be even and >= 2, got {width}x{height}")


def _closed_gop_options(codec: str) -> dict[str, str]:
    """Encoder options for one closed group of ``LOOP_FRAMES`` pictures: a key frame first, no B frames."""
    if codec == "libx264":
        return {
            "preset": "veryfast",
            "x264-params": f"keyint={LOOP_FRAMES}:min-keyint={LOOP_FRAMES}:scenecut=0:bframes=0",
        }
    return {"g": str(LOOP_FRAMES), "bf": "0"}


def _write_video(
    container: OutputContainer,
    video: av.VideoStream,
    *,
    rate: Fraction,
    frame_count: int,
    first_pts: int,
    seed: int,
) -> None:
    """Encode up to ``LOOP_FRAMES`` frames, then repeat their packets until ``frame_count`` frames are written."""
    encoded: list[tuple[bytes, bool]] = []
    frames = _video_frames(
        width=video.width, height=video.height, rate=rate, frame_count=min(frame_count, LOOP_FRAMES), seed=seed
    )
    for frame in frames:
        frame.pts = (frame.pts or 0) + first_pts
        encoded.extend(_mux_all(container, video.encode(frame)))
    encoded.extend(_mux_all(container, video.encode(None)))
    if frame_count <= LOOP_FRAMES:
        return
    if len(encoded) != LOOP_FRAMES or not encoded[0][1]:
        raise RuntimeError(f"the encoder did not produce one closed group of {LOOP_FRAMES} pictures")
    frame_time_base = 1 / rate
    for index in range(LOOP_FRAMES, frame_count):
        payload, is_keyframe = encoded[index % LOOP_FRAMES]
        packet = av.Packet(payload)
        packet.pts = packet.dts = first_pts + index
        packet.duration = 1
        packet.time_base = frame_time_base
        packet.is_keyframe = is_keyframe
        packet.stream = video
        container.mux(packet)


def _mux_all(container: OutputContainer, packets: list[av.Packet[Any]]) -> Iterator[tuple[bytes, bool]]:
    """Mux ``packets``, yielding each one's bytes and key-frame flag, read before muxing rescales it."""
    for packet in packets:
        kept = (bytes(packet), packet.is_keyframe)
        container.mux(packet)
        yield kept


def _video_frames(*, width: int, height: int, rate: Fraction, frame_count: int, seed: int) -> Iterator[av.VideoFrame]:
    rng = random.Random(seed)
    background = (rng.randrange(16, 236), rng.randrange(16, 240), rng.randrange(16, 240))
    square_luma = 255 - background[0]
    square_side = max(2, min(width, height) // 4)
    step_x, step_y = rng.randrange(1, width), rng.randrange(1, height)
    frame_time_base = 1 / rate
    for index in range(frame_count):
        frame = av.VideoFrame(width, height, "yuv420p")
        left = (index * step_x) % (width - square_side + 1)
        top = (index * step_y) % (height - square_side + 1)
        for plane_index, plane in enumerate(frame.planes):
            # Chroma planes are half size; the square only marks luma, the colour comes from the background.
            marked = plane_index == 0
            plane.update(
                _plane_bytes(
                    plane,
                    fill=background[plane_index],
                    square=(left, top, square_side, square_luma) if marked else None,
                )
            )
        frame.pts = index
        frame.time_base = frame_time_base
        yield frame


def _plane_bytes(plane: VideoPlane, *, fill: int, square: tuple[int, int, int, int] | None) -> bytes:
    # A plane's rows may be padded beyond its width (line_size); update() wants the whole padded buffer.
    row_count = plane.buffer_size // plane.line_size
    rows = bytearray([fill]) * plane.buffer_size
    if square is not None:
        left, top, side, value = square
        for row in range(top, min(top + side, row_count)):
            start = row * plane.line_size + left
            rows[start : start + side] = bytes([value]) * side
    return bytes(rows)


def _add_audio_stream(container: OutputContainer) -> av.AudioStream:
    stream = container.add_stream("aac", rate=AUDIO_SAMPLE_RATE_HZ)
    stream.layout = "mono"
    return stream


def _write_tone(container: OutputContainer, stream: av.AudioStream, *, duration_seconds: Fraction, seed: int) -> None:
    """About a second of a seed-pitched tone, then silence until the end of the video.

    Encoding hours of audio is what made long samples slow and large, so only the opening is encoded; the
    silence after it repeats one encoded silent AAC packet (a few bytes, independently decodable) with
    advancing timestamps. The result decodes cleanly from start to end.
    """
    total_frames = math.ceil(duration_seconds * AUDIO_SAMPLE_RATE_HZ / _AUDIO_FRAME_SAMPLES)
    # The encoder lags a frame or two behind; the extra silent frames make its last output a silent packet.
    encoded_frames = min(total_frames, _TONE_FRAMES + _SILENT_LEAD_FRAMES)
    last_packet = None
    for index in range(encoded_frames):
        tone = _tone_payload(seed) if index < _TONE_FRAMES else bytes(_AUDIO_FRAME_SAMPLES * 4)
        for packet in stream.encode(_audio_frame(index, tone)):
            container.mux(packet)
            last_packet = packet
    if encoded_frames == total_frames or last_packet is None or last_packet.pts is None:
        container.mux(stream.encode(None))
        return
    _repeat_silence(
        container,
        stream,
        bytes(last_packet),
        start_sample=last_packet.pts + _AUDIO_FRAME_SAMPLES,
        end_sample=total_frames * _AUDIO_FRAME_SAMPLES,
    )


def _repeat_silence(
    container: OutputContainer, stream: av.AudioStream, silent_payload: bytes, *, start_sample: int, end_sample: int
) -> None:
    for first_sample in range(start_sample, end_sample, _AUDIO_FRAME_SAMPLES):
        packet = av.Packet(silent_payload)
        packet.pts = packet.dts = first_sample
        packet.duration = _AUDIO_FRAME_SAMPLES
        packet.time_base = _AUDIO_TIME_BASE
        packet.stream = stream
        container.mux(packet)


def _audio_frame(index: int, payload: bytes) -> av.AudioFrame:
    frame = av.AudioFrame(format="fltp", layout="mono", samples=_AUDIO_FRAME_SAMPLES)
    frame.sample_rate = AUDIO_SAMPLE_RATE_HZ
    frame.pts = index * _AUDIO_FRAME_SAMPLES
    frame.time_base = _AUDIO_TIME_BASE
    frame.planes[0].update(payload)
    return frame


def _tone_payload(seed: int) -> bytes:
    frequency_hz = 220 + (seed % 24) * 20
    samples = (
        0.1 * math.sin(2 * math.pi * frequency_hz * i / AUDIO_SAMPLE_RATE_HZ) for i in range(_AUDIO_FRAME_SAMPLES)
    )
    return struct.pack(f"<{_AUDIO_FRAME_SAMPLES}f", *samples)


def write_non_video(path: Path, *, size_bytes: int = 2048) -> Path:
    """Write ``size_bytes`` of plain text that no demuxer recognises as media (whatever the file name says)."""
    if size_bytes < 0:
        raise ValueError(f"size_bytes must be >= 0, got {size_bytes}")
    path.parent.mkdir(parents=True, exist_ok=True)
    line = b"This is a plain text document, not a video. It exists to be rejected by the pipeline.\n"
    body = (line * (size_bytes // len(line) + 1))[:size_bytes]
    path.write_bytes(body)
    return path


def write_corrupt_video(path: Path) -> Path:
    """Write a file that starts like an MP4 (a valid 'ftyp' box) and then holds garbage, so probing fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A box header that claims far more bytes than follow, then bytes that form no valid box.
    truncated_moov = b"\x00\x10\x00\x00moov" + bytes(range(256)) * 4
    path.write_bytes(_MP4_FTYP_BOX + truncated_moov)
    return path
