"""Lambda entry point of the flusher (runs on a schedule): packs queued items into batches and submits them."""

from __future__ import annotations

from typing import Any

from videobatch.runtime import get_runtime, logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = get_runtime()
    runtime.budget.bind(context)
    # The request id names the lease holder, so logs show which invocation held it.
    summary = runtime.flush_service(owner=getattr(context, "aws_request_id", None)).run()
    # Always one data point, so a run that found the lease taken still shows in the metrics.
    metrics.add_metric(name="FlushRuns", unit="Count", value=1)
    return {"work_done": summary.work_done, **summary.model_dump()}
