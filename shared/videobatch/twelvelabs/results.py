"""Reading a batch's results body (JSON Lines) without ever losing a line that names a task.

- A line that parses is yielded as it is (``custom_id`` None when the line has none).
- A line that names a ``task_id`` but does not fit ``BatchResultItem`` (a new shape, a bad field, invalid JSON after
  the id) is yielded all the same, with ``parse_error`` saying why and the raw ``status`` when it had one: the caller
  decides, nothing is dropped silently.
- Blank lines are skipped; so is a line from which no task id can be read (typically a body cut mid-line). Both are
  counted on the iterator (``blank_lines``, ``skipped_lines``), and a warning names the counts, never the content.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

from pydantic import ValidationError

from videobatch.twelvelabs.models import BatchResultItem

logger = logging.getLogger(__name__)
_TASK_ID: Final = re.compile(r'"task_id"\s*:\s*"((?:[^"\\]|\\.)+)"')


class ResultLines(Iterator[BatchResultItem]):
    """The items of one results body, parsed as lines arrive, with counts of what could not be read."""

    def __init__(self, lines: Iterable[str], batch_id: str) -> None:
        self._lines = iter(lines)
        self._batch_id = batch_id
        self.blank_lines = 0
        self.skipped_lines = 0
        self.unparsable_lines = 0
        self._reported = False

    def __iter__(self) -> ResultLines:
        return self

    def __next__(self) -> BatchResultItem:
        for line in self._lines:
            if not line.strip():
                self.blank_lines += 1
                continue
            item = parse_result_line(line)
            if item is None:
                self.skipped_lines += 1
                continue
            if item.parse_error is not None:
                self.unparsable_lines += 1
            return item
        self._report()
        raise StopIteration

    def _report(self) -> None:
        if self._reported or not (self.skipped_lines or self.unparsable_lines):
            return
        self._reported = True
        logger.warning(
            "batch %s results: %d line(s) without a readable task_id skipped, %d unparsable line(s) kept",
            self._batch_id,
            self.skipped_lines,
            self.unparsable_lines,
        )


def parse_result_line(line: str) -> BatchResultItem | None:
    """The item on ``line``; an item marked unparsable if only its task id can be read; None without one."""
    try:
        return BatchResultItem.model_validate_json(line)
    except ValidationError as error:
        reason = _reason(error)
    raw = _json_object(line)
    task_id = raw.get("task_id") if raw is not None else _task_id_in(line)
    if not isinstance(task_id, str) or not task_id:
        return None
    if raw is None:
        return BatchResultItem(task_id=task_id, status="", parse_error=f"the line is not valid JSON: {reason}")
    custom_id, status = raw.get("custom_id"), raw.get("status")
    return BatchResultItem(
        task_id=task_id,
        custom_id=custom_id if isinstance(custom_id, str) else None,
        status=status if isinstance(status, str) else "",
        parse_error=reason,
    )


def _json_object(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _task_id_in(line: str) -> str | None:
    found = _TASK_ID.search(line)
    return found.group(1) if found else None


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "line"
    return f"{location}: {first['msg']} ({error.error_count()} problem(s))"
