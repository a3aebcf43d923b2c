"""``videobatch demo``: the main job end to end on the local stack."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run the main job end to end on the local stack (no AWS account, no API key)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from videobatch_tools.demos import api_lifecycle

    return api_lifecycle.run(sys.stdout)
