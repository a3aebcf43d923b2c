"""The pipeline's pure domain: no AWS, no HTTP, no clock reads (callers pass ``now``).

Modules: ``items`` (lifecycle, ids), ``uploads`` (is this S3 object analysable?), ``windows`` (splitting long videos
and merging their results), ``packing`` (which queued items go into which batch), ``policy`` (retry/requeue),
``events`` (outgoing EventBridge schema), ``profiles`` (analysis settings chosen by key prefix).
"""
