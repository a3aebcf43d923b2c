"""Application services: the pipeline's use cases (ingest, asset check, flush, batch check).

Services receive ports (``videobatch.services.ports``), a clock and the settings; they never import boto3 or httpx.
"""
