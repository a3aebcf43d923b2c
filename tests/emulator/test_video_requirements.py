"""Video requirements: 360x360 to 5184x2160, aspect ratio 1:1 to 2.4:1, in either orientation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.emulator.support import Emu, item
from twelvelabs_emulator.media import MediaInfo, requirement_problem
from videobatch_tools.samples import write_sample_video


def _info(width: int, height: int) -> MediaInfo:
    return MediaInfo(
        duration_seconds=1,
        size_bytes=1,
        video_fps=1,
        video_width=width,
        video_height=height,
        video_codec="h264",
        has_audio=False,
        format_name="mp4",
    )


@pytest.mark.parametrize(
    ("width", "height", "problem"),
    [
        (360, 360, None),
        (640, 360, None),
        (360, 640, None),
        (864, 360, None),  # exactly 2.4:1
        (5184, 2160, None),
        (2160, 5184, None),
        (3840, 2160, None),
        (358, 360, "resolution"),
        (360, 358, "resolution"),
        (5186, 2162, "resolution"),
        (3000, 3000, "resolution"),
        (866, 360, "aspect ratio"),
        (360, 866, "aspect ratio"),
        (16, 16, "resolution"),
    ],
)
def test_requirements(width: int, height: int, problem: str | None) -> None:
    found = requirement_problem(_info(width, height))
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert f"unsupported {problem} {width}" in found


@pytest.mark.integration
@pytest.mark.parametrize(
    ("size", "status", "message"),
    [
        ((320, 240), "failed", "unsupported resolution 320x240"),
        ((880, 360), "failed", "unsupported aspect ratio 880:360"),
        ((360, 640), "ready", None),
    ],
)
def test_an_unsupported_video_fails_its_asset_with_a_clear_message(
    emu: Emu, tmp_path: Path, size: tuple[int, int], status: str, message: str | None
) -> None:
    width, height = size
    path = write_sample_video(tmp_path / "clip.mp4", duration_seconds=2, width=width, height=height, fps=1)
    asset_id = emu.upload(path)
    asset = emu.api.get(f"/assets/{asset_id}").json()
    assert asset["status"] == status
    if message is not None:
        assert message in asset["error"]["message"]
        assert emu.create_batch([item(asset_id)]).status_code == 409
