"""EventBridge Scheduler: a one-time schedule per batch that runs the batch checker when the batch expires."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient


def schedule_name(batch_id: str) -> str:
    """One name per batch, so creating the schedule twice is detected as a conflict instead of doubling it."""
    return f"batch-expiry-{batch_id}"


class BatchExpiryScheduler:
    def __init__(self, client: EventBridgeSchedulerClient, *, group_name: str, target_arn: str, role_arn: str) -> None:
        self._client = client
        self._group = group_name
        self._target_arn = target_arn
        self._role_arn = role_arn

    def schedule_batch_check(self, batch_id: str, at: datetime) -> bool:
        """Create the one-time schedule; False when it exists already (a retried flush)."""
        try:
            self._client.create_schedule(
                Name=schedule_name(batch_id),
                GroupName=self._group,
                ScheduleExpression=f"at({at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={
                    "Arn": self._target_arn,
                    "RoleArn": self._role_arn,
                    "Input": json.dumps({"batch_id": batch_id}),
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConflictException":
                return False
            raise
        return True

    def cancel_batch_check(self, batch_id: str) -> bool:
        """Delete the batch's expiry schedule once the batch is closed; False when it is already gone."""
        try:
            self._client.delete_schedule(Name=schedule_name(batch_id), GroupName=self._group)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise
        return True
