import json
from pathlib import Path
from typing import Any

import pytest

from tests.recovery.support import Wrapped, assert_each_submitted_once
from videobatch.domain.items import ItemState, Window
from videobatch.domain.profiles import load_profiles
from videobatch.domain.records import ClaimState
from videobatch.errors import AuthenticationError
from videobatch.services.flusher import LEASE_NAME
from videobatch.services.ingest import parse_object_created
from videobatch.twelvelabs.models import BatchCreateRequest, BatchItemRequest, VideoContext

from .harness import Stack


def occupy_slots(stack: Stack, asset_id: str, count: int) -> None:
    """Batches created by someone else on the same account (another tool)."""
    for n in range(count):
        stack.twelvelabs.create_batch(
            BatchCreateRequest(
                analysis_mode="general",
                requests=[BatchItemRequest(video=VideoContext(asset_id=asset_id), custom_id=f"other-{n}")],
                defaults={"prompt": {"input_text": "x"}},  # type: ignore[arg-type]
            )
        )


def test_full_wait_submits_one_batch_with_every_window(stack: Stack, videos: dict[str, Path]) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("three_hours", "in/b.mp4"))
    last_slot = {"reserved_batch_slots": 4}  # one free slot: scarce, so a partial batch waits to fill
    assert stack.flusher(**last_slot).run().batches_submitted == 0  # neither full nor waited max_wait yet
    stack.clock.advance(stack.settings.max_wait_seconds)
    summary = stack.flusher(**last_slot).run()
    assert (summary.batches_submitted, summary.items_submitted) == (1, 2)
    items = stack.items.get_many(ids)
    batch_ids = {item.batch_id for item in items.values()}
    assert len(batch_ids) == 1
    batch_id = batch_ids.pop()
    assert batch_id is not None
    assert all(item.state is ItemState.SUBMITTED and item.attempts == 1 for item in items.values())
    assert [len(items[i].task_ids) for i in ids] == [1, 2]  # the 3 h video is two windows
    api_batch = stack.twelvelabs.retrieve_batch(batch_id)
    assert api_batch.total_items == 3
    record = stack.batches.get(batch_id)
    assert record is not None
    assert set(record.item_ids) == set(ids)
    claim = stack.claims.get(record.claim_id)
    assert claim is not None
    assert (claim.state, claim.batch_id) == (ClaimState.CREATED, batch_id)
    assert stack.scheduled_check(batch_id) is not None
    [event] = stack.observed_events()
    assert event["detail-type"] == "Batch Submitted"
    assert (event["detail"]["item_count"], event["detail"]["request_count"]) == (2, 3)
    assert stack.metrics.total("BatchesSubmitted") == 1
    assert stack.metrics.values["OldestQueuedItemAgeSeconds"][-1] == stack.settings.max_wait_seconds


def test_requests_carry_the_profile_and_window_bounds(stack: Stack, videos: dict[str, Path]) -> None:
    [item_id] = stack.queue(videos, ("three_hours", "in/b.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    stack.flusher().run()
    item = stack.items.get(item_id)
    assert item is not None
    tasks = [stack.twelvelabs.retrieve_task(task_id) for task_id in item.task_ids.values()]
    params = sorted((t.request_params or {} for t in tasks), key=lambda p: p.get("start_time") or 0)
    assert params[0].get("end_time") == pytest.approx(5400, abs=1)
    assert params[1].get("start_time") == pytest.approx(5400, abs=1)


def test_respects_free_slots_counted_from_the_api(stack: Stack, videos: dict[str, Path]) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"), ("short", "in/c.mp4"))
    asset_id = stack.items.get(ids[0]).asset_id  # type: ignore[union-attr]
    stack.clock.advance(stack.settings.max_wait_seconds)
    occupy_slots(stack, asset_id or "", 3)
    # One request per batch forces three batches; 5 slots - 1 reserved - 3 foreign = 1 free.
    summary = stack.flusher(max_items_per_batch=1, reserved_batch_slots=1).run()
    assert (summary.active_batches, summary.free_slots, summary.batches_submitted) == (3, 1, 1)
    states = [stack.items.get(i).state for i in ids]  # type: ignore[union-attr]
    assert sorted(states) == [ItemState.QUEUED, ItemState.QUEUED, ItemState.SUBMITTED]
    assert stack.flusher(max_items_per_batch=1, reserved_batch_slots=1).run().stop_reason == "no free batch slot"


def test_batch_limits_split_batches(stack: Stack, videos: dict[str, Path]) -> None:
    stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"), ("short", "in/c.mp4"))
    summary = stack.flusher(max_items_per_batch=2, reserved_batch_slots=4).run()  # the last free slot: the
    assert (summary.batches_submitted, summary.items_submitted) == (1, 2)  # full batch goes, not a partial one


def test_with_slots_to_spare_a_partial_batch_goes_out_at_once(stack: Stack, videos: dict[str, Path]) -> None:
    stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"), ("short", "in/c.mp4"))
    summary = stack.flusher(max_items_per_batch=2).run()  # five free slots: nothing gains from waiting
    assert (summary.batches_submitted, summary.items_submitted) == (2, 3)


def test_second_flusher_loses_the_lease(stack: Stack, videos: dict[str, Path]) -> None:
    stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    assert stack.leases.acquire(LEASE_NAME, "other", now=stack.clock.now(), duration_seconds=60)
    assert stack.flusher().run().lease_held_elsewhere
    assert stack.twelvelabs.list_batches().data == []
    stack.clock.advance(61)  # the holder crashed: its lease runs out
    assert stack.flusher().run().batches_submitted == 1


def test_conditional_claim_prevents_double_submission(stack: Stack, videos: dict[str, Path]) -> None:
    # Two flushers that both got past the lease (say it expired mid-run) and planned from the same read.
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    first = stack.flusher(owner="one")
    stale_read = list(stack.items.iter_queue("Q#queued#general"))
    first.run()
    second = stack.flusher(owner="two")
    stack.items.iter_queue = lambda *args, **kwargs: iter(stale_read)  # type: ignore[method-assign]
    summary = second.run()
    assert (summary.batches_submitted, summary.items_lost_to_other_flushers) == (0, 2)
    assert len(list(stack.twelvelabs.iter_batches())) == 1
    assert {stack.items.get(i).batch_id for i in ids} != {None}  # type: ignore[union-attr]


def test_outcome_unknown_leaves_items_claimed_and_the_claim_pending(stack: Stack, videos: dict[str, Path]) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    stack.faults({"endpoint": "POST /analyze/batches", "count": 1, "lose_response": True})
    summary = stack.flusher().run()
    assert (summary.claims_unresolved, summary.stop_reason) == (1, "batch create outcome unknown")
    item = stack.items.get(ids[0])
    assert item is not None
    assert item.state is ItemState.CLAIMED
    claim = stack.claims.get(item.claim_id or "")
    assert claim is not None
    assert claim.state is ClaimState.PENDING
    assert claim.item_ids == (ids[0],)
    assert set(claim.custom_ids) == set(item.custom_ids())  # what the reconciler searches the API for
    assert len(list(stack.twelvelabs.iter_batches())) == 1  # the batch does exist: only the answer was lost
    assert stack.flusher().run().batches_submitted == 0  # a claimed item is never submitted twice


def test_definitive_refusal_releases_the_claim(stack: Stack, videos: dict[str, Path]) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    stack.faults({"endpoint": "POST /analyze/batches", "count": 1, "status": 409, "code": "asset_not_ready"})
    summary = stack.flusher().run()
    assert summary.claims_released == 1
    assert summary.stop_reason is not None
    assert summary.stop_reason.startswith("batch create refused")
    item = stack.items.get(ids[0])
    assert item is not None
    assert (item.state, item.claim_id) == (ItemState.QUEUED, None)
    # The attempt number stays spent (a custom_id is never sent under two claims); it does not count towards
    # max_attempts, as nothing reached TwelveLabs.
    assert (item.attempts, item.released_attempts, item.counted_attempts) == (1, 1, 0)
    assert stack.flusher().run().batches_submitted == 1  # the next round submits it
    resubmitted = stack.items.get(ids[0])
    assert resubmitted is not None
    assert resubmitted.attempts == 2
    assert set(resubmitted.task_ids).isdisjoint(item.custom_ids())
    stack.clock.advance(3600)
    stack.observed_events()
    assert resubmitted.batch_id is not None
    assert stack.checker().check(resubmitted.batch_id).items_succeeded == 1
    [succeeded] = [e for e in stack.observed_events() if e["detail-type"] == "Item Succeeded"]
    assert succeeded["detail"]["attempts"] == 1  # submissions that reached TwelveLabs, not attempt numbers spent


def test_unpackable_item_fails_instead_of_blocking(stack: Stack, videos: dict[str, Path]) -> None:
    [item_id] = stack.queue(videos, ("three_hours", "in/b.mp4"))
    summary = stack.flusher(max_items_per_batch=1).run()  # two windows can never fit a one-request batch
    assert summary.items_failed == 1
    item = stack.items.get(item_id)
    assert item is not None
    assert item.failure is not None
    assert item.failure.code == "too_many_windows"


def test_a_video_whose_asset_vanished_fails_and_the_others_go_out(stack: Stack, videos: dict[str, Path]) -> None:
    """A 404 refuses the whole batch; without tracing it, the same batch would be refused every round."""
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    gone = stack.items.get(ids[0])
    assert gone is not None
    assert gone.asset_id is not None
    stack.twelvelabs.delete_asset(gone.asset_id)
    stack.observed_events()
    summary = stack.flusher().run()
    assert (summary.items_failed, summary.claims_released, summary.batches_submitted) == (1, 1, 0)
    failed = stack.items.get(ids[0])
    assert failed is not None
    assert failed.state is ItemState.FAILED
    assert failed.failure is not None
    assert failed.failure.code == "asset_missing"
    [event] = [e for e in stack.observed_events() if e["detail-type"] == "Item Failed"]
    assert (event["detail"]["stage"], event["detail"]["failure_code"]) == ("submission", "asset_missing")
    assert stack.flusher().run().items_submitted == 1  # the next round is not refused again
    sent = stack.items.get(ids[1])
    assert sent is not None
    assert sent.state is ItemState.SUBMITTED


def test_a_request_the_api_names_in_a_400_fails_with_its_words(stack: Stack, videos: dict[str, Path]) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    message = "requests.1.prompt.input_text: contains a forbidden phrase"
    rule = {"endpoint": "POST /analyze/batches", "count": 1, "status": 400, "code": "parameter_invalid"}
    stack.faults(rule | {"message": message})
    summary = stack.flusher().run()
    assert (summary.items_failed, summary.claims_released) == (1, 1)
    items = stack.items.get_many(ids)
    [failed] = [item for item in items.values() if item.state is ItemState.FAILED]
    assert failed.failure is not None
    assert failed.failure.code == "request_rejected"
    assert message in failed.failure.message
    assert stack.flusher().run().items_submitted == 1


def test_a_video_whose_asset_is_not_ready_waits_without_blocking_the_queue(
    stack: Stack, videos: dict[str, Path]
) -> None:
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    # TwelveLabs reports this item's asset as still processing (a fresh asset stands in for it).
    fresh = stack.twelvelabs.create_asset_from_file(videos["short"].read_bytes(), filename="short.mp4")
    item = stack.items.get(ids[0])
    assert item is not None
    stack.overwrite_item(item.model_copy(update={"asset_id": fresh.id}))
    summary = stack.flusher().run()
    assert (summary.items_failed, summary.claims_released) == (0, 1)
    waiting = stack.items.get(ids[0])
    assert waiting is not None
    assert waiting.state is ItemState.QUEUED
    assert waiting.eligible_at is not None
    assert waiting.eligible_at > stack.clock.now()  # no longer at the head of the queue
    assert stack.flusher().run().items_submitted == 1  # the other video goes out meanwhile
    stack.clock.advance(600 + stack.settings.max_wait_seconds)  # eligible again, and waited max_wait since
    assert stack.flusher().run().items_submitted == 1  # ready by now: it follows


def test_the_queue_age_is_reported_before_twelvelabs_is_asked(stack: Stack, videos: dict[str, Path]) -> None:
    """A bad key or an outage fails every flush; the wait it causes must still show (the oldest-queued alarm)."""
    assert stack.flusher().run().batches_submitted == 0
    assert stack.metrics.values["OldestQueuedItemAgeSeconds"][-1] == 0.0  # nothing waits: a zero, not silence
    stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(120)
    stack.faults({"endpoint": "GET /analyze/batches", "status": 401, "code": "unauthorized"})
    with pytest.raises(AuthenticationError):
        stack.flusher().run()
    assert stack.metrics.values["OldestQueuedItemAgeSeconds"][-1] == 120.0


def test_no_free_slot_reads_no_queue(stack: Stack, videos: dict[str, Path]) -> None:
    stack.queue(videos, ("short", "in/a.mp4"))
    stack.clock.advance(stack.settings.max_wait_seconds)
    summary = stack.flusher(reserved_batch_slots=4, max_active_batches=4).run()
    assert (summary.free_slots, summary.queued_items, summary.stop_reason) == (0, 0, "no free batch slot")
    assert stack.metrics.values["FreeSlots"][-1] == 0


def test_what_profiles_share_is_sent_once_and_two_profiles_of_one_mode_share_a_batch(
    stack: Stack, videos: dict[str, Path]
) -> None:
    schema = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
    response_format = {"type": "json_schema", "json_schema": schema}
    profiles = load_profiles(
        {
            "profiles": [
                {
                    "name": "summary",
                    "key_prefix": "",
                    "analysis_mode": "general",
                    "options": {
                        "prompt": {"input_text": "Summarise the video."},
                        "response_format": response_format,
                        "temperature": 0.1,
                    },
                },
                {
                    "name": "brief",
                    "key_prefix": "brief/",
                    "analysis_mode": "general",
                    "options": {"prompt": {"input_text": "One line, please."}, "response_format": response_format},
                },
            ]
        }
    )
    runtime = stack.with_ports(profiles=profiles)
    bodies: list[dict[str, Any]] = []
    stack.twelvelabs._http.event_hooks["request"].append(  # type: ignore[attr-defined]
        lambda request: (
            bodies.append(json.loads(request.read()))
            if request.method == "POST" and request.url.path.endswith("/analyze/batches")
            else None
        )
    )
    ids = [
        runtime.ingest_service().handle(parse_object_created(stack.put_video(key, videos[name]))).item_id
        for name, key in (("short", "in/a.mp4"), ("short2", "brief/b.mp4"), ("short", "in/c.mp4"))
    ]
    stack.clock.advance(10)
    runtime.asset_check_service().run()
    stack.clock.advance(stack.settings.max_wait_seconds)
    assert runtime.flush_service().run().batches_submitted == 1
    [body] = bodies
    assert body["defaults"] == {"response_format": response_format}  # what both say alike, once
    prompts = [request["prompt"]["input_text"] for request in body["requests"]]
    assert sorted(prompts) == ["One line, please.", "Summarise the video.", "Summarise the video."]
    temperatures = {request["prompt"]["input_text"]: request.get("temperature") for request in body["requests"]}
    assert temperatures == {"Summarise the video.": 0.1, "One line, please.": None}  # never a default of both
    items = stack.items.get_many(ids)
    for item in items.values():
        [task_id] = item.task_ids.values()
        params = stack.twelvelabs.retrieve_task(task_id).request_params or {}
        wanted = profiles.by_name(item.profile_name or "").options
        assert params["prompt"] == wanted.prompt.input_text  # type: ignore[union-attr]  (the task shows the text)
        assert params["response_format"]["json_schema"] == schema  # the default, applied
        if wanted.temperature is not None:
            assert params["temperature"] == wanted.temperature
        else:
            assert params.get("temperature") != 0.1  # the other profile's temperature did not leak into this one
    stack.clock.advance(3600)
    assert runtime.batch_check_service().check_open().items_succeeded == 3


def test_a_batch_on_its_last_items_is_watched_so_its_slot_is_refilled_at_once(
    stack: Stack, videos: dict[str, Path]
) -> None:
    """One usable slot, held by another tool's batch whose only item is processing: the flush watches it end
    (virtual seconds) and submits in the same run instead of a minute later."""
    [item_id] = stack.queue(videos, ("short", "in/a.mp4"))
    asset_id = stack.items.get(item_id).asset_id  # type: ignore[union-attr]
    stack.clock.advance(stack.settings.max_wait_seconds)  # due: only the slot holds it back
    stack.emulator_settings(content_seconds_per_second=1.0)  # the 20 s video takes 20 virtual seconds
    occupy_slots(stack, asset_id or "", 1)
    stack.clock.advance(1)  # it is processing, nothing of it is queued
    summary = stack.flusher(reserved_batch_slots=4).run()
    assert (summary.batches_submitted, summary.items_submitted) == (1, 1)
    assert 15 <= summary.slot_watch_seconds <= 25


def test_no_watch_when_no_batch_is_about_to_end(stack: Stack, videos: dict[str, Path]) -> None:
    [item_id] = stack.queue(videos, ("short", "in/a.mp4"))
    asset_id = stack.items.get(item_id).asset_id or ""  # type: ignore[union-attr]
    stack.clock.advance(stack.settings.max_wait_seconds)
    stack.emulator_settings(item_concurrency=1, content_seconds_per_second=0.01)
    # Another tool holds the one usable slot with a batch that still has a queued item: it will not end soon.
    stack.twelvelabs.create_batch(
        BatchCreateRequest(
            analysis_mode="general",
            requests=[BatchItemRequest(video=VideoContext(asset_id=asset_id), custom_id=f"q-{n}") for n in range(2)],
            defaults={"prompt": {"input_text": "x"}},  # type: ignore[arg-type]
        )
    )
    stack.clock.advance(1)
    summary = stack.flusher(reserved_batch_slots=4).run()
    assert (summary.free_slots, summary.slot_watch_seconds, summary.stop_reason) == (0, 0.0, "no free batch slot")


def test_a_refusal_that_names_no_request_is_bisected_until_its_video_fails_alone(
    stack: Stack, videos: dict[str, Path]
) -> None:
    """The API's 400 names no request index (variant index_free_errors): the batch is halved until the refusal
    narrows to one video; the others go out at once, the culprit fails request_rejected after max_attempts."""
    stack.emulator_settings(variants=["index_free_errors"])
    ids = stack.queue(videos, *(("short", f"in/{n}.mp4") for n in range(4)))
    culprit = stack.items.get(ids[2])
    assert culprit is not None
    # Its recorded window ends beyond the video: the API refuses any batch holding its request.
    stack.overwrite_item(
        culprit.model_copy(
            update={"duration_seconds": 200.0, "windows": (Window(index=0, start_seconds=0, end_seconds=100.0),)}
        )
    )
    summary = stack.flusher().run()
    assert summary.stop_reason == "an unattributed refusal was traced by bisecting"
    assert summary.refusal_bisections >= 2
    items = stack.items.get_many(ids)
    innocent = [items[i] for i in ids if i != ids[2]]
    assert {item.state for item in innocent} == {ItemState.SUBMITTED}
    suspect = items[ids[2]]
    assert (suspect.state, suspect.refusals_alone) == (ItemState.QUEUED, 1)
    for _ in range(2):  # refused alone twice more: max_attempts (3) refusals
        stack.clock.advance(601)  # its retry, alone
        stack.flusher().run()
        suspect = stack.items.get(ids[2])  # type: ignore[assignment]
        assert suspect is not None
    assert suspect.state is ItemState.FAILED
    assert suspect.failure is not None
    assert suspect.failure.code == "request_rejected"
    assert "end_time" in suspect.failure.message  # the API's own words
    assert_each_submitted_once(stack)


def test_a_refusal_while_every_slot_is_taken_is_not_blamed_on_a_video(stack: Stack, videos: dict[str, Path]) -> None:
    """The sixth active batch refused with a 400 (variant active_limit_400) when the count was stale: no bisecting,
    nobody fails, everything waits for a slot."""
    stack.emulator_settings(variants=["active_limit_400"])
    ids = stack.queue(videos, ("short", "in/a.mp4"), ("short2", "in/b.mp4"))
    asset_id = stack.items.get(ids[0]).asset_id or ""  # type: ignore[union-attr]
    stack.emulator_settings(content_seconds_per_second=0.001)
    occupy_slots(stack, asset_id, 5)  # another tool holds every slot
    real = stack.twelvelabs.iter_batches
    calls = {"n": 0}

    def stale_count(**options: Any) -> Any:
        calls["n"] += 1
        return iter([]) if calls["n"] == 1 else real(**options)  # the first count missed the other tool's batches

    summary = stack.with_ports(twelvelabs=Wrapped(stack.twelvelabs, iter_batches=stale_count)).flush_service().run()
    assert summary.stop_reason is not None
    assert "every slot taken" in summary.stop_reason
    assert (summary.items_failed, summary.refusal_bisections) == (0, 0)
    assert {item.state for item in stack.items.get_many(ids).values()} == {ItemState.QUEUED}
