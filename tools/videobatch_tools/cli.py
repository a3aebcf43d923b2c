"""The ``videobatch`` command: local stack, demo, simulation and ops tools.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a parser and sets
``func`` (taking the parsed namespace, returning an exit code). Modules keep heavy imports inside their
``func`` so that ``videobatch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "twelvelabs_emulator.command",
    "videobatch_tools.demo",
    "videobatch_tools.ops",
    "videobatch_tools.simulate.command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videobatch", description="videobatch: local stack, demo and ops tools")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
