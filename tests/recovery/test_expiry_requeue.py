"""A batch expires before all its items ran: the unfinished ones are requeued with a reason and submitted again."""

from pathlib import Path

import pytest

from tests.unit.services.harness import MotoStack
from videobatch.domain.items import ItemState

from .support import assert_each_submitted_once, hours

pytestmark = pytest.mark.integration


def test_expired_batch_requeues_its_unfinished_items(stack: MotoStack, videos: dict[str, Path]) -> None:
    stack.emulator_settings(content_seconds_per_second=0.0001)  # nothing finishes within the 24 h
    ids, batch_id = stack.submit(videos, ("short", "in/a.mp4"))
    stack.clock.advance(hours(24) + stack.settings.expiry_grace_seconds)
    summary = stack.checker().check(batch_id)
    assert (summary.items_requeued, summary.batches_closed) == (1, 1)
    item = stack.items.get(ids[0])
    assert item is not None
    assert item.state is ItemState.QUEUED
    assert item.note is not None
    assert batch_id in item.note
    stack.emulator_settings(content_seconds_per_second=60.0)
    stack.clock.advance(stack.settings.max_wait_seconds)  # a requeued item waits its turn like a new one
    assert stack.flusher().run().items_submitted == 1
    item = stack.items.get(ids[0])
    assert item is not None
    assert (item.state, item.attempts) == (ItemState.SUBMITTED, 2)
    assert_each_submitted_once(stack)
