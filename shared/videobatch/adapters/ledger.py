"""The outcome ledger in the items table (``domain.outcomes``): daily totals and a journal of done / failed items.

Records (beside items, batches, claims and leases; docs/dynamodb.md):

- ``pk = STATS#{yyyy-mm-dd}``, ``sk = STATS``: the day's counters (``done``, ``failed``, ``failed_user``,
  ``failed_pipeline``, ``content_seconds``, ``windows``, ``input_tokens``, ``output_tokens``) and per 5-minute slot
  ``d_{slot}`` / ``f_{slot}`` (done / failed). One ``UpdateItem ... ADD`` per day a write touches: atomic, so
  concurrent functions never lose each other's counts, and no read first. Kept ``DAY_RETENTION_SECONDS``.
- ``pk = OUTCOME#{state}#{yyyy-mm-dd}``: the journal of the day's outcomes, in chunks. ``sk = C#{newest}#{digest}``
  holds the outcomes one ``record`` call wrote (up to ``CHUNK_MAX_OUTCOMES`` or ``CHUNK_MAX_BYTES``) as one JSON
  string: DynamoDB bills a write by the kilobyte, so 200 outcomes of ~250 bytes cost ~50 WCU in one chunk and 200
  in entries of their own (each under 1 KB, each rounded up). The key is the content's, so a retried write puts
  the same chunk again; readers drop an outcome seen twice. ``sk = R#{finished_at}#{item_id}`` is a retraction
  (an operator requeued the failure). Entries of the earlier layout (``sk = {finished_at}#{item_id}``, one per
  outcome) are still read and retracted. Kept as long as the items (90 days); read on the table itself, no index.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from videobatch.adapters.attributes import from_item
from videobatch.domain.outcomes import DayTotals, Outcome, OutcomeState, by_day
from videobatch.errors import VideoBatchError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

STATS_SK: Final = "STATS"
# Outcome entries live as long as the items they describe; the day counters a year longer, for usage reports.
OUTCOME_RETENTION_SECONDS: Final = 90 * 24 * 3600
DAY_RETENTION_SECONDS: Final = 455 * 24 * 3600
_BATCH_WRITE_MAX: Final = 25
CHUNK_MAX_OUTCOMES: Final = 200
# Far below the 400 KB an item may hold; with keys of up to 1 KB the count alone would not bound it.
CHUNK_MAX_BYTES: Final = 128 * 1024
CHUNK_PREFIX: Final = "C#"
RETRACTED_PREFIX: Final = "R#"
_BATCH_GET_MAX: Final = 100
_UNPROCESSED_RETRIES: Final = 5
_COUNTERS: Final = (
    "done",
    "failed",
    "failed_user",
    "failed_pipeline",
    "content_seconds",
    "windows",
    "input_tokens",
    "output_tokens",
)


class LedgerWriteError(VideoBatchError):
    """DynamoDB kept refusing some journal entries (throttled) after the retries."""


def day_pk(day: date) -> str:
    return f"STATS#{day.isoformat()}"


def outcome_pk(state: OutcomeState, day: date) -> str:
    return f"OUTCOME#{state}#{day.isoformat()}"


def _ttl(outcome: Outcome) -> dict[str, str]:
    """A journal record lives as long as the item it describes."""
    return {"N": str(int((outcome.finished_at + timedelta(seconds=OUTCOME_RETENTION_SECONDS)).timestamp()))}


def _number(value: float) -> dict[str, str]:
    return {"N": str(Decimal(str(value)))}


class DynamoOutcomeLedger:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # --- writing --------------------------------------------------------------------------------------------

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Journal the outcomes, then add them to their days' counters (one UpdateItem per day)."""
        if not outcomes:
            return
        self._journal(outcomes)
        for change in by_day(outcomes).values():
            self._add(change, sign=1)

    def retract(self, outcome: Outcome) -> None:
        """A failure an operator requeued: no longer counted as failed (its slot keeps the throughput) nor listed."""
        change = DayTotals.of_outcomes(outcome.day, [outcome])
        self._add(change.model_copy(update={"done_slots": {}, "failed_slots": {}}), sign=-1)
        pk = outcome_pk(outcome.state, outcome.day)
        tombstone = {"pk": {"S": pk}, "sk": {"S": RETRACTED_PREFIX + outcome.sort_key}, "ttl": _ttl(outcome)}
        self._client.put_item(TableName=self._table, Item=tombstone)
        # An entry of the earlier layout, if the outcome has one.
        self._client.delete_item(TableName=self._table, Key={"pk": {"S": pk}, "sk": {"S": outcome.sort_key}})

    def _journal(self, outcomes: Sequence[Outcome]) -> None:
        requests = [{"PutRequest": {"Item": chunk}} for chunk in self._chunks(outcomes)]
        for start in range(0, len(requests), _BATCH_WRITE_MAX):
            pending: dict[str, Any] = {self._table: requests[start : start + _BATCH_WRITE_MAX]}
            for attempt in range(_UNPROCESSED_RETRIES + 1):
                response = self._client.batch_write_item(RequestItems=pending)
                pending = dict(response.get("UnprocessedItems") or {})
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))  # throttled: back off as the SDKs advise
            if pending:
                raise LedgerWriteError(f"{len(pending[self._table])} outcome entries not written (throttled)")

    def _chunks(self, outcomes: Sequence[Outcome]) -> Iterator[dict[str, Any]]:
        """The outcomes as chunk records, one run per (state, day), newest first within a chunk."""
        groups: dict[tuple[OutcomeState, date], list[Outcome]] = {}
        for outcome in outcomes:
            groups.setdefault((outcome.state, outcome.day), []).append(outcome)
        for (state, day), group in groups.items():
            newest_first = sorted({o.sort_key: o for o in group}.values(), key=lambda o: o.sort_key, reverse=True)
            chunk: list[str] = []
            size = 0
            newest = newest_first[0]
            for outcome in newest_first:
                encoded = outcome.model_dump_json(exclude_none=True)
                encoded_bytes = len(encoded.encode())  # DynamoDB counts UTF-8 bytes
                if chunk and (len(chunk) == CHUNK_MAX_OUTCOMES or size + encoded_bytes > CHUNK_MAX_BYTES):
                    yield self._chunk(state, day, newest, chunk)
                    chunk, size, newest = [], 0, outcome
                chunk.append(encoded)
                size += encoded_bytes + 1
            yield self._chunk(state, day, newest, chunk)

    @staticmethod
    def _chunk(state: OutcomeState, day: date, newest: Outcome, encoded: list[str]) -> dict[str, Any]:
        body = "[" + ",".join(encoded) + "]"
        digest = hashlib.sha256(body.encode()).hexdigest()[:16]
        return {
            "pk": {"S": outcome_pk(state, day)},
            "sk": {"S": f"{CHUNK_PREFIX}{newest.sort_key}#{digest}"},
            "outcomes": {"S": body},
            "ttl": _ttl(newest),
        }

    def _add(self, change: DayTotals, *, sign: int) -> None:
        additions: dict[str, float] = {name: getattr(change, name) for name in _COUNTERS if getattr(change, name)}
        additions |= {f"d_{slot}": count for slot, count in change.done_slots.items()}
        additions |= {f"f_{slot}": count for slot, count in change.failed_slots.items()}
        if not additions:
            return
        names = {f"#a{index}": name for index, name in enumerate(additions)}
        values = {f":a{index}": _number(sign * value) for index, value in enumerate(additions.values())}
        midnight = datetime.combine(change.day, datetime.min.time(), tzinfo=UTC)
        expiry = midnight + timedelta(seconds=DAY_RETENTION_SECONDS)
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": day_pk(change.day)}, "sk": {"S": STATS_SK}},
            UpdateExpression="ADD "
            + ", ".join(f"{name} {value}" for name, value in zip(names, values, strict=True))
            + " SET #day = :day, #ttl = if_not_exists(#ttl, :ttl)",
            ExpressionAttributeNames=names | {"#day": "day", "#ttl": "ttl"},
            ExpressionAttributeValues=values
            | {":day": {"S": change.day.isoformat()}, ":ttl": {"N": str(int(expiry.timestamp()))}},
        )

    # --- reading --------------------------------------------------------------------------------------------

    def days(self, days: Sequence[date]) -> list[DayTotals]:
        found: dict[str, DayTotals] = {}
        unique = list(dict.fromkeys(days))
        for start in range(0, len(unique), _BATCH_GET_MAX):
            keys = [{"pk": {"S": day_pk(day)}, "sk": {"S": STATS_SK}} for day in unique[start : start + _BATCH_GET_MAX]]
            request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for attributes in response.get("Responses", {}).get(self._table, []):
                    totals = _day_totals(attributes)
                    found[totals.day.isoformat()] = totals
                request = dict(response.get("UnprocessedKeys") or {})
        return [found.get(day.isoformat(), DayTotals(day=day)) for day in days]

    def iter_outcomes(
        self, state: OutcomeState, day: date, *, before: str | None = None, page_size: int = 100
    ) -> Iterator[Outcome]:
        """The day's outcomes newest first (before ``before``, a sort key). Reads the whole day's journal: chunks
        written at the same time overlap in time, so no chunk can be skipped by its key (an operator's read)."""
        found: dict[str, Outcome] = {}
        retracted: set[str] = set()
        for attributes in self._query_day(outcome_pk(state, day), page_size):
            sk = attributes["sk"]["S"]
            if sk.startswith(RETRACTED_PREFIX):
                retracted.add(sk.removeprefix(RETRACTED_PREFIX))
            elif sk.startswith(CHUNK_PREFIX):
                for plain in json.loads(attributes["outcomes"]["S"]):
                    outcome = Outcome.model_validate(plain)
                    found[outcome.sort_key] = outcome
            else:
                found[sk] = _outcome(attributes)
        for sort_key in sorted(found.keys() - retracted, reverse=True):
            if before is None or sort_key < before:
                yield found[sort_key]

    def _query_day(self, pk: str, page_size: int) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "Limit": page_size,
        }
        while True:
            response = self._client.query(**kwargs)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last


def _plain(attributes: dict[str, Any]) -> dict[str, Any]:
    return from_item(attributes)


def _as_number(value: Any) -> int | float:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return int(value)


def _day_totals(attributes: dict[str, Any]) -> DayTotals:
    plain = _plain(attributes)
    slots: dict[str, dict[int, int]] = {"d": {}, "f": {}}
    for name, value in plain.items():
        prefix, sep, slot = name.partition("_")
        if sep and prefix in slots and slot.isdigit() and (count := int(_as_number(value))):
            slots[prefix][int(slot)] = count
    data: dict[str, Any] = {"day": str(plain["day"]), "done_slots": slots["d"], "failed_slots": slots["f"]}
    data |= {name: _as_number(plain[name]) for name in _COUNTERS if name in plain}
    return DayTotals.model_validate(data)


def _outcome(attributes: dict[str, Any]) -> Outcome:
    plain = _plain(attributes)
    for name in ("pk", "sk", "ttl"):
        plain.pop(name, None)
    return Outcome.model_validate(json.loads(json.dumps(plain, default=_as_number)))
