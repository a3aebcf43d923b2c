"""The dev tools' subcommands of ``videobatch``: local stack, demo and simulation.

The ``videobatch`` command itself is the operators' (``videobatch_ops.cli``); these modules register beside its
commands through the ``videobatch.commands`` entry point (pyproject.toml), which names ``register`` below. Each
module exposes ``register(subparsers)``, which adds a parser and sets ``func`` (taking the parsed namespace,
returning an exit code), and keeps heavy imports inside its ``func`` so that ``videobatch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import Any

COMMAND_MODULES: tuple[str, ...] = (
    "twelvelabs_emulator.command",
    "videobatch_tools.demo",
    "videobatch_tools.simulate.command",
)


def register(subparsers: Any) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)


def main(argv: Sequence[str] | None = None) -> int:
    """``videobatch`` as a whole (the operators' commands and these): the same as ``videobatch_ops.cli.main``."""
    from videobatch_ops.cli import main as videobatch_main

    return videobatch_main(argv)


def build_parser() -> argparse.ArgumentParser:
    """The whole ``videobatch`` parser (``videobatch_ops.cli.build_parser``), these commands included."""
    from videobatch_ops.cli import build_parser as videobatch_parser

    return videobatch_parser()
