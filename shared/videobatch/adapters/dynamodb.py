"""The single DynamoDB table: items, batches, claims and leases (layout in docs/dynamodb.md).

Records are stored as native attributes (numbers as Decimal) plus the derived key attributes: ``pk``/``sk`` and the
sparse work-queue index ``gsi1`` (keys only: a write that keeps a record's queue key costs the index nothing, and a
queue read fetches the records it lists, eventually consistent like the index). Every save is a conditional put on the
version the caller read (and the state it expects), so a lost race surfaces as StaleStateError, never as an
overwrite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

from videobatch.adapters.attributes import from_item, to_item
from videobatch.domain.items import check_operator_transition, check_save
from videobatch.domain.records import (
    OPEN_BATCHES_QUEUE,
    PENDING_CLAIMS_QUEUE,
    BatchProgress,
    BatchRecord,
    BatchState,
    ClaimRecord,
    ClaimState,
    ItemRecord,
    sort_stamp,
)
from videobatch.errors import StaleStateError
from videobatch.services.ports import LeaseInfo

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ITEM_SK: Final = "ITEM"
BATCH_SK: Final = "BATCH"
PROGRESS_SK: Final = "PROGRESS"
RESULTS_DAYS: Final = 30
CLAIM_SK: Final = "CLAIM"
LEASE_SK: Final = "LEASE"
# Terminal items and closed records stay this long for audits and duplicate-event suppression, then TTL removes them.
RETENTION_SECONDS: Final = 90 * 24 * 3600
_BATCH_GET_MAX_KEYS: Final = 100
_INDEX_ATTRIBUTES: Final = ("pk", "sk", "gsi1pk", "gsi1sk", "ttl")

RecordT = TypeVar("RecordT", bound=BaseModel)


def _to_attributes(record: BaseModel, keys: Mapping[str, str | int | None]) -> dict[str, Any]:
    # JSON first: pydantic renders datetimes/enums, and parse_float=Decimal gives DynamoDB its number type.
    plain: dict[str, Any] = json.loads(record.model_dump_json(exclude_none=True), parse_float=Decimal)
    plain.update({name: value for name, value in keys.items() if value is not None})
    return to_item(plain)


def _from_attributes(model: type[RecordT], attributes: Mapping[str, Any]) -> RecordT:
    plain = from_item(attributes)
    for name in _INDEX_ATTRIBUTES:
        plain.pop(name, None)
    return model.model_validate(json.loads(json.dumps(plain, default=_decimal_to_number)))


def _decimal_to_number(value: object) -> int | float:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _ttl_epoch(moment: datetime) -> int:
    return int((moment + timedelta(seconds=RETENTION_SECONDS)).timestamp())


class _Table:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _put(self, attributes: dict[str, Any], condition: str, values: dict[str, Any] | None = None) -> bool:
        """Conditional put; False when the condition failed."""
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": attributes, "ConditionExpression": condition}
        names = {"#pk": "pk", "#version": "version", "#state": "state"}
        kwargs["ExpressionAttributeNames"] = {name: attr for name, attr in names.items() if name in condition}
        if values:
            kwargs["ExpressionAttributeValues"] = to_item(values)
        try:
            self._client.put_item(**kwargs)
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        )
        return response.get("Item")

    def _query_index(
        self, index: str, partition: str, *, until: str | None, page_size: int
    ) -> Iterator[dict[str, Any]]:
        """The records a queue lists, oldest first, page by page: the index gives their keys, one BatchGetItem
        (eventually consistent, as the index is) their attributes; a record gone meanwhile is skipped."""
        for page in self._query_keys(index, partition, until=until, page_size=page_size):
            found = self._batch_get([{"pk": key["pk"], "sk": key["sk"]} for key in page], consistent=False)
            yield from (
                found[(key["pk"]["S"], key["sk"]["S"])] for key in page if (key["pk"]["S"], key["sk"]["S"]) in found
            )

    def _batch_get(self, keys: list[dict[str, Any]], *, consistent: bool) -> dict[tuple[str, str], dict[str, Any]]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(keys), _BATCH_GET_MAX_KEYS):
            request: dict[str, Any] = {
                self._table: {"Keys": keys[start : start + _BATCH_GET_MAX_KEYS], "ConsistentRead": consistent}
            }
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for attributes in response.get("Responses", {}).get(self._table, []):
                    found[(attributes["pk"]["S"], attributes["sk"]["S"])] = attributes
                request = dict(response.get("UnprocessedKeys") or {})
        return found

    def _query_keys(
        self, index: str, partition: str, *, until: str | None, page_size: int
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of index keys, oldest first (ascending sort key); ``until`` bounds the sort key from above."""
        key_condition = f"{index}pk = :pk"
        values: dict[str, Any] = {":pk": {"S": partition}}
        if until is not None:
            key_condition += f" AND {index}sk <= :until"
            values[":until"] = {"S": until}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": True,
            "Limit": page_size,
        }
        while True:
            response = self._client.query(**kwargs)
            if response.get("Items"):
                yield response["Items"]
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def _save(self, attributes: dict[str, Any], expected_version: int, extra: Mapping[str, object]) -> bool:
        """Put conditional on the stored version (and any extra attribute equalities)."""
        condition = "#version = :expected_version"
        values: dict[str, Any] = {":expected_version": expected_version}
        for index, value in enumerate(extra.values()):
            condition += f" AND #c{index} = :c{index}"
            values[f":c{index}"] = value
        names = {"#version": "version"} | {f"#c{index}": name for index, name in enumerate(extra)}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=attributes,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True


class DynamoItemRepository(_Table):
    """Items: ``pk = ITEM#{item_id}``, ``sk = ITEM``; work queues in gsi1."""

    def create(self, item: ItemRecord) -> tuple[ItemRecord, bool]:
        """Store a new item; when one with this id exists already, return that one and False (a duplicate event)."""
        stored = item.model_copy(update={"version": 1})
        if self._put(self._attributes(stored), "attribute_not_exists(#pk)"):
            return stored, True
        existing = self.get(item.item_id)
        if existing is None:  # deleted by TTL between the two calls; vanishingly rare, let the caller retry
            raise StaleStateError(f"item {item.item_id} exists and vanished while being read")
        return existing, False

    def get(self, item_id: str) -> ItemRecord | None:
        attributes = self._get(f"ITEM#{item_id}", ITEM_SK)
        return None if attributes is None else _from_attributes(ItemRecord, attributes)

    def get_many(self, item_ids: Sequence[str]) -> dict[str, ItemRecord]:
        """Strongly consistent reads of many items (missing ones are absent from the result)."""
        keys = [{"pk": {"S": f"ITEM#{i}"}, "sk": {"S": ITEM_SK}} for i in dict.fromkeys(item_ids)]
        records = (_from_attributes(ItemRecord, a) for a in self._batch_get(keys, consistent=True).values())
        return {record.item_id: record for record in records}

    def save(self, new: ItemRecord, expected: ItemRecord) -> ItemRecord:
        """Replace ``expected`` with ``new`` (version + 1) unless someone else wrote it since; else StaleStateError.

        The condition also pins the state and, when set, the claim and batch the caller saw, so the intent of the
        check is explicit even where the version alone would already catch the race. A move the lifecycle does not
        allow is refused before anything is sent (InvalidTransitionError): production has the simulation's check.
        """
        check_save(expected.state, new.state)
        stored = new.model_copy(update={"version": expected.version + 1})
        extra: dict[str, object] = {"state": expected.state.value}
        if expected.claim_id is not None:
            extra["claim_id"] = expected.claim_id
        if expected.batch_id is not None:
            extra["batch_id"] = expected.batch_id
        if not self._save(self._attributes(stored), expected.version, extra):
            raise StaleStateError(
                f"item {expected.item_id} changed since version {expected.version} ({expected.state.value})"
            )
        return stored

    def reopen(self, new: ItemRecord, expected: ItemRecord) -> ItemRecord:
        """An operator's move of a failed item back to work (domain.items.OPERATOR_TRANSITIONS), conditional like
        ``save``; every other move is refused here (InvalidTransitionError), as ``save`` refuses these."""
        check_operator_transition(expected.state, new.state)
        stored = new.model_copy(update={"version": expected.version + 1})
        if not self._save(self._attributes(stored), expected.version, {"state": expected.state.value}):
            raise StaleStateError(
                f"item {expected.item_id} changed since version {expected.version} ({expected.state.value})"
            )
        return stored

    def iter_queue(self, queue: str, *, until: datetime | None = None, page_size: int = 100) -> Iterator[ItemRecord]:
        """Items in a work queue, oldest first; ``until`` skips items whose queue time is later (not yet eligible).

        Index reads are eventually consistent: a listed item may have moved on already, which the conditional save
        of whoever acts on it detects.
        """
        bound = None if until is None else f"{sort_stamp(until)}#~"
        for attributes in self._query_index("gsi1", queue, until=bound, page_size=page_size):
            yield _from_attributes(ItemRecord, attributes)

    @staticmethod
    def _attributes(item: ItemRecord) -> dict[str, Any]:
        queue = item.queue_key()
        keys: dict[str, str | int | None] = {"pk": f"ITEM#{item.item_id}", "sk": ITEM_SK}
        if queue is not None:
            keys["gsi1pk"], keys["gsi1sk"] = queue
        if item.terminal:
            keys["ttl"] = _ttl_epoch(item.finished_at or item.updated_at)
        return _to_attributes(item, keys)


class DynamoBatchRepository(_Table):
    """Batches: ``pk = BATCH#{batch_id}``; ``sk = BATCH`` the facts (written once), ``sk = PROGRESS`` what checks
    change, listed while open in gsi1 ``Q#batch_open`` (oldest first): a poll reads and writes a few hundred bytes."""

    def create(self, batch: BatchRecord, progress: BatchProgress) -> BatchRecord:
        """Store a new batch; a record of the same claim already there (a retried recording) is accepted, and its
        progress is written only if missing (the facts go first, so a batch in the open index always has them)."""
        stored = batch.model_copy(update={"version": 1})
        if not self._put(self._attributes(stored), "attribute_not_exists(#pk)"):
            existing = self.get(batch.batch_id)
            if existing is None or existing.claim_id != batch.claim_id:
                raise StaleStateError(f"batch {batch.batch_id} is recorded already for another claim")
            stored = existing
        self._put(self._progress_attributes(progress.model_copy(update={"version": 1})), "attribute_not_exists(#pk)")
        return stored

    def get(self, batch_id: str) -> BatchRecord | None:
        # Written once: an eventually consistent read (half the price) cannot see a stale version of it.
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": BATCH_SK}}
        )
        attributes = response.get("Item")
        return None if attributes is None else _from_attributes(BatchRecord, attributes)

    def get_progress(self, batch_id: str) -> BatchProgress | None:
        attributes = self._get(f"BATCH#{batch_id}", PROGRESS_SK)
        return None if attributes is None else _from_attributes(BatchProgress, attributes)

    def save_progress(self, new: BatchProgress, expected: BatchProgress) -> BatchProgress:
        stored = new.model_copy(update={"version": expected.version + 1})
        extra = {"state": expected.state.value}
        if not self._save(self._progress_attributes(stored), expected.version, extra):
            raise StaleStateError(f"batch {expected.batch_id} progress changed since version {expected.version}")
        return stored

    def iter_open(self, *, page_size: int = 100) -> Iterator[BatchProgress]:
        for attributes in self._query_index("gsi1", OPEN_BATCHES_QUEUE, until=None, page_size=page_size):
            yield _from_attributes(BatchProgress, attributes)

    @staticmethod
    def _attributes(batch: BatchRecord) -> dict[str, Any]:
        # Kept as long as its progress can be: results live 30 days, records the retention after that.
        expires = _ttl_epoch(batch.created_at + timedelta(days=RESULTS_DAYS))
        keys: dict[str, str | int | None] = {"pk": f"BATCH#{batch.batch_id}", "sk": BATCH_SK, "ttl": expires}
        return _to_attributes(batch, keys)

    @staticmethod
    def _progress_attributes(progress: BatchProgress) -> dict[str, Any]:
        keys: dict[str, str | int | None] = {"pk": f"BATCH#{progress.batch_id}", "sk": PROGRESS_SK}
        if progress.state is BatchState.OPEN:
            stamp = f"{sort_stamp(progress.created_at)}#{progress.batch_id}"
            keys["gsi1pk"], keys["gsi1sk"] = OPEN_BATCHES_QUEUE, stamp
        else:
            keys["ttl"] = _ttl_epoch(progress.closed_at or progress.created_at)
        return _to_attributes(progress, keys)


class DynamoClaimRepository(_Table):
    """Claims: ``pk = CLAIM#{claim_id}``; pending ones listed in gsi1 ``Q#claim_pending`` for the reconciler."""

    def create(self, claim: ClaimRecord) -> ClaimRecord:
        stored = claim.model_copy(update={"version": 1})
        if not self._put(self._attributes(stored), "attribute_not_exists(#pk)"):
            raise StaleStateError(f"claim {claim.claim_id} exists already")
        return stored

    def get(self, claim_id: str) -> ClaimRecord | None:
        attributes = self._get(f"CLAIM#{claim_id}", CLAIM_SK)
        return None if attributes is None else _from_attributes(ClaimRecord, attributes)

    def save(self, new: ClaimRecord, expected: ClaimRecord) -> ClaimRecord:
        stored = new.model_copy(update={"version": expected.version + 1})
        if not self._save(self._attributes(stored), expected.version, {"state": expected.state.value}):
            raise StaleStateError(f"claim {expected.claim_id} changed since version {expected.version}")
        return stored

    def iter_pending(self, *, page_size: int = 100) -> Iterator[ClaimRecord]:
        for attributes in self._query_index("gsi1", PENDING_CLAIMS_QUEUE, until=None, page_size=page_size):
            yield _from_attributes(ClaimRecord, attributes)

    @staticmethod
    def _attributes(claim: ClaimRecord) -> dict[str, Any]:
        keys: dict[str, str | int | None] = {"pk": f"CLAIM#{claim.claim_id}", "sk": CLAIM_SK}
        if claim.state is ClaimState.PENDING:
            keys["gsi1pk"], keys["gsi1sk"] = PENDING_CLAIMS_QUEUE, f"{sort_stamp(claim.created_at)}#{claim.claim_id}"
        else:
            keys["ttl"] = _ttl_epoch(claim.created_at)
        return _to_attributes(claim, keys)


class DynamoLeaseStore(_Table):
    """Mutual exclusion for periodic jobs: ``pk = LEASE#{name}``, held until released or ``expires_at`` passes."""

    def acquire(self, name: str, owner: str, *, now: datetime, duration_seconds: float) -> bool:
        """Take the lease if it is free or expired; False when someone else holds it."""
        expires_at = now + timedelta(seconds=duration_seconds)
        attributes = {
            "pk": {"S": f"LEASE#{name}"},
            "sk": {"S": LEASE_SK},
            "owner": {"S": owner},
            "expires_at_epoch_ms": {"N": str(_epoch_ms(expires_at))},
            "expires_at": {"S": sort_stamp(expires_at)},
            # A crashed holder's record disappears eventually even if nobody takes the lease again.
            "ttl": {"N": str(int(expires_at.timestamp()) + 24 * 3600)},
        }
        return self._put(
            attributes,
            "attribute_not_exists(#pk) OR expires_at_epoch_ms <= :now_ms OR #owner = :owner",
            {":now_ms": _epoch_ms(now), ":owner": owner},
        )

    def inspect(self, name: str) -> LeaseInfo | None:
        """The lease as stored (possibly expired: TTL removes it a day later, and ``acquire`` takes it over)."""
        attributes = self._get(f"LEASE#{name}", LEASE_SK)
        if attributes is None:
            return None
        expires_at = datetime.fromtimestamp(int(attributes["expires_at_epoch_ms"]["N"]) / 1000, tz=UTC)
        return LeaseInfo(name=name, owner=attributes["owner"]["S"], expires_at=expires_at)

    def release(self, name: str, owner: str) -> bool:
        """Give the lease up if still ours; False when it expired and someone else took it meanwhile."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": f"LEASE#{name}"}, "sk": {"S": LEASE_SK}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    def _put(self, attributes: dict[str, Any], condition: str, values: dict[str, Any] | None = None) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=attributes,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#pk": "pk", "#owner": "owner"},
                ExpressionAttributeValues=to_item(values or {}),
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True


class DynamoReplayGuard(_Table):
    """Webhook signatures seen: ``pk = WEBHOOK#{digest}``, ``sk = SEEN``, removed by TTL once too old to replay."""

    def first_seen(self, signature: str, *, now: datetime, remember_seconds: float) -> bool:
        attributes = {
            "pk": {"S": f"WEBHOOK#{signature}"},
            "sk": {"S": "SEEN"},
            "seen_at": {"S": sort_stamp(now)},
            "ttl": {"N": str(int(now.timestamp() + remember_seconds))},
        }
        return self._put(attributes, "attribute_not_exists(#pk)")


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments for the table this module expects; mirrors template.yaml (a test keeps them equal).

    Used by tests and local tooling that run without CloudFormation.
    """
    index_names = ("gsi1",)
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("pk", "sk", *(f"{index}{part}" for index in index_names for part in ("pk", "sk")))
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": f"{index}pk", "KeyType": "HASH"},
                    {"AttributeName": f"{index}sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
            for index in index_names
        ],
    }


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the table (with TTL on ``ttl``) and wait until it is active."""
    client.create_table(**table_definition(table_name))
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
