"""The operators' pause switch as the flusher reads it (``domain.control``): one consistent read per flush."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from videobatch.services.ports import ControlStore, MetricsSink

logger = logging.getLogger(__name__)


def paused(control: ControlStore | None, metrics: MetricsSink) -> bool:
    """Whether an operator paused the pipeline; ``PipelinePaused`` (1 or 0) on every flush, so a dashboard and an
    alarm can tell a paused pipeline from a stuck one."""
    state = control.load() if control is not None else None
    is_paused = state is not None and state.paused
    metrics.add_metric(name="PipelinePaused", unit="Count", value=1 if is_paused else 0)
    if state is not None and is_paused:
        logger.info("flush skipped: paused", extra={"reason": state.reason, "by": state.changed_by})
    return is_paused
