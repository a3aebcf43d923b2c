"""Lambda entry point of the ingest function: S3 "Object Created" events from the ingest queue (SQS).

Each message is handled on its own; failures are reported per message (ReportBatchItemFailures), so only those
are redelivered, and after the queue's maxReceiveCount they land in the dead-letter queue, never lost.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from videobatch.runtime import get_runtime, logger, metrics
from videobatch.services.ingest import parse_object_created

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    result = get_runtime().ingest_service().handle(parse_object_created(record.body))
    logger.info("upload ingested", extra={"item_id": result.item_id, "outcome": result.outcome.value})


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    get_runtime().budget.bind(context)
    metrics.add_metric(name="UploadMessages", unit="Count", value=len(event.get("Records", [])))
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
