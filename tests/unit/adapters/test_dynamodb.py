from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from videobatch.adapters.dynamodb import (
    DynamoBatchRepository,
    DynamoClaimRepository,
    DynamoItemRepository,
    DynamoLeaseStore,
    table_definition,
)
from videobatch.domain.items import FailureReason, ItemState, Window
from videobatch.domain.records import (
    ASSET_QUEUE,
    BatchRecord,
    BatchState,
    ClaimRecord,
    ClaimState,
    ItemRecord,
    queued_queue,
)
from videobatch.errors import StaleStateError

from .conftest import TABLE

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_item(item_id: str = "a" * 32, **changes: Any) -> ItemRecord:
    base = ItemRecord(
        item_id=item_id,
        bucket="uploads",
        key="videos/cat.mp4",
        size_bytes=1234,
        profile_name="default",
        analysis_mode="general",
        state=ItemState.REGISTERED,
        created_at=T0,
        updated_at=T0,
    )
    return base.model_copy(update=changes)


def queued(item: ItemRecord, at: datetime) -> ItemRecord:
    return item.model_copy(
        update={
            "state": ItemState.QUEUED,
            "duration_seconds": 12.5,
            "windows": (Window(index=0, start_seconds=0, end_seconds=12.5),),
            "queued_at": at,
            "eligible_at": at,
        }
    )


def test_create_is_idempotent_and_returns_the_stored_item(dynamodb: Any) -> None:
    repo = DynamoItemRepository(dynamodb, TABLE)
    first, created = repo.create(make_item())
    again, created_again = repo.create(make_item(key="other.mp4"))
    assert (created, created_again) == (True, False)
    assert first.version == 1
    assert again == first  # the duplicate returns what is stored, not what was offered


def test_round_trip_keeps_every_field(dynamodb: Any) -> None:
    repo = DynamoItemRepository(dynamodb, TABLE)
    item = queued(make_item(version_id="v1", etag="e", task_ids={"x": "y"}), T0).model_copy(
        update={"failure": None, "duration_seconds": 7200.125}
    )
    stored, _ = repo.create(item)
    assert repo.get(item.item_id) == stored


def test_save_increments_version_and_stale_writer_loses(dynamodb: Any) -> None:
    repo = DynamoItemRepository(dynamodb, TABLE)
    stored, _ = repo.create(make_item())
    moved = repo.save(stored.model_copy(update={"state": ItemState.ASSET_PROCESSING, "asset_id": "as1"}), stored)
    assert moved.version == 2
    with pytest.raises(StaleStateError):
        repo.save(stored.model_copy(update={"state": ItemState.FAILED}), stored)
    assert repo.get(stored.item_id) == moved


def test_save_is_conditional_on_batch_id(dynamodb: Any) -> None:
    repo = DynamoItemRepository(dynamodb, TABLE)
    stored, _ = repo.create(make_item(state=ItemState.CLAIMED, claim_id="c1"))
    submitted = repo.save(stored.model_copy(update={"state": ItemState.SUBMITTED, "batch_id": "b1"}), stored)
    impostor = submitted.model_copy(update={"batch_id": "b2"})  # a checker of another batch with a matching version
    with pytest.raises(StaleStateError):
        repo.save(impostor.model_copy(update={"state": ItemState.DONE}), impostor)


def test_queue_lists_oldest_first_and_respects_until(dynamodb: Any) -> None:
    repo = DynamoItemRepository(dynamodb, TABLE)
    for index, minutes in enumerate([30, 10, 20]):
        repo.create(queued(make_item(f"{index:032x}"), T0 + timedelta(minutes=minutes)))
    ids = [item.item_id for item in repo.iter_queue(queued_queue("general"), page_size=1)]
    assert ids == [f"{1:032x}", f"{2:032x}", f"{0:032x}"]
    early = [item.item_id for item in repo.iter_queue(queued_queue("general"), until=T0 + timedelta(minutes=20))]
    assert early == [f"{1:032x}", f"{2:032x}"]
    assert list(repo.iter_queue(queued_queue("time_based_metadata"))) == []


def test_terminal_items_leave_the_queues_and_get_a_ttl(dynamodb: Any) -> None:
    repo = DynamoItemRepository(dynamodb, TABLE)
    stored, _ = repo.create(make_item(state=ItemState.ASSET_PROCESSING, asset_created_at=T0))
    assert [item.item_id for item in repo.iter_queue(ASSET_QUEUE)] == [stored.item_id]
    failure = FailureReason(code="asset_failed", message="broken")
    repo.save(stored.model_copy(update={"state": ItemState.FAILED, "failure": failure, "finished_at": T0}), stored)
    assert list(repo.iter_queue(ASSET_QUEUE)) == []
    raw = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"ITEM#{stored.item_id}"}, "sk": {"S": "ITEM"}})["Item"]
    assert int(raw["ttl"]["N"]) > T0.timestamp()
    assert "gsi1pk" not in raw


def test_batch_membership_and_get_many(dynamodb: Any) -> None:
    repo = DynamoItemRepository(dynamodb, TABLE)
    ids = [f"{n:032x}" for n in range(3)]
    for item_id in ids:
        repo.create(make_item(item_id, state=ItemState.SUBMITTED, batch_id="b1", submitted_at=T0))
    assert sorted(item.item_id for item in repo.iter_batch_items("b1")) == ids
    assert set(repo.get_many([*ids, "f" * 32, ids[0]])) == set(ids)


def make_batch(**changes: Any) -> BatchRecord:
    base = BatchRecord(
        batch_id="b" * 24,
        api_status="pending",
        analysis_mode="general",
        claim_id="c1",
        created_at=T0,
        expires_at=T0 + timedelta(hours=24),
        item_ids=("a" * 32,),
        task_ids={"x": "t1"},
        content_seconds=12.5,
    )
    return base.model_copy(update=changes)


def test_batch_records_open_and_close(dynamodb: Any) -> None:
    repo = DynamoBatchRepository(dynamodb, TABLE)
    stored = repo.create(make_batch())
    assert repo.create(make_batch()) == stored  # a retried flush recording the same batch
    with pytest.raises(StaleStateError):
        repo.create(make_batch(claim_id="other"))
    assert [batch.batch_id for batch in repo.iter_open()] == [stored.batch_id]
    closed = repo.save(stored.model_copy(update={"state": BatchState.CLOSED, "closed_at": T0}), stored)
    assert list(repo.iter_open()) == []
    with pytest.raises(StaleStateError):
        repo.save(stored, stored)
    assert repo.get(stored.batch_id) == closed


def test_claims_are_created_once_and_saved_conditionally(dynamodb: Any) -> None:
    repo = DynamoClaimRepository(dynamodb, TABLE)
    claim = ClaimRecord(
        claim_id="c1",
        owner="flusher-1",
        analysis_mode="general",
        created_at=T0,
        item_ids=("a" * 32,),
        custom_ids={"x": "a" * 32},
        content_seconds=1.0,
    )
    stored = repo.create(claim)
    with pytest.raises(StaleStateError):
        repo.create(claim)
    assert [c.claim_id for c in repo.iter_pending()] == ["c1"]
    created = repo.save(stored.model_copy(update={"state": ClaimState.CREATED, "batch_id": "b"}), stored)
    assert repo.get("c1") == created
    assert list(repo.iter_pending()) == []
    with pytest.raises(StaleStateError):
        repo.save(stored.model_copy(update={"state": ClaimState.RELEASED}), stored)


def test_lease_is_exclusive_until_released_or_expired(dynamodb: Any) -> None:
    lease = DynamoLeaseStore(dynamodb, TABLE)
    assert lease.acquire("flush", "one", now=T0, duration_seconds=60)
    assert not lease.acquire("flush", "two", now=T0 + timedelta(seconds=59), duration_seconds=60)
    assert lease.acquire("flush", "one", now=T0 + timedelta(seconds=1), duration_seconds=60)  # renewal by the owner
    assert not lease.release("flush", "two")
    assert lease.release("flush", "one")
    assert lease.acquire("flush", "two", now=T0, duration_seconds=60)
    assert lease.acquire("flush", "three", now=T0 + timedelta(seconds=61), duration_seconds=60)  # expired
    assert not lease.release("flush", "two")


def test_table_definition_matches_template() -> None:
    yaml = pytest.importorskip("yaml")
    template = Path(__file__).resolve().parents[3] / "template.yaml"
    if not template.exists():
        pytest.skip("template.yaml not written yet")

    class _Loader(yaml.SafeLoader):
        pass

    # CloudFormation short-form tags (!Ref, !GetAtt, ...) are irrelevant here: read them as plain values.
    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    resources = yaml.load(template.read_text(), Loader=_Loader)["Resources"]
    tables = [r["Properties"] for r in resources.values() if r.get("Type") == "AWS::DynamoDB::Table"]
    assert len(tables) == 1
    expected = table_definition("x")
    props = tables[0]
    assert props["KeySchema"] == expected["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    assert {(g["IndexName"], str(g["KeySchema"])) for g in props["GlobalSecondaryIndexes"]} == {
        (g["IndexName"], str(g["KeySchema"])) for g in expected["GlobalSecondaryIndexes"]
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
