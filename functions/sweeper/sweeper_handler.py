"""Lambda entry point of the sweeper (runs on a schedule): repairs work that stopped moving, with a reason.

Reconciles pending claims, settles stuck items and batches; see ``videobatch.services.sweeper``.
"""

from __future__ import annotations

from typing import Any

from videobatch.runtime import get_runtime, logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = get_runtime()
    runtime.budget.bind(context)
    summary = runtime.sweep_service().run()
    metrics.add_metric(name="StuckItemsFailed", unit="Count", value=summary.ingest_incomplete)
    return {"work_done": summary.work_done, **summary.model_dump(mode="json")}
