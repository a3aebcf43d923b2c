"""Lambda entry point of the ingest function: S3 "Object Created" (and "Object Deleted") events from the ingest
queue (SQS).

Each message is handled on its own; failures are reported per message (ReportBatchItemFailures), so only those
are redelivered, and after the queue's maxReceiveCount they land in the dead-letter queue, never lost. When every
message of the batch failed the run raises (as Powertools' batch utility does), so Lambda counts an error and an
outage shows on the Errors alarm. The partial-batch loop is written out here rather than taken from Powertools:
its batch utility and data classes cost a quarter of a second at cold start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from videobatch.domain.items import item_id_for
from videobatch.errors import InvalidInputError, VideoBatchError
from videobatch.handler import Event, LambdaContext, lambda_handler, logger, metrics
from videobatch.runtime import get_runtime
from videobatch.services.lifecycle_events import ObjectDeletedEvent, parse_s3_event

# Per-record log keys: every line logged while one message is handled names its upload.
RECORD_KEYS = ("message_id", "item_id", "key")


class IngestBatchFailed(VideoBatchError):
    """No message of the batch could be ingested; each failure was logged with its message id."""


def sqs_records(event: Any) -> Sequence[Mapping[str, Any]]:
    """The records of an SQS event; InvalidInputError when the event is not one."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not all(isinstance(record, Mapping) for record in records):
        raise InvalidInputError(f"not an SQS event (a mapping with a list of Records): {str(event)[:200]}")
    return records


def record_handler(record: Mapping[str, Any]) -> None:
    logger.append_keys(message_id=record.get("messageId"))
    try:
        event = parse_s3_event(record.get("body") or "")
        if isinstance(event, ObjectDeletedEvent):
            logger.append_keys(key=event.detail.object.key)
            deleted = get_runtime().deletion_service().handle(event)
            logger.info("deletion handled", extra={"failed": deleted.items_failed, "kept": deleted.items_kept})
            return
        s3_object = event.detail.object
        pinned = event.detail.videobatch.profile if event.detail.videobatch else None
        logger.append_keys(
            key=s3_object.key,
            item_id=item_id_for(event.detail.bucket.name, s3_object.key, s3_object.version_id, pinned),
        )
        result = get_runtime().ingest_service().handle(event)
        logger.info("upload ingested", extra={"outcome": result.outcome.value})
    except Exception:
        logger.exception("upload not ingested; the message is retried, then dead-lettered")
        raise
    finally:
        # The next record of the batch must not inherit them (the failure log of this one still has them).
        logger.remove_keys(RECORD_KEYS)


def _handled(record: Mapping[str, Any]) -> bool:
    try:
        record_handler(record)
    except Exception:  # every failure of one message is that message's: the others go on (logged above)
        return False
    return True


@lambda_handler("ingest")
def handler(event: Event, context: LambdaContext) -> dict[str, Any]:
    records = sqs_records(event)
    metrics.add_metric(name="UploadMessages", unit="Count", value=len(records))
    failed = [str(record.get("messageId")) for record in records if not _handled(record)]
    if records and len(failed) == len(records):
        raise IngestBatchFailed(f"all {len(records)} message(s) of the batch failed: {', '.join(failed)}")
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
