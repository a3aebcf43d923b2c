"""Lambda entry point of the sweeper (runs on a schedule): repairs work that stopped moving, with a reason.

Reconciles pending claims, settles stuck items and batches; see ``videobatch.services.sweeper``.
"""

from __future__ import annotations

from videobatch.handler import Event, LambdaContext, lambda_handler, metrics
from videobatch.runtime import get_runtime
from videobatch.services.sweeper import SweepSummary


@lambda_handler("sweeper")
def handler(event: Event, context: LambdaContext) -> SweepSummary:
    summary = get_runtime().sweep_service().run()
    metrics.add_metric(name="StuckItemsFailed", unit="Count", value=summary.ingest_incomplete)
    return summary
