"""Human output: aligned tables, durations, and a progress bar on stderr for long work (only on a terminal)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO


def table(out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[object]], *, indent: str = "  ") -> None:
    """Columns as wide as their widest cell; numbers right-aligned, text left-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return (indent + "  ".join(parts)).rstrip()

    out.write(line(list(headers)) + "\n")
    for row in cells:
        out.write(line(row) + "\n")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def duration(seconds: float | None) -> str:
    """``3d04h``, ``2h05m``, ``4m30s``: the two largest units."""
    if seconds is None:
        return "-"
    sign, value = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(int(value), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours:02d}h"
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    return f"{sign}{minutes}m{secs:02d}s"


class Progress:
    """``[#####-----] 50/100 objects`` redrawn on stderr while work goes on; silent when stderr is no terminal
    (scripts and ``--json`` get the counts at the end, not a stream of redraws)."""

    WIDTH = 30

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self._label = label
        self._total = total
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._last = 0.0
        self.done = 0

    def update(self, done: int, *, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self._total = total
        now = time.monotonic()
        if not self._enabled or now - self._last < 0.1:
            return
        self._last = now
        self._draw()

    def _draw(self) -> None:
        if self._total:
            filled = int(self.WIDTH * min(self.done / self._total, 1.0))
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            text = f"\r[{bar}] {self.done:,}/{self._total:,} {self._label}"
        else:
            text = f"\r{self.done:,} {self._label}"
        self._stream.write(text)
        self._stream.flush()

    def finish(self) -> None:
        if self._enabled:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()
