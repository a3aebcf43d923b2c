"""A local emulator of the TwelveLabs v1.3 API (assets, multipart uploads, batch analysis, tasks).

Stand-alone: it imports nothing of the pipeline it serves. ``EmulatorServer(EmulatorConfig(...)).start()`` serves
it on a thread; ``videobatch emulator`` from the CLI (``twelvelabs_emulator.command``). Heavy modules (PyAV) load
only when the server module is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twelvelabs_emulator.clock import AdvanceableClock, Clock, ManualClock
    from twelvelabs_emulator.models import EmulatorSettings, RateLimits
    from twelvelabs_emulator.server import EmulatorConfig, EmulatorServer
    from twelvelabs_emulator.state import EmulatorState
    from twelvelabs_emulator.variants import Variant
    from twelvelabs_emulator.webhooks import WebhookRequest, WebhookSender

__all__ = [
    "AdvanceableClock",
    "Clock",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorSettings",
    "EmulatorState",
    "ManualClock",
    "RateLimits",
    "Variant",
    "WebhookRequest",
    "WebhookSender",
]

_EXPORTS = {
    "AdvanceableClock": "twelvelabs_emulator.clock",
    "Clock": "twelvelabs_emulator.clock",
    "ManualClock": "twelvelabs_emulator.clock",
    "EmulatorConfig": "twelvelabs_emulator.server",
    "EmulatorServer": "twelvelabs_emulator.server",
    "EmulatorSettings": "twelvelabs_emulator.models",
    "RateLimits": "twelvelabs_emulator.models",
    "EmulatorState": "twelvelabs_emulator.state",
    "Variant": "twelvelabs_emulator.variants",
    "WebhookRequest": "twelvelabs_emulator.webhooks",
    "WebhookSender": "twelvelabs_emulator.webhooks",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
