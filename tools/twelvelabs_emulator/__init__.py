"""A local emulator of the TwelveLabs v1.3 API (assets, multipart uploads, batch analysis, tasks).

``EmulatorServer(EmulatorConfig(...)).start()`` serves it on a thread; ``videobatch emulator`` from the CLI.
Heavy modules (PyAV) load only when the server module is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twelvelabs_emulator.models import EmulatorSettings
    from twelvelabs_emulator.server import EmulatorConfig, EmulatorServer
    from twelvelabs_emulator.state import EmulatorState

__all__ = ["EmulatorConfig", "EmulatorServer", "EmulatorSettings", "EmulatorState"]

_EXPORTS = {
    "EmulatorConfig": "twelvelabs_emulator.server",
    "EmulatorServer": "twelvelabs_emulator.server",
    "EmulatorSettings": "twelvelabs_emulator.models",
    "EmulatorState": "twelvelabs_emulator.state",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
