"""The recovery tests stand on the service tests' local stack: moto server + the real emulator, one ManualClock."""

from tests.unit.services.conftest import aws_env, clock, emulator, moto_endpoint, stack, videos

__all__ = ["aws_env", "clock", "emulator", "moto_endpoint", "stack", "videos"]
