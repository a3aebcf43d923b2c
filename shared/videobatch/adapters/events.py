"""EventBridge: publish the pipeline's outgoing events (entries built by ``videobatch.domain.events``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from videobatch.domain.events import OutgoingEvent, to_put_events_entry
from videobatch.errors import VideoBatchError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

MAX_ENTRIES_PER_CALL: Final = 10


class EventPublishError(VideoBatchError):
    """EventBridge refused some entries; ``failures`` holds (DetailType, ErrorCode, ErrorMessage) for each."""

    def __init__(self, failures: list[tuple[str, str, str]]) -> None:
        summary = "; ".join(f"{detail_type}: {code} {message}" for detail_type, code, message in failures[:5])
        super().__init__(f"{len(failures)} event(s) not published: {summary}")
        self.failures = failures


class EventBridgePublisher:
    def __init__(self, client: EventBridgeClient, event_bus_name: str) -> None:
        self._client = client
        self._bus = event_bus_name

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """PutEvents in calls of at most 10; entries EventBridge rejects are retried once, then raised."""
        entries = [to_put_events_entry(event, self._bus) for event in events]
        failures: list[tuple[str, str, str]] = []
        for start in range(0, len(entries), MAX_ENTRIES_PER_CALL):
            chunk = entries[start : start + MAX_ENTRIES_PER_CALL]
            rejected = self._put(chunk)
            if rejected:  # mostly throttling or internal errors: one immediate retry of just those
                failures.extend(self._failures(self._put([entry for entry, _ in rejected])))
        if failures:
            raise EventPublishError(failures)

    def _put(self, chunk: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Mapping[str, Any]]]:
        response = self._client.put_events(Entries=chunk)  # type: ignore[arg-type]
        if not response.get("FailedEntryCount"):
            return []
        results = response.get("Entries", [])
        return [(entry, result) for entry, result in zip(chunk, results, strict=False) if result.get("ErrorCode")]

    @staticmethod
    def _failures(rejected: list[tuple[dict[str, Any], Mapping[str, Any]]]) -> list[tuple[str, str, str]]:
        return [
            (str(entry.get("DetailType", "")), str(result.get("ErrorCode", "")), str(result.get("ErrorMessage", "")))
            for entry, result in rejected
        ]
