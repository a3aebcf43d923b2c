"""How cheap the generated sample videos are: write time and size of the long tiny-frame video the demo uses."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from twelvelabs_emulator.media import probe_media
from videobatch_tools.samples import write_sample_video

TWO_AND_A_HALF_HOURS_SECONDS = 9_000.0


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        for audio in (False, True):
            path = Path(workdir) / f"long-{audio}.mp4"
            started = time.perf_counter()
            write_sample_video(path, duration_seconds=TWO_AND_A_HALF_HOURS_SECONDS, fps=0.2, audio=audio)
            elapsed_seconds = time.perf_counter() - started
            info = probe_media(path)
            print(
                f"2h30 sample audio={audio}: write {elapsed_seconds:.3f} s, {path.stat().st_size:,} bytes, "
                f"probed duration {info.duration_seconds:.1f} s"
            )


if __name__ == "__main__":
    main()
