"""The crash injector: crashes only inside a handler, before or after the port call, and records the boundaries."""

import random

import pytest

from videobatch_tools.simulate.injector import CrashInjector, FaultLog, InjectedCrash, handler_scope


def _injector(rate: float, log: FaultLog, seed: int = 0) -> CrashInjector:
    return CrashInjector(rate=rate, rng=random.Random(seed), log=log)


def test_outside_a_handler_nothing_crashes_and_nothing_is_recorded() -> None:
    log = FaultLog()
    assert _injector(1.0, log).call("items.get", lambda: "value") == "value"
    assert (log.boundaries, log.counts) == (set(), {})


def test_a_crash_before_the_call_skips_it_and_one_after_lets_it_take_effect() -> None:
    log = FaultLog()
    calls: list[str] = []
    injector = _injector(1.0, log)  # every draw < rate: half before, half after, by the draw
    with handler_scope("FlusherFunction"):
        for _ in range(40):
            with pytest.raises(InjectedCrash):
                injector.call("claims.save", lambda: calls.append("ran"))
    before, after = log.counts["crash_before_call"], log.counts["crash_after_call"]
    assert before + after == 40
    assert before > 0
    assert after > 0
    assert len(calls) == after  # a crash after the call means the call happened
    assert log.boundaries == {"FlusherFunction before claims.save", "FlusherFunction after claims.save"}
    assert log.uncrashed_boundaries() == []


def test_boundaries_never_crashed_at_are_listed() -> None:
    log = FaultLog()
    injector = _injector(0.000001, log)
    with handler_scope("IngestFunction"):
        assert injector.call("items.create", lambda: 1) == 1
    assert log.uncrashed_boundaries() == ["IngestFunction after items.create", "IngestFunction before items.create"]


def test_systematic_crashes_hit_every_boundary_once_and_spare_redeliveries() -> None:
    log = FaultLog()
    injector = CrashInjector(rate=0.0, rng=random.Random(0), log=log, systematic=True)
    outcomes: list[str] = []
    for _ in range(3):  # one invocation after another, each reaching the same two calls
        with handler_scope("IngestFunction", first_delivery=True):
            try:
                injector.call("objects.head", lambda: None)
                injector.call("items.create", lambda: None)
                outcomes.append("finished")
            except InjectedCrash as crash:
                outcomes.append(str(crash))
    assert outcomes == [
        "IngestFunction crashed before objects.head",
        "IngestFunction crashed after objects.head",
        "IngestFunction crashed before items.create",
    ]
    with handler_scope("IngestFunction", first_delivery=False):  # a redelivery: no systematic crash
        assert injector.call("items.create", lambda: "ok") == "ok"
    with handler_scope("IngestFunction", first_delivery=True):
        with pytest.raises(InjectedCrash, match=r"after items\.create"):
            injector.call("items.create", lambda: None)
        assert injector.call("items.create", lambda: "ok") == "ok"  # every boundary crashed once: done
    assert log.uncrashed_boundaries() == []
