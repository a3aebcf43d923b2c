"""The recovery tests stand on the service tests' moto stack (they are all marked ``integration``): moto server and
the real emulator over HTTP, one ManualClock."""

from tests.unit.services.conftest import (
    aws_env,
    clock,
    emulator,
    memory_stack,
    moto_endpoint,
    moto_stack,
    stack,
    videos,
)

__all__ = ["aws_env", "clock", "emulator", "memory_stack", "moto_endpoint", "moto_stack", "stack", "videos"]
