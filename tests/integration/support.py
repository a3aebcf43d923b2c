"""Helpers for the end-to-end tests: a LocalPipeline plus what a test needs to look at it from outside.

Everything goes over real HTTP: boto3 to the moto server for AWS, httpx to the emulator's control endpoints
(``/_emulator/state``, ``/_emulator/settings``, ``/_emulator/faults``) for TwelveLabs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from videobatch.domain.items import ItemState, item_id_for
from videobatch.domain.records import ItemRecord
from videobatch_tools import samples
from videobatch_tools.localstack.pipeline import Handler, LocalPipeline
from videobatch_tools.localstack.wiring import RunReport

ACTIVE_STATUSES = frozenset({"pending", "processing", "canceling"})
TERMINAL_STATES = frozenset({ItemState.DONE, ItemState.FAILED})


class Media:
    """Real sample files (PyAV), written once per test session and reused by key."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._made: dict[str, Path] = {}

    def video(self, seconds: float = 2.0, *, seed: int = 0) -> bytes:
        """A short 64x64 MP4; each seed gives different bytes."""
        return self._make(f"video-{seconds:g}-{seed}.mp4", lambda path: _short(path, seconds, seed))

    def long_video(self, seconds: float, *, seed: int = 0) -> bytes:
        """A long but cheap MP4 (360x360, one frame every 5 s): real duration, a few hundred kilobytes."""
        return self._make(f"long-{seconds:g}-{seed}.mp4", lambda path: _long(path, seconds, seed))

    def text(self) -> bytes:
        return self._make("text.mp4", samples.write_non_video)

    def _make(self, name: str, write: Callable[[Path], Path]) -> bytes:
        if name not in self._made:
            self._made[name] = write(self._folder / name)
        return self._made[name].read_bytes()


def _short(path: Path, seconds: float, seed: int) -> Path:
    return samples.write_sample_video(path, duration_seconds=seconds, seed=seed)


def _long(path: Path, seconds: float, seed: int) -> Path:
    return samples.write_sample_video(path, duration_seconds=seconds, fps=0.2, seed=seed)


@dataclass
class Observer:
    """A handler hook: records every invocation's result and, optionally, the emulator's active batches after it."""

    sample_active: bool = False
    control: httpx.Client | None = None
    results: list[tuple[str, Any]] = field(default_factory=list)
    # After every handler invocation: (function id, ids of the batches active on the emulator at that moment).
    active_samples: list[tuple[str, frozenset[str]]] = field(default_factory=list)

    def hook(self, function_id: str, handler: Handler) -> Handler:
        def observed(event: dict[str, Any], context: Any) -> Any:
            result = handler(event, context)
            self.results.append((function_id, result))
            if self.sample_active and self.control is not None:
                batches = self.control.get("/_emulator/state").raise_for_status().json()["batches"]
                active = frozenset(b["batch_id"] for b in batches if b["status"] in ACTIVE_STATUSES)
                self.active_samples.append((function_id, active))
            return result

        return observed

    def results_of(self, function_id: str) -> list[Any]:
        return [result for fid, result in self.results if fid == function_id]


class Harness:
    """One running pipeline and the test's view of it."""

    def __init__(self, pipeline: LocalPipeline, observer: Observer) -> None:
        self.pipeline = pipeline
        self.observer = observer
        self.control = httpx.Client(base_url=pipeline.emulator.base_url, timeout=30.0)
        observer.control = self.control
        self.versions: dict[str, str | None] = {}
        self._events_queue: str | None = None

    def close(self) -> None:
        self.control.close()

    # --- driving ------------------------------------------------------------------------------------------------

    def upload(self, key: str, body: bytes) -> str:
        """Upload and return the item id the pipeline will give this object version."""
        version = self.pipeline.upload(key, body)
        self.versions[key] = version
        return item_id_for(self.pipeline.bucket, key, version)

    def run_until_idle(self) -> RunReport:
        report = self.pipeline.run_until_idle()
        self.assert_no_handler_errors()
        return report

    def run_until(self, condition: Callable[[], bool]) -> RunReport:
        report = self.pipeline.run_until(condition)
        self.assert_no_handler_errors()
        return report

    def assert_no_handler_errors(self) -> None:
        errors = [(i.function_id, repr(i.error)) for i in self.pipeline.wiring.errors]
        assert errors == [], errors

    # --- the table ----------------------------------------------------------------------------------------------

    def items(self) -> dict[str, ItemRecord]:
        return {item.item_id: item for item in self.pipeline.items()}

    def item(self, item_id: str) -> ItemRecord:
        found = self.pipeline.runtime.items.get(item_id)
        assert found is not None, f"no item {item_id}"
        return found

    # --- the emulator -------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.control.get("/_emulator/state").raise_for_status().json()
        return state

    def batches(self) -> list[dict[str, Any]]:
        """Every batch the emulator holds, in creation order, each with its items."""
        batches: list[dict[str, Any]] = self.state()["batches"]
        return sorted(batches, key=lambda b: b["created_at"])

    def set_emulator(self, **settings: Any) -> None:
        self.control.post("/_emulator/settings", json=settings).raise_for_status()

    def faults(self, rules: list[dict[str, Any]], seed: int = 0) -> None:
        self.control.post("/_emulator/faults", json={"seed": seed, "rules": rules}).raise_for_status()

    # --- the custom event bus -----------------------------------------------------------------------------------

    def subscribe_events(self) -> None:
        """Subscribe a queue to every videobatch event on the custom bus, as a downstream consumer would."""
        sqs, events = self.pipeline.client("sqs"), self.pipeline.client("events")
        url = sqs.create_queue(QueueName=f"{self.pipeline.stack.stack_name}-consumer")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = self.pipeline.settings.event_bus_name
        events.put_rule(Name="consumer", EventBusName=bus, EventPattern=json.dumps({"source": ["videobatch"]}))
        events.put_targets(Rule="consumer", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
        self._events_queue = url

    def published(self) -> list[dict[str, Any]]:
        """Every event received on the subscribed queue so far (drained)."""
        assert self._events_queue is not None, "call subscribe_events() first"
        sqs = self.pipeline.client("sqs")
        received: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=self._events_queue, MaxNumberOfMessages=10).get("Messages"):
            received.extend(json.loads(m["Body"]) for m in messages)
            sqs.delete_message_batch(
                QueueUrl=self._events_queue,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return received

    # --- S3 -----------------------------------------------------------------------------------------------------

    def result(self, item: ItemRecord) -> dict[str, Any]:
        assert item.result_key is not None, f"{item.key} has no result"
        document: dict[str, Any] = json.loads(self.pipeline.read_result(item.result_key))
        return document

    def object_versions(self, key: str) -> list[dict[str, Any]]:
        s3 = self.pipeline.client("s3")
        listed = s3.list_object_versions(Bucket=self.pipeline.bucket, Prefix=key)
        return [v for v in listed.get("Versions", []) if v["Key"] == key]


def custom_ids(batch: dict[str, Any]) -> list[str]:
    return [item["custom_id"] for item in batch["items"]]


def attempt_of(custom_id: str) -> tuple[str, int, int]:
    """``{item_id}-a{attempt}-w{window}`` -> (item_id, attempt, window)."""
    item_id, attempt, window = custom_id.rsplit("-", 2)
    return item_id, int(attempt.removeprefix("a")), int(window.removeprefix("w"))
