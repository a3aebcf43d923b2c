"""SQS: the ingest queue as the ops CLI writes to it (``UploadQueue``: events of objects already in the bucket)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from videobatch.errors import VideoBatchError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_ENTRIES_PER_CALL: Final = 10


class UploadQueueError(VideoBatchError):
    """SQS refused some messages twice; ``failed`` is how many of the call's events were not sent."""

    def __init__(self, failed: int, reason: str) -> None:
        super().__init__(f"{failed} event(s) not sent to the ingest queue: {reason}")
        self.failed = failed


class SqsUploadQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, events: Sequence[Mapping[str, Any]]) -> int:
        """SendMessageBatch in calls of ten; refused entries are sent once more, then raised."""
        sent = 0
        for start in range(0, len(events), MAX_ENTRIES_PER_CALL):
            chunk = {str(index): json.dumps(event) for index, event in enumerate(events[start : start + 10])}
            for attempt in (1, 2):
                entries = [{"Id": entry_id, "MessageBody": body} for entry_id, body in chunk.items()]
                response = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)  # type: ignore[arg-type]
                sent += len(response.get("Successful", []))
                failed = response.get("Failed", [])
                if not failed:
                    break
                if attempt == 2:
                    raise UploadQueueError(len(failed), str(failed[0].get("Message", failed[0].get("Code"))))
                chunk = {entry["Id"]: chunk[entry["Id"]] for entry in failed}
        return sent
