"""AWS and TwelveLabs calls per video: a full run of N real videos through the local stack, counted by operation.

``LocalPipeline`` (moto server + TwelveLabs emulator + the template's wiring and the real handlers, on a virtual
clock) runs N uploads until idle with the template's default parameters. Calls are counted on the clients the
handlers use (botocore ``before-call`` hooks on the runtime's DynamoDB, S3, EventBridge and Scheduler clients;
an httpx request hook on the runtime's TwelveLabs client, so retries count) and only while a handler runs: what
the local wiring does itself (SQS polling, schedule listing, the idle check) stands in for AWS machinery and is
not counted. Each handler invocation is classed as *work* (it reported work, or it handled upload messages)
or *idle polling* (a scheduled run that found nothing to do); polling depends on how long the run lasts in
virtual time, work on the number of videos, so both are shown.
Run: .venv/bin/python benchmarks/calls_per_video.py [videos]
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from videobatch.domain.items import ItemState
from videobatch_tools import samples
from videobatch_tools.localstack.pipeline import Handler, LocalPipeline

_ID_SEGMENT = re.compile(r"/(?:[0-9a-f]{24}|[0-9a-f]{32}|[0-9a-f-]{36})(?=/|$)")


class CallCounter:
    """Counts calls per (invocation kind, function, service, operation) while a handler runs."""

    def __init__(self) -> None:
        self.current: list[tuple[str, str, str]] = []  # calls of the running invocation: (function, service, op)
        self.counts: Counter[tuple[str, str, str, str]] = Counter()
        self.invocations: Counter[tuple[str, str]] = Counter()

    def hook(self, function_id: str, handler: Handler) -> Handler:
        def counted(event: dict[str, Any], context: Any) -> Any:
            self.current = []
            result = handler(event, context)
            kind = "work" if _did_work(event, result) else "idle"
            self.invocations[(kind, function_id)] += 1
            for _, service, operation in self.current:
                self.counts[(kind, function_id, service, operation)] += 1
            self.current = []
            return result

        return counted

    def aws_call(self, model: Any, **_: Any) -> None:
        self.current.append(("", model.service_model.service_name, model.name))

    def twelvelabs_call(self, request: httpx.Request) -> None:
        path = _ID_SEGMENT.sub("/{id}", request.url.path.removeprefix("/v1.3"))
        self.current.append(("", "twelvelabs", f"{request.method} {path}"))


def _did_work(event: Mapping[str, Any], result: Any) -> bool:
    if "Records" in event:
        return True  # upload messages from the ingest queue
    return isinstance(result, Mapping) and bool(result.get("work_done"))


def instrument(pipeline: LocalPipeline, counter: CallCounter) -> None:
    runtime = pipeline.runtime
    # One DynamoDB client serves the item, batch, claim and lease repositories.
    clients = {runtime.items._client, runtime.objects._client, runtime.events._client, runtime.scheduler._client}
    for client in clients:
        client.meta.events.register("before-call", counter.aws_call)
    runtime.twelvelabs._http.event_hooks["request"].append(counter.twelvelabs_call)


def main() -> None:
    videos = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    counter = CallCounter()
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="videobatch-bench-") as workdir,
        LocalPipeline(stack_name=f"bench{uuid.uuid4().hex[:6]}", handler_hook=counter.hook) as pipeline,
    ):
        instrument(pipeline, counter)
        for n in range(videos):
            path = samples.write_sample_video(Path(workdir) / f"clip-{n}.mp4", duration_seconds=3, seed=n)
            pipeline.upload(f"videos/clip-{n:03d}.mp4", path.read_bytes())
        report = pipeline.run_until_idle()
        items = list(pipeline.items())
        errors = len(pipeline.wiring.errors)
    wall = time.perf_counter() - started
    done = sum(1 for item in items if item.state is ItemState.DONE)
    print(
        f"{videos} videos, {done} done, {errors} handler errors; {report.steps} wiring steps, "
        f"{report.advanced_seconds / 60:.0f} virtual minutes, {wall:.1f} s wall time (template defaults)"
    )
    _print_table(counter, videos)


def _print_table(counter: CallCounter, videos: int) -> None:
    by_operation: Counter[tuple[str, str, str]] = Counter()
    for (kind, _, service, operation), count in counter.counts.items():
        by_operation[(kind, service, operation)] += count
    print(f"\n{'service':11s} {'operation':42s} {'work calls':>10s} {'per video':>9s} {'idle polling':>12s}")
    keys = sorted({(service, operation) for _, service, operation in by_operation})
    for service, operation in keys:
        work = by_operation[("work", service, operation)]
        idle = by_operation[("idle", service, operation)]
        print(f"{service:11s} {operation:42s} {work:10d} {work / videos:9.2f} {idle:12d}")
    print()
    services = sorted({service for service, _ in keys})
    for service in services:
        work = sum(c for (k, s, _), c in by_operation.items() if k == "work" and s == service)
        idle = sum(c for (k, s, _), c in by_operation.items() if k == "idle" and s == service)
        print(f"{service:11s} {work / videos:6.2f} calls per video for the work, {idle:5d} calls of idle polling")
    idle_runs = sum(n for (kind, _), n in counter.invocations.items() if kind == "idle")
    idle_calls = sum(c for (kind, *_), c in counter.counts.items() if kind == "idle")
    each = idle_calls / max(idle_runs, 1)
    print(f"\nidle polling: {idle_runs} scheduled runs found nothing to do, {each:.1f} calls each")
    print("\ninvocations: " + ", ".join(f"{fid} {kind} {n}" for (kind, fid), n in sorted(counter.invocations.items())))
    print("\nwork calls per video by function:")
    functions = sorted({fid for (kind, fid, _, _) in counter.counts if kind == "work"})
    for function_id in functions:
        per_service = Counter[str]()
        for (kind, fid, service, _), count in counter.counts.items():
            if kind == "work" and fid == function_id:
                per_service[service] += count
        shown = ", ".join(f"{service} {count / videos:.2f}" for service, count in sorted(per_service.items()))
        print(f"  {function_id:22s} {shown}")


if __name__ == "__main__":
    main()
