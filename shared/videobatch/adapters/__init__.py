"""Adapters: the AWS side of the ports in ``videobatch.services.ports`` (DynamoDB, S3, EventBridge, Scheduler, Secrets).

Each adapter takes a boto3 client in its constructor, so the runtime, the local stack and tests choose endpoints.
"""
