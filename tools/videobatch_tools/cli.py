"""The ``videobatch`` command: local stack, demo, simulation and ops tools."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videobatch", description=__doc__)
    parser.add_subparsers(dest="command", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    parser_func = getattr(args, "func", None)
    if parser_func is None:
        return 2
    result: int = parser_func(args)
    return result
