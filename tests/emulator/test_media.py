import logging
from pathlib import Path
from typing import Any

import av
import pytest

from twelvelabs_emulator.media import MediaInfo, MediaProbeError, probe_media
from videobatch_tools.samples import write_corrupt_video, write_non_video, write_sample_video


def test_probe_reports_the_real_properties(tmp_path: Path) -> None:
    path = write_sample_video(tmp_path / "clip.mp4", duration_seconds=6, width=48, height=32, fps=10, seed=4)

    info = probe_media(path)

    assert info.duration_seconds == pytest.approx(6.0, abs=0.05)
    assert info.size_bytes == path.stat().st_size
    assert (info.video_width, info.video_height) == (48, 32)
    assert info.video_fps == pytest.approx(10.0)
    assert info.video_codec in {"h264", "mpeg4"}
    assert info.has_audio is False
    assert "mp4" in info.format_name


def test_probe_sees_audio(tmp_path: Path) -> None:
    path = write_sample_video(tmp_path / "audio.mp4", duration_seconds=3, audio=True)
    assert probe_media(path).has_audio is True


def test_probe_of_two_and_a_half_hours(tmp_path: Path) -> None:
    path = write_sample_video(tmp_path / "long.mp4", duration_seconds=9_000, width=16, height=16, fps=0.2)
    info = probe_media(path)
    assert info.duration_seconds == pytest.approx(9_000, abs=0.1)
    assert info.video_fps == pytest.approx(0.2)


def test_media_info_is_frozen(tmp_path: Path) -> None:
    info = probe_media(write_sample_video(tmp_path / "clip.mp4", duration_seconds=1))
    with pytest.raises(ValueError, match="frozen"):
        info.duration_seconds = 2.0  # type: ignore[misc]
    assert MediaInfo.model_validate(info.model_dump()) == info


@pytest.mark.parametrize("name", ["notes.mp4", "notes.bin"])
def test_text_with_a_video_name_is_unrecognised(tmp_path: Path, name: str) -> None:
    path = write_non_video(tmp_path / name)
    with pytest.raises(MediaProbeError, match="unrecognised or corrupt media: Invalid data"):
        probe_media(path)


def test_text_file_rendered_as_ansi_art_is_not_a_video(tmp_path: Path) -> None:
    # ffmpeg's tty demuxer opens .txt files as a "video"; the platform would not.
    path = write_non_video(tmp_path / "notes.txt")
    with pytest.raises(MediaProbeError, match="not a video: the file is text"):
        probe_media(path)


def test_still_image_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "picture.png"
    with av.open(str(path), mode="w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "rgb24"
        frame = av.VideoFrame(16, 16, "rgb24")
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(MediaProbeError, match="still image"):
        probe_media(path)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "voice.m4a"
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8_000)
        stream.layout = "mono"
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1_024)
        frame.sample_rate = 8_000
        frame.pts = 0
        frame.planes[0].update(bytes(4_096))
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(MediaProbeError, match=r"^no video stream$"):
        probe_media(path)


def test_corrupt_mp4_is_unrecognised(tmp_path: Path) -> None:
    with pytest.raises(MediaProbeError, match="unrecognised or corrupt media"):
        probe_media(write_corrupt_video(tmp_path / "broken.mp4"))


def test_truncated_mp4_is_unrecognised(tmp_path: Path) -> None:
    body = write_sample_video(tmp_path / "clip.mp4", duration_seconds=3).read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(body[: len(body) // 3])
    with pytest.raises(MediaProbeError, match="unrecognised or corrupt media"):
        probe_media(truncated)


def test_intact_header_with_garbage_frames_is_corrupt(tmp_path: Path) -> None:
    body = bytearray(write_sample_video(tmp_path / "clip.mp4", duration_seconds=3, seed=2).read_bytes())
    mdat_at = body.find(b"mdat")
    mdat_size = int.from_bytes(body[mdat_at - 4 : mdat_at], "big")
    body[mdat_at + 4 : mdat_at - 4 + mdat_size] = b"\xff" * (mdat_size - 8)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(body))
    with pytest.raises(MediaProbeError, match="cannot be decoded"):
        probe_media(damaged)


def test_video_without_frames_has_no_duration(tmp_path: Path) -> None:
    path = tmp_path / "empty.avi"
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height = 16, 16
        container.start_encoding()
    with pytest.raises(MediaProbeError, match="no duration"):
        probe_media(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(MediaProbeError, match="empty file"):
        probe_media(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaProbeError, match=r"file not found: gone\.mp4"):
        probe_media(tmp_path / "gone.mp4")


def test_ffmpeg_logs_stay_quiet_even_when_enabled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    corrupt = write_corrupt_video(tmp_path / "broken.mp4")
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.VERBOSE)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(MediaProbeError):
            probe_media(corrupt)
    finally:
        av.logging.set_level(previous)
    assert caplog.records == []
    assert capfd.readouterr().err == ""


def test_the_same_bytes_are_probed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from twelvelabs_emulator import state as state_module
    from twelvelabs_emulator.server import EmulatorServer

    calls: list[Path] = []
    real = state_module.probe_media

    def counting(path: Path) -> Any:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(state_module, "probe_media", counting)
    video = write_sample_video(tmp_path / "a.mp4", duration_seconds=3.0)
    copy = tmp_path / "b.mp4"
    copy.write_bytes(video.read_bytes())
    other = write_sample_video(tmp_path / "c.mp4", duration_seconds=4.0)
    server = EmulatorServer()
    try:
        first, again, different = (server.state._probe(path) for path in (video, copy, other))
    finally:
        server.stop()
    assert first == again
    assert first[0] is not None
    assert different[0] is not None
    assert different[0].duration_seconds != first[0].duration_seconds
    assert calls == [video, other]
