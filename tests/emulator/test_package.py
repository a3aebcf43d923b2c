"""The emulator stands alone: it imports nothing of the pipeline, whose clock it still accepts structurally."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.emulator.support import running
from videobatch.clock import ManualClock

IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
import twelvelabs_emulator
for module in pkgutil.walk_packages(twelvelabs_emulator.__path__, "twelvelabs_emulator."):
    importlib.import_module(module.name)
print(",".join(sorted(name for name in sys.modules if name.startswith("videobatch"))))
"""


def test_importing_every_emulator_module_loads_no_videobatch_module() -> None:
    result = subprocess.run([sys.executable, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.integration
def test_the_pipelines_manual_clock_drives_the_emulator() -> None:
    clock = ManualClock()
    with running(clock=clock) as server:
        response = httpx.post(f"{server.base_url}/_emulator/clock", json={"advance_seconds": 90})
        assert response.status_code == 200
    assert clock.monotonic() == 90
