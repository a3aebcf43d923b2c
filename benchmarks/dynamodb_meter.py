"""DynamoDB capacity by DynamoDB's own rules, metered on the real boto3 calls the adapters make (botocore hooks).

Whatever the adapters send is what is billed, so a change of access pattern (partial updates, smaller records,
reading only keys from an index) shows here exactly as it would on the bill. The rules applied:

- item size: attribute names plus values (strings and binaries by length, numbers by digits / 2 + 1, booleans
  and nulls 1 byte, lists and maps 3 bytes plus 1 per element plus the elements), as AWS documents it;
- writes: 1 WCU per KB (rounded up) of the larger of the old and new item; a failed conditional write still
  consumes the size of the existing item (at least 1 WCU); transactions cost twice;
- global secondary indexes (read from the table's description): an item entering an index costs the size of
  what it projects there (the whole item for ALL, its keys for KEYS_ONLY), leaving one costs the old projection,
  moving to another key costs both; staying with the same key costs the larger projection for ALL and nothing for
  KEYS_ONLY (the index entry does not change);
- reads: 1 RCU per 4 KB (rounded up) for a strongly consistent read, half for an eventually consistent one
  (every index query); a Query rounds up the total size of the page it returned; a miss still costs the minimum.

The meter keeps the old image of every item it saw written (from the request, or read back unmetered after an
UpdateItem), which is what index accounting needs. Only calls made on the metered client count.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BASE_KEYS = ("pk", "sk")


def value_size(value: Mapping[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind in ("S",):
        return len(inner.encode("utf-8"))
    if kind == "B":
        return len(inner)
    if kind == "N":
        return len(str(inner).lstrip("-").replace(".", "")) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + value_size(element) for name, element in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(element)) for element in inner)
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(attributes: Mapping[str, Any] | None) -> int:
    if not attributes:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in attributes.items())


def _projected(image: Mapping[str, Any] | None, projection: str, pk: str, sk: str) -> int:
    """The size of what an index keeps of an item: all of it, or its keys."""
    if projection == "ALL":
        return item_size(image)
    return item_size({k: v for k, v in (image or {}).items() if k in (pk, sk, *BASE_KEYS)})


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


@dataclass
class Meter:
    """Hooks itself on a boto3 DynamoDB client; ``shadow`` is an unmetered client on the same table."""

    client: Any
    shadow: Any
    wcu: float = 0.0
    rcu: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    wcu_by_operation: Counter[str] = field(default_factory=Counter)
    rcu_by_operation: Counter[str] = field(default_factory=Counter)
    wcu_by_record: Counter[str] = field(default_factory=Counter)  # "<sk> base" / "<sk> index"
    _images: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    # index name -> (hash key, range key, projection type), from DescribeTable of the first table seen
    _indexes: dict[str, tuple[str, str, str]] | None = None

    def install(self) -> Meter:
        events = self.client.meta.events
        events.register("before-parameter-build.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)
        return self

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["meter"] = copy.deepcopy(params)

    def _after(
        self, http_response: Any, parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        params = context.pop("meter", {})
        name = model.name
        self.calls[name] += 1
        failed_condition = parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
        ok = http_response.status_code < 400
        if name == "PutItem" and (ok or failed_condition):
            self._write(name, params["TableName"], params["Item"], failed_condition)
        elif name == "UpdateItem" and (ok or failed_condition):
            new = None if failed_condition else self._read_back(params["TableName"], params["Key"])
            self._write(name, params["TableName"], new, failed_condition, key=params["Key"])
        elif name == "DeleteItem" and (ok or failed_condition):
            self._write(name, params["TableName"], None, failed_condition, key=params["Key"])
        elif name == "BatchWriteItem" and ok:
            # Each put or delete costs as its own; unprocessed ones are retried by the caller and metered then.
            unprocessed = parsed.get("UnprocessedItems", {})
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if request in unprocessed.get(table, []):
                        continue
                    if "PutRequest" in request:
                        self._write(name, table, request["PutRequest"]["Item"], False)
                    else:
                        self._write(name, table, None, False, key=request["DeleteRequest"]["Key"])
        elif name == "TransactWriteItems" and ok:
            for entry in params["TransactItems"]:
                self._transact(entry)
        elif name == "GetItem" and ok:
            consistent = params.get("ConsistentRead", False)
            self._read(name, item_size(parsed.get("Item")), consistent)
        elif name == "BatchGetItem" and ok:
            for table, items in parsed.get("Responses", {}).items():
                consistent = params["RequestItems"][table].get("ConsistentRead", False)
                for item in items:
                    self._read(name, item_size(item), consistent)
        elif name == "Query" and ok:
            consistent = params.get("ConsistentRead", False) and "IndexName" not in params
            self._read(name, sum(item_size(item) for item in parsed.get("Items", [])), consistent)

    def _transact(self, entry: Mapping[str, Any]) -> None:
        ((kind, body),) = entry.items()
        before = self.wcu
        if kind == "Put":
            self._write("TransactWriteItems", body["TableName"], body["Item"], False)
        elif kind == "Update":
            new = self._read_back(body["TableName"], body["Key"])
            self._write("TransactWriteItems", body["TableName"], new, False, key=body["Key"])
        elif kind == "Delete":
            self._write("TransactWriteItems", body["TableName"], None, False, key=body["Key"])
        elif kind == "ConditionCheck":
            self.wcu += 1
            self.wcu_by_operation["TransactWriteItems"] += 1
        half = self.wcu - before  # a transaction costs each of its writes twice
        self.wcu += half
        self.wcu_by_operation["TransactWriteItems"] += half

    def _read_back(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.shadow.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item

    def _write(
        self,
        operation: str,
        table: str,
        new: Mapping[str, Any] | None,
        failed_condition: bool,
        key: Mapping[str, Any] | None = None,
    ) -> None:
        source = new if new is not None else key
        assert source is not None
        ident = (table, source["pk"]["S"], source["sk"]["S"])
        old = self._images.get(ident)
        # The record kind: sk names it, except outcome journal entries (pk OUTCOME#..., sk unique per item).
        record = "OUTCOME" if ident[1].startswith("OUTCOME#") else ident[2]
        if failed_condition:
            cost = _units(item_size(old), 1024)
            self.wcu_by_record[f"{record} failed condition"] += cost
        else:
            base, index = _units(max(item_size(old), item_size(new)), 1024), self._index_cost(table, old, new)
            cost = base + index
            self.wcu_by_record[f"{record} base"] += base
            self.wcu_by_record[f"{record} index"] += index
            if new is None:
                self._images.pop(ident, None)
            else:
                self._images[ident] = dict(new)
        self.wcu += cost
        self.wcu_by_operation[operation] += cost

    def _index_cost(self, table: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> int:
        cost = 0
        for pk, sk, projection in self._table_indexes(table).values():
            before = (old or {}).get(pk), (old or {}).get(sk)
            after = (new or {}).get(pk), (new or {}).get(sk)
            in_before, in_after = before[0] is not None, after[0] is not None

            if in_before and in_after and before == after:
                if projection == "ALL":
                    cost += _units(max(item_size(old), item_size(new)), 1024)
            else:
                cost += _units(_projected(old, projection, pk, sk), 1024) if in_before else 0
                cost += _units(_projected(new, projection, pk, sk), 1024) if in_after else 0
        return cost

    def _table_indexes(self, table: str) -> dict[str, tuple[str, str, str]]:
        if self._indexes is None:
            description = self.shadow.describe_table(TableName=table)["Table"]
            self._indexes = {}
            for index in description.get("GlobalSecondaryIndexes", []):
                keys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
                self._indexes[index["IndexName"]] = (keys["HASH"], keys["RANGE"], index["Projection"]["ProjectionType"])
        return self._indexes

    def _read(self, operation: str, size: int, consistent: bool) -> None:
        cost = _units(size, 4096) * (1.0 if consistent else 0.5)
        self.rcu += cost
        self.rcu_by_operation[operation] += cost
