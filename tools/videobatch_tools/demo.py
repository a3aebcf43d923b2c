"""``videobatch demo``: the main job end to end on the local stack."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run the main job end to end on the local stack (no AWS account, no API key)"
    )
    parser.add_argument(
        "--api-only",
        action="store_true",
        help="only drive the TwelveLabs emulator through a batch lifecycle with the project's client",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.api_only:
        from videobatch_tools.demos import api_lifecycle

        return api_lifecycle.run(sys.stdout)
    from videobatch_tools.demos import pipeline

    return pipeline.run(sys.stdout)
