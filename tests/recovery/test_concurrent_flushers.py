"""Two flushers at once: the lease keeps them apart; when it expires mid-run, claim ids and conditions fence them."""

from pathlib import Path
from typing import Any

import pytest

from tests.unit.services.harness import MotoStack
from videobatch.domain.items import ItemState
from videobatch.domain.records import ClaimState

from .support import Wrapped, assert_each_submitted_once, custom_id_batches, past_decision_age

pytestmark = pytest.mark.integration


def test_interleaved_flushers_submit_each_item_once(stack: MotoStack, videos: dict[str, Path]) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    second_run: dict[str, Any] = {}

    def slow_create(request: Any, **kwargs: Any) -> Any:
        # The first flusher stalls before its create; its lease runs out and a second flusher runs in between.
        stack.clock.advance(stack.settings.flush_lease_seconds + 1)
        second_run["summary"] = stack.flusher(owner="two").run()
        return stack.twelvelabs.create_batch(request, **kwargs)

    first = stack.flusher(owner="one")
    first._api = Wrapped(stack.twelvelabs, create_batch=slow_create)
    summary = first.run()
    second = second_run["summary"]
    assert not second.lease_held_elsewhere  # the expired lease was taken over
    assert (second.claims_reconciled, second.batches_submitted) == (0, 0)  # claimed items are not its to take
    assert (summary.batches_submitted, summary.items_submitted) == (1, 2)
    assert {item.state for item in stack.items.get_many(ids).values()} == {ItemState.SUBMITTED}
    assert_each_submitted_once(stack)


def test_stale_flusher_whose_claim_was_released_cannot_overwrite(stack: MotoStack, videos: dict[str, Path]) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    taken_over: dict[str, Any] = {}

    def late_create(request: Any, **kwargs: Any) -> Any:
        # The request was sent in time but reaches the API only after the reconciler proved absence (a network
        # far slower than the settle margin): the takeover released the claim and resubmitted the item.
        past_decision_age(stack)
        taken_over["summary"] = stack.flusher(owner="two").run()
        return stack.twelvelabs.create_batch(request, **kwargs)

    stale = stack.flusher(owner="one")
    stale._api = Wrapped(stack.twelvelabs, create_batch=late_create)
    summary = stale.run()
    assert taken_over["summary"].claims_reconciled == 1
    assert taken_over["summary"].items_submitted == 1
    assert (summary.batches_orphaned, summary.batches_submitted) == (1, 0)
    assert summary.stop_reason == "claim released while its create was in flight"
    item = stack.items.get(ids[0])
    assert item is not None
    # The newer truth stands: the takeover's batch, attempt 2; the stale flusher wrote nothing over it.
    assert (item.state, item.attempts) == (ItemState.SUBMITTED, 2)
    assert stack.batches.get(item.batch_id or "") is not None
    stale_batches = [b for b in stack.twelvelabs.iter_batches() if b.batch_id != item.batch_id]
    assert [b.status for b in stale_batches] in (["canceling"], ["canceled"])  # the orphan is canceled
    # Custom ids carry the attempt: the orphan's a1 request can never be taken for the live a2 one.
    assert set(custom_id_batches(stack).values()) == {1}
    claims = {claim_id: stack.claims.get(claim_id) for claim_id in {item.claim_id}}
    assert all(c is not None and c.state is ClaimState.CREATED for c in claims.values())


def test_lease_nearly_over_sends_nothing(stack: MotoStack, videos: dict[str, Path]) -> None:
    [item_id] = stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)

    def slow_claim(claim: Any) -> Any:
        stack.clock.advance(stack.settings.flush_lease_seconds - 1)  # planning took (almost) the whole lease
        return stack.claims.create(claim)

    flusher = stack.with_ports(claims=Wrapped(stack.claims, create=slow_claim)).flush_service()
    summary = flusher.run()
    assert (summary.stop_reason, summary.claims_released) == ("lease nearly over", 1)
    assert stack.twelvelabs.list_batches().data == []
    item = stack.items.get(item_id)
    assert item is not None
    # Nothing was sent: the attempt does not count, but its number stays spent (custom_ids are never reused).
    assert (item.state, item.counted_attempts, item.attempts) == (ItemState.QUEUED, 0, 1)
