"""``videobatch demo``: the main job end to end on the local stack.

``--api-url URL --api-key-file PATH``: the local AWS stack against any TwelveLabs-compatible endpoint (the real API
with your key, or an emulator started elsewhere) instead of an emulator started here; see
``videobatch_tools.localstack.external_api`` for how its clock is driven or waited for (``--max-wait-seconds``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_MAX_WAIT_SECONDS = 1800.0


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run the main job end to end on the local stack (no AWS account, no API key)"
    )
    parser.add_argument(
        "--api-only",
        action="store_true",
        help="only drive the TwelveLabs emulator through a batch lifecycle with the project's client",
    )
    parser.add_argument(
        "--api-url",
        metavar="URL",
        help="a TwelveLabs-compatible endpoint to use instead of the local emulator "
        "(e.g. https://api.twelvelabs.io/v1.3; needs --api-key-file)",
    )
    parser.add_argument(
        "--api-key-file",
        type=Path,
        metavar="PATH",
        help="file holding the API key for --api-url (read once; never printed or passed on in the environment)",
    )
    parser.add_argument(
        "--max-wait-seconds",
        type=float,
        default=DEFAULT_MAX_WAIT_SECONDS,
        metavar="N",
        help="with --api-url on real time: stop after N seconds of waiting "
        f"(default {DEFAULT_MAX_WAIT_SECONDS:g}; a virtual clock is driven instead)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if (args.api_url is None) != (args.api_key_file is None):
        print("videobatch demo: --api-url and --api-key-file go together", file=sys.stderr)
        return 2
    if args.api_only:
        if args.api_url is not None:
            print("videobatch demo: --api-only drives the local emulator; it takes no --api-url", file=sys.stderr)
            return 2
        from videobatch_tools.demos import api_lifecycle

        return api_lifecycle.run(sys.stdout)
    from videobatch_tools.demos import pipeline

    external = None
    if args.api_url is not None:
        from videobatch_tools.localstack.external_api import ApiKeyFileError, ExternalApi, read_api_key

        try:
            key = read_api_key(args.api_key_file)
        except ApiKeyFileError as error:
            print(f"videobatch demo: {error}", file=sys.stderr)
            return 2
        external = ExternalApi.probe(args.api_url, key)
    return pipeline.run(sys.stdout, external=external, max_wait_seconds=args.max_wait_seconds)
