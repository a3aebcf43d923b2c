"""Time and peak memory to stream and parse a 1,000-line batch results body with the project's client.

A stdlib HTTP server on 127.0.0.1 (in a thread) serves realistic JSON Lines (~1-2 KB a line: ready items with
model output, some failed ones). Peak memory is measured with tracemalloc around the consuming loop, and
compared with the body's size to show the body is never held whole. A second body adds noise (a blank line every
50, a line every 20 whose data the model cannot parse, a truncated last line) to price the unparsable-line path.
Run: .venv/bin/python benchmarks/results_stream.py [lines]
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import sys
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from videobatch.twelvelabs.client import TwelveLabsClient

BATCH_ID = "6a1f" * 6


def results_body(lines: int, *, noisy: bool = False) -> bytes:
    rng = random.Random(7)
    words = [
        "the",
        "speaker",
        "walks",
        "across",
        "a",
        "stage",
        "while",
        "slides",
        "about",
        "cloud",
        "video",
        "analysis",
        "change",
        "behind",
    ]
    out = []
    for index in range(lines):
        item: dict[str, object] = {"task_id": f"{index:024x}", "custom_id": f"video-{index:05d}"}
        if index % 20 == 19:
            item |= {
                "status": "failed",
                "error": {"code": "asset_unavailable", "message": "The asset could not be read."},
            }
        else:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(150, 300)))
            item |= {
                "status": "ready",
                "data": {
                    "generation_id": f"gen_{index:08d}",
                    "data": text,
                    "finish_reason": "stop",
                    "usage": {"output_tokens": len(text) // 4, "input_tokens": 45},
                },
            }
        if noisy and index % 20 == 10:
            item["data"] = {"data": "a shape the client does not know"}
        out.append(json.dumps(item, separators=(",", ":")))
        if noisy and index % 50 == 0:
            out.append("")
    if noisy:
        return ("\n".join(out) + "\n" + out[-1][:20]).encode()
    return ("\n".join(out) + "\n").encode()


def serve(body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/jsonl")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            for start in range(0, len(body), 16_384):
                self.wfile.write(body[start : start + 16_384])

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def consume(client: TwelveLabsClient) -> tuple[int, int, int]:
    ready = failed = 0
    with client.stream_batch_results(BATCH_ID) as results:
        for item in results:
            if item.status == "ready":
                ready += 1
            else:
                failed += 1
    return ready, failed, results.unparsable_lines


def measure(body: bytes, label: str, lines: int) -> None:
    server = serve(body)
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1.3"
    with TwelveLabsClient("bench-key", base_url=base_url) as client:
        consume(client)  # warm-up: connection, model validators
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            ready, failed, unparsable = consume(client)
            timings.append(time.perf_counter() - started)
        tracemalloc.start()
        consume(client)
        _, peak_bytes = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    server.shutdown()
    print(
        f"{label} body: {lines} lines, {len(body) / 1024:.0f} KiB ({len(body) / lines:.0f} B/line); "
        f"parsed {ready} ready + {failed} other, {unparsable} of them unparsable"
    )
    print(
        f"  stream+parse time: median {statistics.median(timings) * 1000:.1f} ms of 5 runs "
        f"({lines / statistics.median(timings):,.0f} lines/s)"
    )
    print(
        f"  peak traced memory while streaming: {peak_bytes / 1024:.0f} KiB ({peak_bytes / len(body):.1%} of the body)"
    )


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    logging.getLogger("videobatch").setLevel(logging.ERROR)  # the noisy body's warning, once per run, is expected
    measure(results_body(lines), "clean", lines)
    measure(results_body(lines, noisy=True), "noisy", lines)


if __name__ == "__main__":
    main()
