"""Throughput and peak memory of the multipart streaming path: S3 -> ranged GET -> TwelveLabs client -> chunk PUT.

A moto server (S3) and the TwelveLabs emulator run as subprocesses on 127.0.0.1, so this process holds only what
the upload itself holds. A file of SIZE_MB (default 300) is generated on the fly: sparse, with 1 MiB of random bytes
every 32 MiB (nothing is stored in the repository), put into S3 with boto3's own multipart transfer, then uploaded
exactly as ingest uploads it (``services.multipart.MultipartUploader``: one ranged GET per chunk, PUT, report,
progress saved to an in-memory item store). Peak memory is tracemalloc's over the upload alone; the process's peak
RSS is printed beside it. The last line is the summary:

    multipart_upload mb_per_s=... peak_memory_mb=... chunk_mb=...

Run: .venv/bin/python benchmarks/multipart_upload.py [SIZE_MB] [CHUNK_MB]
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from videobatch.adapters.memory import MemoryEventBus, MemoryItemStore
from videobatch.adapters.s3 import S3ObjectStore
from videobatch.clock import SystemClock
from videobatch.config import Settings
from videobatch.domain.records import ItemRecord, UploadedObject
from videobatch.services.lifecycle import ItemWriter
from videobatch.services.multipart import MultipartUploader
from videobatch.services.ports import ObjectRef
from videobatch.twelvelabs.client import TwelveLabsClient

BIN = Path(sys.executable).parent
API_KEY = "bench-key"
BUCKET = "bench-videos"
MIB = 1024 * 1024
MB = 1_000_000


class NoMetrics:
    def add_metric(self, name: str, unit: str, value: float) -> None:
        pass


class Timed:
    """Wraps an adapter, adding up the seconds spent in each of the named methods (where the time goes)."""

    def __init__(self, inner: Any, *names: str) -> None:
        self._inner = inner
        self._names = set(names)
        self.seconds: dict[str, float] = dict.fromkeys(names, 0.0)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if name not in self._names:
            return method

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, deadline_seconds: float = 30.0) -> None:
    give_up = time.monotonic() + deadline_seconds
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def servers(chunk_bytes: int, storage: Path) -> Iterator[tuple[str, str]]:
    """(moto endpoint, emulator API URL), each a subprocess, stopped on exit."""
    moto_port, emulator_port = free_port(), free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    moto = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)], **quiet)
    emulator = subprocess.Popen(
        [
            str(BIN / "videobatch"),
            "emulator",
            "--port",
            str(emulator_port),
            "--api-key",
            API_KEY,
            "--multipart-chunk-bytes",
            str(chunk_bytes),
        ],
        cwd=storage,
        **quiet,
    )
    try:
        moto_url, emulator_url = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{emulator_port}"
        wait_until_up(moto_url)
        wait_until_up(emulator_url)
        yield moto_url, f"{emulator_url}/v1.3"
    finally:
        for process in (moto, emulator):
            process.terminate()
            process.wait(timeout=10)


def sparse_video(path: Path, size_bytes: int) -> Path:
    """A sparse file of ``size_bytes`` with random 1 MiB islands: cheap to make, not all zeros."""
    rng = random.Random(9)
    with path.open("wb") as out:
        out.truncate(size_bytes)
        for offset in range(0, size_bytes, 32 * MIB):
            out.seek(offset)
            out.write(rng.randbytes(min(MIB, size_bytes - offset)))
    return path


def main(size_mb: int = 300, chunk_mb: float = 5.0) -> None:
    logging.disable(logging.INFO)  # the uploader logs per run; keep the output to the figures
    size_bytes = size_mb * MB
    chunk_bytes = int(chunk_mb * MIB)
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(env)
    with tempfile.TemporaryDirectory() as folder, servers(chunk_bytes, Path(folder)) as (moto_url, api_url):
        s3 = boto3.client("s3", endpoint_url=moto_url, config=Config(signature_version="s3v4"))
        s3.create_bucket(Bucket=BUCKET)
        source = sparse_video(Path(folder) / "video.mp4", size_bytes)
        s3.upload_file(str(source), BUCKET, "big/video.mp4")
        source.unlink()

        clock = SystemClock()
        items = MemoryItemStore()
        writer = ItemWriter(items=items, events=MemoryEventBus(), metrics=NoMetrics(), clock=clock)
        settings = Settings(
            table_name="bench", event_bus_name="bench", video_bucket=BUCKET, twelvelabs_api_key_secret="bench"
        )
        upload = UploadedObject(bucket=BUCKET, key="big/video.mp4", size_bytes=size_bytes)
        now = datetime.now(UTC)
        item, _ = items.create(
            ItemRecord.registered(
                upload, profile_name="summary", analysis_mode="general", upload_method="multipart", now=now
            )
        )
        with TwelveLabsClient(API_KEY, base_url=api_url) as client:
            objects = Timed(S3ObjectStore(s3), "read_range")
            assets = Timed(client, "upload_chunk", "report_completed_chunks")
            uploader = MultipartUploader(
                settings=settings,
                clock=clock,
                writer=writer,
                objects=objects,
                assets=assets,
                metrics=NoMetrics(),
                remaining_seconds=lambda: math.inf,
            )
            ref = ObjectRef(bucket=BUCKET, key="big/video.mp4")
            tracemalloc.start()
            started = time.perf_counter()
            progress = uploader.upload(item, ref, filename="video.mp4", metadata={"item_id": item.item_id})
            seconds = time.perf_counter() - started
            _, peak_bytes = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        session = progress.session
        assert session is not None
        assert session.complete, f"upload stopped at {session.confirmed_chunks}/{session.total_chunks}"
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    mb_per_s = size_bytes / MB / seconds
    print(f"{size_mb} MB in {session.total_chunks} chunks of {session.chunk_bytes / MIB:g} MiB: {seconds:.2f} s")
    print(f"peak traced memory {peak_bytes / MB:.1f} MB (one chunk is {session.chunk_bytes / MB:.1f} MB)")
    print(f"process peak RSS {rss_mb:.0f} MB (interpreter and imports included)")
    spent = {**objects.seconds, **assets.seconds}
    print("seconds in: " + ", ".join(f"{name} {value:.2f}" for name, value in spent.items()))
    print(
        f"multipart_upload mb_per_s={mb_per_s:.1f} peak_memory_mb={peak_bytes / MB:.1f} "
        f"chunk_mb={session.chunk_bytes / MIB:g}"
    )


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main(int(arguments[0]) if arguments else 300, float(arguments[1]) if len(arguments) > 1 else 5.0)
