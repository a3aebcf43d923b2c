"""Lambda entry point of the ingest function: S3 "Object Created" events from the ingest queue (SQS).

Each message is handled on its own; failures are reported per message (ReportBatchItemFailures), so only those
are redelivered, and after the queue's maxReceiveCount they land in the dead-letter queue, never lost.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from videobatch.domain.items import item_id_for
from videobatch.handler import Event, LambdaContext, lambda_handler, logger, metrics
from videobatch.runtime import get_runtime
from videobatch.services.ingest import parse_object_created

processor = BatchProcessor(event_type=EventType.SQS)
# Per-record log keys: every line logged while one message is handled names its upload.
RECORD_KEYS = ("message_id", "item_id", "key")


def record_handler(record: SQSRecord) -> None:
    logger.append_keys(message_id=record.message_id)
    try:
        event = parse_object_created(record.body)
        s3_object = event.detail.object
        logger.append_keys(
            key=s3_object.key, item_id=item_id_for(event.detail.bucket.name, s3_object.key, s3_object.version_id)
        )
        result = get_runtime().ingest_service().handle(event)
        logger.info("upload ingested", extra={"outcome": result.outcome.value})
    except Exception:
        logger.exception("upload not ingested; the message is retried, then dead-lettered")
        raise
    finally:
        # The next record of the batch must not inherit them (the failure log of this one still has them).
        logger.remove_keys(RECORD_KEYS)


@lambda_handler("ingest")
def handler(event: Event, context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="UploadMessages", unit="Count", value=len(event.get("Records", [])))
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
