"""``videobatch emulator``: serve the TwelveLabs API emulator until interrupted."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("emulator", help="serve the local TwelveLabs API emulator (under /v1.3)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--api-key", required=True, help="the x-api-key value clients must send")
    parser.add_argument("--clock", choices=("real", "virtual"), default="real")
    parser.add_argument("--item-concurrency", type=int, default=4)
    parser.add_argument("--content-seconds-per-second", type=float, default=60.0)
    parser.add_argument("--asset-ready-seconds", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    from twelvelabs_emulator.models import EmulatorSettings
    from twelvelabs_emulator.server import EmulatorConfig

    settings = EmulatorSettings(
        item_concurrency=args.item_concurrency,
        content_seconds_per_second=args.content_seconds_per_second,
        asset_ready_seconds=args.asset_ready_seconds,
    )
    return EmulatorConfig(
        host=args.host, port=args.port, api_key=args.api_key, clock=args.clock, settings=settings, seed=args.seed
    )


def run(args: argparse.Namespace) -> int:
    from twelvelabs_emulator.server import EmulatorServer

    server = EmulatorServer(build_config(args))
    print(f"TwelveLabs emulator on http://{args.host}:{args.port}/v1.3 (clock: {args.clock})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 0
    return 0
