"""Test surgery: put a record into the table as it is, bypassing the lifecycle check every adapter save applies.

Only tests use this, to stage a state the pipeline reaches through a crash (a result written, the item not yet
recorded as done) without staging the crash itself; a hand edit of the table would do the same.
"""

from __future__ import annotations

from typing import Any

from videobatch.adapters.dynamodb import DynamoItemRepository
from videobatch.domain.records import ItemRecord


def overwrite_item(dynamodb: Any, table_name: str, item: ItemRecord) -> ItemRecord:
    stored = item.model_copy(update={"version": item.version + 1})
    dynamodb.put_item(TableName=table_name, Item=DynamoItemRepository._attributes(stored))
    return stored
