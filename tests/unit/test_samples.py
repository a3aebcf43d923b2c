from pathlib import Path

import av
import pytest

from twelvelabs_emulator.media import probe_media
from videobatch_tools.samples import (
    AUDIO_SAMPLE_RATE_HZ,
    preferred_video_codec,
    write_corrupt_video,
    write_non_video,
    write_sample_video,
    write_video_with_codec,
)

TWO_AND_A_HALF_HOURS_SECONDS = 9_000.0


def test_short_video_has_the_requested_shape(tmp_path: Path) -> None:
    path = write_sample_video(tmp_path / "clip.mp4", duration_seconds=4, width=64, height=48, fps=8, seed=1)

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert container.duration is not None
        assert container.duration / 1_000_000 == pytest.approx(4.0, abs=0.01)
        assert (video.codec_context.width, video.codec_context.height) == (64, 48)
        assert float(video.average_rate or 0) == pytest.approx(8.0)
        assert sum(1 for _ in container.decode(video)) == 32
        assert not container.streams.audio


def test_preferred_codec_is_h264_when_bundled(tmp_path: Path) -> None:
    path = write_sample_video(tmp_path / "clip.mp4", duration_seconds=1)
    expected = "h264" if "libx264" in av.codecs_available else "mpeg4"
    assert preferred_video_codec() in {"libx264", "mpeg4"}
    assert probe_media(path).video_codec == expected


def test_mpeg4_fallback_writes_a_playable_video(tmp_path: Path) -> None:
    path = write_video_with_codec(
        tmp_path / "fallback.mp4", codec="mpeg4", duration_seconds=3, width=32, height=32, fps=4, audio=False, seed=2
    )
    info = probe_media(path)
    assert info.video_codec == "mpeg4"
    assert info.duration_seconds == pytest.approx(3.0, abs=0.01)


def test_same_seed_same_bytes_different_seed_different_bytes(tmp_path: Path) -> None:
    first = write_sample_video(tmp_path / "a.mp4", duration_seconds=3, seed=7).read_bytes()
    again = write_sample_video(tmp_path / "b.mp4", duration_seconds=3, seed=7).read_bytes()
    other = write_sample_video(tmp_path / "c.mp4", duration_seconds=3, seed=8).read_bytes()
    assert first == again
    assert first != other


def test_content_moves_between_frames(tmp_path: Path) -> None:
    path = write_sample_video(tmp_path / "moving.mp4", duration_seconds=1, width=32, height=32, fps=4, seed=3)
    with av.open(str(path)) as container:
        lumas = [bytes(frame.planes[0]) for frame in container.decode(video=0)]
    assert len(set(lumas)) > 1


def test_odd_dimensions_are_rejected_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        write_sample_video(tmp_path / "odd.mp4", duration_seconds=1, width=15, height=16)
    assert not (tmp_path / "odd.mp4").exists()


@pytest.mark.parametrize(("duration_seconds", "fps"), [(0, 8), (-1, 8), (1, 0)])
def test_non_positive_duration_or_rate_is_rejected(tmp_path: Path, duration_seconds: float, fps: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        write_sample_video(tmp_path / "bad.mp4", duration_seconds=duration_seconds, fps=fps)


def test_audio_codec_as_video_encoder_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a video encoder"):
        write_video_with_codec(
            tmp_path / "bad.mp4", codec="aac", duration_seconds=1, width=16, height=16, fps=1, audio=False, seed=0
        )


def test_audio_track_decodes_for_the_whole_video(tmp_path: Path) -> None:
    path = write_sample_video(tmp_path / "audio.mp4", duration_seconds=20, width=16, height=16, fps=1, audio=True)
    with av.open(str(path)) as container:
        decoded_samples = sum(frame.samples for frame in container.decode(audio=0))
    assert decoded_samples / AUDIO_SAMPLE_RATE_HZ == pytest.approx(20.0, abs=0.3)


def test_audio_shorter_than_the_encoded_opening_is_flushed(tmp_path: Path) -> None:
    # 0.5 s of audio ends inside the encoded tone: no repeated silent packets are involved.
    path = write_sample_video(tmp_path / "short.mp4", duration_seconds=0.5, width=16, height=16, fps=4, audio=True)
    with av.open(str(path)) as container:
        decoded_samples = sum(frame.samples for frame in container.decode(audio=0))
    assert decoded_samples >= 0.5 * AUDIO_SAMPLE_RATE_HZ


@pytest.mark.parametrize("audio", [False, True])
def test_two_and_a_half_hour_video_is_cheap(tmp_path: Path, audio: bool) -> None:
    # How long this takes is a benchmark's business (benchmarks/samples.py), not a test's.
    path = write_sample_video(
        tmp_path / "long.mp4", duration_seconds=TWO_AND_A_HALF_HOURS_SECONDS, width=16, height=16, fps=0.2, audio=audio
    )
    assert path.stat().st_size < 1_000_000
    info = probe_media(path)
    assert info.duration_seconds == pytest.approx(TWO_AND_A_HALF_HOURS_SECONDS, abs=0.2)
    assert info.has_audio is audio


def test_non_video_has_the_requested_size_and_is_text(tmp_path: Path) -> None:
    path = write_non_video(tmp_path / "notes.mp4", size_bytes=5_000)
    body = path.read_bytes()
    assert len(body) == 5_000
    assert body.decode("ascii").startswith("This is a plain text document")
    assert write_non_video(tmp_path / "empty.mp4", size_bytes=0).stat().st_size == 0


def test_non_video_rejects_negative_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size_bytes"):
        write_non_video(tmp_path / "x.bin", size_bytes=-1)


def test_corrupt_video_starts_like_an_mp4(tmp_path: Path) -> None:
    body = write_corrupt_video(tmp_path / "nested" / "broken.mp4").read_bytes()
    assert body[4:8] == b"ftyp"
    assert len(body) > 24
