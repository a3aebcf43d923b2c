"""Lambda entry point of the asset checker (runs on a schedule): queues items whose asset became ready."""

from __future__ import annotations

from typing import Any

from videobatch.runtime import get_runtime, logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = get_runtime()
    runtime.budget.bind(context)
    summary = runtime.asset_check_service().run()
    metrics.add_metric(name="AssetsChecked", unit="Count", value=summary.checked)
    return {"work_done": summary.work_done, **summary.model_dump()}
