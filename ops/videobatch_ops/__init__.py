"""``videobatch``, the operators' command line: look at a running pipeline (status, items, item) and act on it
(requeue, reprocess, pause, resume, cancel-batch, redrive, backfill, sweep), deployed or on the local stack.

Not part of the Lambda layer (``shared/``): it runs where operators are, with their AWS credentials, and uses the
layer's package (``videobatch``) for the records, ports and services so it follows the pipeline's own rules.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("videobatch")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree that was never installed
        return "0+unknown"
