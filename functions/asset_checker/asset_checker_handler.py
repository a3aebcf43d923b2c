"""Lambda entry point of the asset checker (runs on a schedule): queues items whose asset became ready."""

from __future__ import annotations

from videobatch.handler import Event, LambdaContext, lambda_handler, metrics
from videobatch.runtime import get_runtime
from videobatch.services.asset_checker import AssetCheckSummary


@lambda_handler("asset_checker")
def handler(event: Event, context: LambdaContext) -> AssetCheckSummary:
    summary = get_runtime().asset_check_service().run()
    metrics.add_metric(name="AssetsChecked", unit="Count", value=summary.checked)
    return summary
