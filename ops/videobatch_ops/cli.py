"""The ``videobatch`` command.

The operators' commands are this package's (``COMMAND_MODULES``); other installed packages add theirs through the
``videobatch.commands`` entry-point group (each entry a ``register(subparsers)``): the project's dev tools
(emulator, demo, simulate, in ``videobatch_tools``) do, so one command serves both, and an install without the dev
tools' dependencies simply has fewer commands. Each module's ``register`` adds its parser and sets ``func``
(taking the parsed namespace, returning the exit code) and keeps heavy imports inside ``func``, so that
``videobatch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Final

from videobatch_ops import package_version
from videobatch_ops.common import EXIT_CODES_HELP

COMMAND_MODULES: Final[tuple[str, ...]] = (
    "videobatch_ops.status",
    "videobatch_ops.items",
    "videobatch_ops.requeue",
    "videobatch_ops.reprocess",
    "videobatch_ops.pause",
    "videobatch_ops.cancel",
    "videobatch_ops.redrive",
    "videobatch_ops.backfill",
    "videobatch_ops.sweep",
)
PLUGIN_GROUP: Final = "videobatch.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videobatch",
        description="videobatch: see and steer the video analysis pipeline (and, installed for development, the "
        "local stack's tools)",
        epilog=f"{EXIT_CODES_HELP}. Every command takes --stack, --region, --profile, --json and --version.",
    )
    parser.add_argument("--version", action="version", version=f"videobatch {package_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            entry.load()(subparsers)
        except ImportError as error:  # its package is installed without what it needs: its commands are absent
            sys.stderr.write(f"videobatch: commands of {entry.value} unavailable: {error}\n")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
