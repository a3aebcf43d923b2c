"""Webhook fast path: a signed TwelveLabs notification starts the batch checker for the batch it names, at once.

Polling stays the source of truth: a notification only makes the next look come sooner. So the service trusts
nothing it cannot check (``domain.webhooks``): an unsigned, forged, stale or replayed request is refused (401) and
changes nothing; a trusted one that names no batch (or a task of no batch of ours) is answered and ignored; the
batch checker re-reads everything from the API.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict

from videobatch.domain.webhooks import (
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    TOLERANCE_SECONDS,
    WebhookRejected,
    mentioned,
    verify_signature,
)
from videobatch.errors import NotFoundError

if TYPE_CHECKING:
    from videobatch.clock import Clock
    from videobatch.services.ports import (
        BatchStore,
        FunctionInvoker,
        MetricsSink,
        ReplayGuard,
        SecretValue,
        TwelveLabsApi,
    )

logger = logging.getLogger(__name__)

# A signature is remembered a little longer than it could be accepted (its timestamp tolerance both ways).
REMEMBER_SECONDS: Final = 2 * TOLERANCE_SECONDS + 60


class WebhookResponse(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    status_code: int
    message: str
    batch_id: str | None = None


class WebhookService:
    def __init__(
        self,
        *,
        clock: Clock,
        secret: SecretValue,
        replays: ReplayGuard,
        batches: BatchStore,
        twelvelabs: TwelveLabsApi,
        invoker: FunctionInvoker,
        metrics: MetricsSink,
    ) -> None:
        self._clock = clock
        self._secret = secret
        self._replays = replays
        self._batches = batches
        self._api = twelvelabs
        self._invoker = invoker
        self._metrics = metrics

    def handle(self, headers: Mapping[str, str], body: bytes) -> WebhookResponse:
        try:
            batch_id = self._accept(headers, body)
        except WebhookRejected as rejected:
            self._metrics.add_metric(name="WebhooksRejected", unit="Count", value=1)
            logger.warning("webhook refused", extra={"status": rejected.status_code, "reason": rejected.reason})
            return WebhookResponse(status_code=rejected.status_code, message=rejected.reason)
        if batch_id is None:
            return WebhookResponse(status_code=200, message="not a batch of this pipeline; nothing to do")
        self._invoker.invoke_async("batch_checker", {"batch_id": batch_id, "source": "webhook"})
        self._metrics.add_metric(name="WebhooksAccepted", unit="Count", value=1)
        logger.info("webhook: batch check started", extra={"batch_id": batch_id})
        return WebhookResponse(status_code=202, message="batch check started", batch_id=batch_id)

    def _accept(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """The batch of ours a trusted notification names (None: none); WebhookRejected otherwise."""
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRejected(400, f"the body is over {MAX_BODY_BYTES} bytes")
        header = {name.lower(): value for name, value in headers.items()}.get(SIGNATURE_HEADER)
        now = self._clock.now()
        try:
            signed = verify_signature(self._secret.get(), header, body, now=now)
        except WebhookRejected:
            # The secret may have been rotated since it was cached: one fresh read before refusing.
            signed = verify_signature(self._secret.refresh(), header, body, now=now)
        if not self._replays.first_seen(signed.digest, now=now, remember_seconds=REMEMBER_SECONDS):
            raise WebhookRejected(401, "this signature was seen before (a replay)")
        named = mentioned(body)
        batch_id = named.batch_id
        if batch_id is None and named.task_id is not None:
            try:
                batch_id = self._api.retrieve_task(named.task_id).batch_id
            except NotFoundError:
                return None
        if batch_id is None or self._batches.get_progress(batch_id) is None:
            return None  # another tool's batch on the same account
        return batch_id
