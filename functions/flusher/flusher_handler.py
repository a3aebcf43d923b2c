"""Lambda entry point of the flusher (runs on a schedule): packs queued items into batches and submits them."""

from __future__ import annotations

from videobatch.handler import Event, LambdaContext, lambda_handler, metrics
from videobatch.runtime import get_runtime
from videobatch.services.flusher import FlushSummary


@lambda_handler("flusher")
def handler(event: Event, context: LambdaContext) -> FlushSummary:
    # The request id names the lease holder, so logs show which invocation held it.
    summary = get_runtime().flush_service(owner=context.aws_request_id).run()
    # Always one data point, so a run that found the lease taken still shows in the metrics.
    metrics.add_metric(name="FlushRuns", unit="Count", value=1)
    return summary
