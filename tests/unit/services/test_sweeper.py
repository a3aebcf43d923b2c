from pathlib import Path
from typing import Any

import pytest

from videobatch.domain.items import ItemState, item_id_for
from videobatch.domain.records import INTAKE_QUEUE
from videobatch.errors import OutcomeUnknownError
from videobatch.services.ingest import parse_object_created
from videobatch.services.sweeper import SweepService

from .harness import BUCKET, Stack


def _sweeper(stack: Stack) -> SweepService:
    return stack.runtime.sweep_service()


def _stuck_registered(stack: Stack, videos: dict[str, Path]) -> str:
    """An item whose asset creation keeps failing: it stays ``registered`` (its message ends in the DLQ)."""
    event = stack.put_video("in/cat.mp4", videos["short"])
    stack.faults({"endpoint": "POST /assets", "status": 500, "code": "internal_error"})
    with pytest.raises(OutcomeUnknownError):
        stack.ingest_service().handle(parse_object_created(event))
    stack.faults()
    return item_id_for(BUCKET, "in/cat.mp4", None)


def test_item_stuck_registered_past_the_asset_timeout_fails_with_reason(stack: Stack, videos: dict[str, Path]) -> None:
    item_id = _stuck_registered(stack, videos)
    stack.clock.advance(stack.settings.asset_timeout_seconds - 1)
    assert _sweeper(stack).run().work_done == 0
    assert stack.items.get(item_id).state is ItemState.REGISTERED  # type: ignore[union-attr]
    stack.clock.advance(2)
    summary = _sweeper(stack).run()
    assert summary.ingest_incomplete == 1
    item = stack.items.get(item_id)
    assert item is not None
    assert item.state is ItemState.FAILED
    assert item.failure is not None
    assert item.failure.code == "ingest_incomplete"
    assert "dead-letter" in item.failure.message
    [event] = stack.observed_events()
    assert (event["detail-type"], event["detail"]["failure_code"]) == ("Item Failed", "ingest_incomplete")
    assert _sweeper(stack).run().work_done == 0


def test_sweep_loses_to_a_late_ingest_retry(stack: Stack, videos: dict[str, Path]) -> None:
    item_id = _stuck_registered(stack, videos)
    stack.clock.advance(stack.settings.asset_timeout_seconds + 1)
    stale = stack.items.get(item_id)
    assert stale is not None
    resumed = stack.ingest_service().handle(parse_object_created(stack.put_video("in/cat.mp4", videos["short"])))
    assert resumed.item_id == item_id

    class StaleItems:
        """Serves the sweep the registered record it would have listed a moment before the retry."""

        def iter_queue(self, queue: str, **options: Any) -> Any:
            return [stale] if queue == INTAKE_QUEUE else stack.items.iter_queue(queue, **options)

        def __getattr__(self, name: str) -> object:
            return getattr(stack.items, name)

    summary = stack.with_ports(items=StaleItems()).sweep_service().run()
    assert (summary.ingest_incomplete, summary.lost_races) == (0, 1)
    assert stack.items.get(item_id).state is ItemState.ASSET_PROCESSING  # type: ignore[union-attr]


def _full_sweeper(stack: Stack) -> SweepService:
    return stack.runtime.sweep_service()


def test_full_sweep_of_a_healthy_stack_changes_nothing(stack: Stack, videos: dict[str, Path]) -> None:
    ids, batch_id = stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(3600)
    summary = _full_sweeper(stack).run()
    assert summary.work_done == 0
    assert summary.model_dump()["reconcile"]["claims_checked"] == 0  # typed, and serialisable for the CLI
    assert stack.items.get(ids[0]).batch_id == batch_id  # type: ignore[union-attr]


def test_full_sweep_reconciles_a_lost_create(stack: Stack, videos: dict[str, Path]) -> None:
    [item_id] = stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    stack.faults({"endpoint": "POST /analyze/batches", "count": 1, "lose_response": True})
    stack.flusher().run()
    stack.clock.advance(stack.settings.flush_lease_seconds)
    summary = _full_sweeper(stack).run()
    assert (summary.reconcile.claims_adopted, summary.work_done) == (1, 1)
    assert stack.items.get(item_id).state is ItemState.SUBMITTED  # type: ignore[union-attr]
    assert stack.metrics.total("SweepRepairs") == 1
