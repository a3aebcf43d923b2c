"""``videobatch emulator``: serve the TwelveLabs API emulator until interrupted.

``register`` adds the subcommand to any argparse CLI; heavy modules load only when it runs.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from typing import Any

from twelvelabs_emulator.variants import DESCRIPTIONS, Variant

WEBHOOK_SECRET_ENV = "TWELVELABS_EMULATOR_WEBHOOK_SECRET"  # noqa: S105 - a variable name, not a secret


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="serve the local TwelveLabs API emulator (under /v1.3)",
        description="Serve the local TwelveLabs API emulator (under /v1.3).",
        epilog=_variants_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--api-key", required=True, help="the x-api-key value clients must send")
    parser.add_argument("--clock", choices=("real", "virtual"), default="real")
    parser.add_argument("--item-concurrency", type=int, default=4)
    parser.add_argument("--content-seconds-per-second", type=float, default=60.0)
    parser.add_argument("--asset-ready-seconds", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--multipart-chunk-bytes",
        type=int,
        default=None,
        help="the chunk size multipart upload sessions get (default: 5 MiB)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        choices=[variant.value for variant in Variant],
        metavar="NAME",
        help="answer an undocumented point the other plausible way (repeatable; the list is below)",
    )
    parser.add_argument("--public-base-url", help="base of the presigned URLs handed out (default: this server)")
    parser.add_argument("--control-token", help="require this X-Emulator-Token on /_emulator (default: loopback only)")
    parser.add_argument(
        "--allow-fetch-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a host name or IP network URL assets may be fetched from (repeatable; default: loopback)",
    )
    parser.add_argument(
        "--webhook-url", help=f"POST signed batch notifications here (secret from ${WEBHOOK_SECRET_ENV})"
    )
    for name in ("requests-per-minute", "requests-per-day"):
        parser.add_argument(f"--{name}", type=int, help="rate limit (default: none)")
    for name in ("video-seconds-per-minute", "video-seconds-per-day"):
        parser.add_argument(f"--{name}", type=float, help="rate limit (default: none)")
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    from twelvelabs_emulator.fetch import DEFAULT_ALLOWED_HOSTS
    from twelvelabs_emulator.models import EmulatorSettings, RateLimits
    from twelvelabs_emulator.server import EmulatorConfig

    settings = EmulatorSettings(
        item_concurrency=args.item_concurrency,
        content_seconds_per_second=args.content_seconds_per_second,
        asset_ready_seconds=args.asset_ready_seconds,
        variants=frozenset(Variant(name) for name in args.variant),
        rate_limits=RateLimits(
            requests_per_minute=args.requests_per_minute,
            requests_per_day=args.requests_per_day,
            video_seconds_per_minute=args.video_seconds_per_minute,
            video_seconds_per_day=args.video_seconds_per_day,
        ),
    )
    webhook_secret = os.environ.get(WEBHOOK_SECRET_ENV) if args.webhook_url else None
    chunk: dict[str, int] = {}
    if args.multipart_chunk_bytes is not None:
        chunk["multipart_chunk_bytes"] = args.multipart_chunk_bytes
    return EmulatorConfig(
        **chunk,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        clock=args.clock,
        settings=settings,
        seed=args.seed,
        public_base_url=args.public_base_url,
        control_token=args.control_token,
        url_fetch_allowed_hosts=tuple(args.allow_fetch_host) or DEFAULT_ALLOWED_HOSTS,
        webhook_url=args.webhook_url,
        webhook_secret=webhook_secret,
    )


def run(args: argparse.Namespace) -> int:
    from twelvelabs_emulator.server import EmulatorServer

    server = EmulatorServer(build_config(args))
    variants = ", ".join(args.variant) or "none"
    print(
        f"TwelveLabs emulator on http://{args.host}:{args.port}/v1.3 (clock: {args.clock}; variants: {variants})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 0
    return 0


def _variants_epilog() -> str:
    lines = ["variants (--variant NAME; default: none, the documented or most likely behaviour):"]
    for variant in Variant:
        lines.append(
            textwrap.fill(
                DESCRIPTIONS[variant], width=110, initial_indent=f"  {variant.value:24} ", subsequent_indent=" " * 27
            )
        )
    return "\n".join(lines)
