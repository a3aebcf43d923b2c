"""The operators' switch: a pipeline can be paused (``videobatch pause`` / ``resume``).

Paused means no new batches: the flusher reads this record before it plans (``services.control``) and stops the
round; everything else goes on (uploads are ingested and their assets checked, running batches are collected, the
sweeper repairs), so a resume picks up a queue that is ready to pack. One record per stack (``CONTROL#pipeline``
in the table), written conditionally on its version like every other record.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

REASON_LIMIT = 500


class PipelineControl(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    paused: bool = False
    reason: str | None = None
    changed_by: str | None = None
    changed_at: AwareDatetime | None = None
    version: int = Field(default=0, ge=0)  # 0: never stored (a pipeline nobody paused yet)

    def pause(self, reason: str, *, by: str, now: datetime) -> PipelineControl:
        return self.model_copy(
            update={"paused": True, "reason": reason[:REASON_LIMIT], "changed_by": by, "changed_at": now}
        )

    def resume(self, *, by: str, now: datetime) -> PipelineControl:
        return self.model_copy(update={"paused": False, "reason": None, "changed_by": by, "changed_at": now})
