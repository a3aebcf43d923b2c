"""The sample events in events/inbound are what the handlers really accept (so samples cannot drift)."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from videobatch.services.ingest import parse_object_created
from videobatch.services.lifecycle_events import ObjectDeletedEvent, parse_s3_event

ROOT = Path(__file__).resolve().parents[2]
INBOUND = ROOT / "events" / "inbound"


def _sample(name: str) -> Any:
    return json.loads((INBOUND / name).read_text())


def _handler_module(folder: str) -> ModuleType:
    path = ROOT / "functions" / folder / f"{folder}_handler.py"
    spec = importlib.util.spec_from_file_location(f"sample_events_{folder}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_s3_object_created_sample_parses() -> None:
    event = parse_object_created(_sample("s3-object-created.json"))
    assert (event.detail.bucket.name, event.detail.object.key) == ("videobatch-videobucket", "videos/kitchen.mp4")
    assert event.detail.object.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"


def test_s3_object_deleted_sample_parses_as_a_deletion_and_created_stays_a_creation() -> None:
    event = parse_s3_event(_sample("s3-object-deleted.json"))
    assert isinstance(event, ObjectDeletedEvent)
    assert (event.detail.bucket.name, event.detail.object.key) == ("videobatch-videobucket", "videos/kitchen.mp4")
    assert event.detail.deletion_type == "Delete Marker Created"
    assert parse_s3_event(_sample("s3-object-created.json")) == parse_object_created(_sample("s3-object-created.json"))


def test_sqs_batch_sample_carries_the_object_created_event() -> None:
    [record] = _sample("ingest-sqs-batch.json")["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert parse_object_created(record["body"]) == parse_object_created(_sample("s3-object-created.json"))


def test_batch_checker_reads_the_expiry_sample_and_ignores_the_schedule_sample() -> None:
    batch_checker = _handler_module("batch_checker")
    assert batch_checker.batch_id_of(_sample("batch-expiry-check.json")) == "65f1c2a9e4b0d3a1c2b3d4e5"
    assert batch_checker.batch_id_of(_sample("scheduled-event.json")) is None
