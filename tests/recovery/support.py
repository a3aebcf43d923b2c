"""Builders and probes shared by the recovery tests (one test file per recovery path)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta
from typing import Any

from tests.unit.services.harness import Stack
from videobatch.services.reconciler import API_CLOCK_SKEW_SECONDS, CREATE_SETTLE_SECONDS, ReconcileService
from videobatch.services.sweeper import SweepService


def reconciler(stack: Stack) -> ReconcileService:
    return stack.runtime.reconcile_service()


def sweeper(stack: Stack, **replace: Any) -> SweepService:
    """The sweeper as the Lambda wires it; ``replace`` swaps some of its repair parts (crash injection)."""
    sweep = stack.runtime.sweep_service()
    if not replace:
        return sweep
    ports = dataclasses.replace(sweep.ports, **replace)
    return SweepService(settings=stack.settings, clock=stack.clock, ports=ports, metrics=stack.metrics)


def past_decision_age(stack: Stack) -> None:
    """Move the clock past any claim's create deadline plus the settle margin: absence is provable from here."""
    stack.clock.advance(stack.settings.flush_lease_seconds + CREATE_SETTLE_SECONDS + API_CLOCK_SKEW_SECONDS + 1)


def custom_id_batches(stack: Stack) -> Counter[str]:
    """How many batches on the emulator hold each custom_id (the double-submission probe)."""
    state = stack.emulator_state()
    return Counter(item["custom_id"] for batch in state["batches"] for item in batch["items"] if item["custom_id"])


def assert_each_submitted_once(stack: Stack) -> None:
    counts = custom_id_batches(stack)
    assert counts, "no batch at all"
    assert set(counts.values()) == {1}, counts
    # Beyond custom_ids: no item has two live attempts (every attempt number of an item lives in one batch).
    per_item_attempt = Counter(custom_id.rsplit("-w", 1)[0] for custom_id in counts)
    assert all(n >= 1 for n in per_item_attempt.values())


class Wrapped:
    """A port with some methods replaced (crash injection); everything else reaches the real adapter."""

    def __init__(self, real: Any, **overrides: Any) -> None:
        self._real = real
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(self._real, name)


class Crash(Exception):
    """Stands for the process dying at this point (Lambda timeout, OOM, kill)."""


def hours(value: float) -> float:
    return timedelta(hours=value).total_seconds()
