"""DynamoDB specifics the contract suite (tests/contract) cannot state for both backends: raw attributes, the table."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from videobatch.adapters.dynamodb import (
    DynamoItemRepository,
    table_definition,
)
from videobatch.domain.items import FailureReason, ItemState, Window
from videobatch.domain.records import (
    INFLIGHT_QUEUE,
    INTAKE_QUEUE,
    ItemRecord,
)

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


def test_terminal_items_leave_the_queues_and_get_a_ttl(dynamodb: Any) -> None:
    repo = DynamoItemRepository(dynamodb, TABLE)
    stored, _ = repo.create(make_item(state=ItemState.ASSET_PROCESSING, asset_created_at=T0))
    assert [item.item_id for item in repo.iter_queue(INTAKE_QUEUE)] == [stored.item_id]
    failure = FailureReason(code="asset_failed", message="broken")
    repo.save(stored.model_copy(update={"state": ItemState.FAILED, "failure": failure, "finished_at": T0}), stored)
    assert list(repo.iter_queue(INTAKE_QUEUE)) == []
    raw = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"ITEM#{stored.item_id}"}, "sk": {"S": "ITEM"}})["Item"]
    assert int(raw["ttl"]["N"]) > T0.timestamp()
    assert "gsi1pk" not in raw


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


def _index_key(dynamodb: Any, item_id: str) -> tuple[str, str] | None:
    raw = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"ITEM#{item_id}"}, "sk": {"S": "ITEM"}})["Item"]
    return (raw["gsi1pk"]["S"], raw["gsi1sk"]["S"]) if "gsi1pk" in raw else None


def test_states_nobody_lists_apart_share_one_queue_key(dynamodb: Any) -> None:
    """registered -> asset_processing and claimed -> submitted keep the item's gsi1 key: with a keys-only index
    such a save costs the index nothing (docs/dynamodb.md)."""
    repo = DynamoItemRepository(dynamodb, TABLE)
    stored, _ = repo.create(make_item())
    intake = _index_key(dynamodb, stored.item_id)
    processing = repo.save(stored.asset_created("as1", now=T0), stored)
    assert _index_key(dynamodb, stored.item_id) == intake
    window = (Window(index=0, start_seconds=0, end_seconds=10),)
    queued = repo.save(processing.asset_ready(10.0, window, now=T0), processing)
    claimed = repo.save(queued.claim("c1", now=T0), queued)
    in_flight = _index_key(dynamodb, stored.item_id)
    assert in_flight is not None
    assert in_flight[0] == INFLIGHT_QUEUE
    repo.save(claimed.submit("b1", {}, now=T0 + timedelta(seconds=5)), claimed)
    assert _index_key(dynamodb, stored.item_id) == in_flight
