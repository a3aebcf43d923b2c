"""Lambda: start another function of the stack at once (InvocationType Event; Lambda retries it twice on failure)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from videobatch.errors import VideoBatchError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

logger = logging.getLogger(__name__)


class InvocationFailedError(VideoBatchError):
    """Lambda did not accept the asynchronous invocation."""


class LambdaInvoker:
    def __init__(self, client: LambdaClient, function_arns: Mapping[str, str]) -> None:
        """``function_arns``: name ("flusher", "batch_checker") -> ARN; a name without one is not started (its
        schedule runs it soon enough: these invocations only make things happen sooner)."""
        self._client = client
        self._arns = {name: arn for name, arn in function_arns.items() if arn}

    def invoke_async(self, function: str, payload: Mapping[str, Any]) -> None:
        arn = self._arns.get(function)
        if arn is None:
            logger.warning("no ARN configured; not started", extra={"function": function})
            return
        try:
            self._client.invoke(FunctionName=arn, InvocationType="Event", Payload=json.dumps(dict(payload)).encode())
        except (ClientError, BotoCoreError) as error:
            raise InvocationFailedError(f"Lambda did not start {function}: {error}") from error
