"""The pipeline's control record in the items table: ``pk = CONTROL#pipeline``, ``sk = CONTROL`` (domain.control).

Read with a consistent GetItem by every flush (a pause takes effect at the next flush, not after an index lags);
written only by the operator's ``videobatch pause`` / ``resume``, conditional on the version read.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from videobatch.adapters.attributes import from_item, to_item
from videobatch.domain.control import PipelineControl
from videobatch.errors import StaleStateError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CONTROL_PK: Final = "CONTROL#pipeline"
CONTROL_SK: Final = "CONTROL"


class DynamoControlStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load(self) -> PipelineControl:
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": CONTROL_PK}, "sk": {"S": CONTROL_SK}}, ConsistentRead=True
        )
        attributes = response.get("Item")
        if attributes is None:
            return PipelineControl()
        plain = from_item(attributes)
        plain.pop("pk")
        plain.pop("sk")
        plain["version"] = int(plain["version"])
        return PipelineControl.model_validate(plain)

    def save(self, new: PipelineControl, expected: PipelineControl) -> PipelineControl:
        stored = new.model_copy(update={"version": expected.version + 1})
        plain: dict[str, Any] = json.loads(stored.model_dump_json(exclude_none=True))
        item = to_item(plain)
        item |= {"pk": {"S": CONTROL_PK}, "sk": {"S": CONTROL_SK}}
        if expected.version == 0:
            condition, values = "attribute_not_exists(pk)", None
        else:
            condition, values = "#version = :expected", {":expected": {"N": str(expected.version)}}
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": item, "ConditionExpression": condition}
        if values is not None:
            kwargs |= {"ExpressionAttributeNames": {"#version": "version"}, "ExpressionAttributeValues": values}
        try:
            self._client.put_item(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise StaleStateError(f"the control record changed since version {expected.version}") from error
            raise
        return stored
