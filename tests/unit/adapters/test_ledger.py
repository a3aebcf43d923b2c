"""The journal's layout in DynamoDB: chunks billed by the kilobyte, bounded below the 400 KB item limit, keyed by
their content so a retried write changes nothing; entries of the earlier one-per-outcome layout still read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from videobatch.adapters.ledger import CHUNK_MAX_BYTES, CHUNK_MAX_OUTCOMES, DynamoOutcomeLedger, outcome_pk
from videobatch.domain.outcomes import Outcome

from .conftest import TABLE

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def failure(n: int, *, key: str | None = None) -> Outcome:
    return Outcome(
        item_id=f"{n:032x}",
        bucket="uploads",
        key=key or f"videos/{n}.mp4",
        state="failed",
        finished_at=T0 + timedelta(seconds=n),
        failure_code="max_attempts_exceeded",
        failure_kind="pipeline",
    )


def journal(dynamodb: Any) -> list[dict[str, Any]]:
    response = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": outcome_pk("failed", T0.date())}},
    )
    items: list[dict[str, Any]] = response["Items"]
    return items


def test_chunks_hold_many_outcomes_and_stay_under_the_item_limit(dynamodb: Any) -> None:
    ledger = DynamoOutcomeLedger(dynamodb, TABLE)
    ledger.record([failure(n) for n in range(CHUNK_MAX_OUTCOMES + 1)])
    sizes = sorted(len(json.loads(item["outcomes"]["S"])) for item in journal(dynamodb))
    assert sizes == [1, CHUNK_MAX_OUTCOMES]
    long_key = "k/" + "é" * 509  # 1,020 bytes of UTF-8 in 511 characters
    ledger.record([failure(1000 + n, key=f"{long_key}{n:04d}") for n in range(CHUNK_MAX_OUTCOMES)])
    chunks = journal(dynamodb)
    assert len(chunks) > 3  # the byte bound split the long-key run before the count bound
    assert all(len(item["outcomes"]["S"].encode()) <= CHUNK_MAX_BYTES for item in chunks)
    assert len(list(ledger.iter_outcomes("failed", T0.date()))) == 2 * CHUNK_MAX_OUTCOMES + 1


def test_a_retried_write_puts_the_same_chunk(dynamodb: Any) -> None:
    ledger = DynamoOutcomeLedger(dynamodb, TABLE)
    outcomes = [failure(n) for n in range(5)]
    ledger.record(outcomes)
    ledger.record(list(reversed(outcomes)))
    assert len(journal(dynamodb)) == 1
    assert list(ledger.iter_outcomes("failed", T0.date())) == sorted(outcomes, key=lambda o: o.sort_key, reverse=True)


def test_entries_of_the_earlier_layout_are_read_and_retracted(dynamodb: Any) -> None:
    ledger = DynamoOutcomeLedger(dynamodb, TABLE)
    old = failure(7)
    plain = json.loads(old.model_dump_json(exclude_none=True))
    entry = {name: {"S": str(value)} for name, value in plain.items()}
    entry |= {"pk": {"S": outcome_pk("failed", T0.date())}, "sk": {"S": old.sort_key}}
    dynamodb.put_item(TableName=TABLE, Item=entry)
    ledger.record([failure(8)])
    assert [o.item_id for o in ledger.iter_outcomes("failed", T0.date())] == [failure(8).item_id, old.item_id]
    ledger.retract(old)
    assert [o.item_id for o in ledger.iter_outcomes("failed", T0.date())] == [failure(8).item_id]
    assert all(item["sk"]["S"] != old.sort_key for item in journal(dynamodb))  # the old entry itself is gone
