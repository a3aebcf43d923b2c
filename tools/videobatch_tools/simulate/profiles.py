"""Fault profiles: which faults a simulation injects, and how often. Every draw is seeded by the run's seed.

========  ==================================================================================================
none      no faults: a mixed, clean workload
crashes   a crash (InjectedCrash) before and after every port call of every handler at least once, plus at
          random; flusher and batch checker
          fired twice at once (interleaved at port calls), sometimes with the first flusher stalled past its
          lease so the second takes over
api       TwelveLabs errors from the emulator: 429 bursts with Retry-After, 5xx, latency beyond the client's
          attempt timeout, lost responses of ``POST /analyze/batches`` (created, answer lost), item failures
          with every code of ``domain.policy``
expiry    slow processing periods (batches expire with items queued and processing), slow asset processing,
          corrupt videos (assets fail)
events    duplicate and delayed (out-of-order) S3 events, non-video uploads, re-uploads of a key (new version)
hostile   what a careless or malicious user sends (``simulate.hostile``): 1,000-byte and URL-encoded keys,
          pre-written result files, keys ending in ``/`` or ``.``, events naming another bucket, non-object
          messages and events; each must end as ``hostile.EXPECTED`` says and delay no other video
all       everything above
========  ==================================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from videobatch.domain.policy import REQUEUE_NOW_FAILURE_CODES, RETRYABLE_CODES, TERMINAL_CODES


@dataclass(frozen=True)
class FaultProfile:
    name: str
    crash_rate: float = 0.0  # per port call inside a handler
    systematic_crashes: bool = False  # and once at every step boundary (first deliveries only)
    double_fire_rate: float = 0.0  # flusher / batch checker firings run twice, interleaved
    stall_rate: float = 0.0  # of double flusher firings: the first one stalls past its lease
    api_faults: bool = False
    item_failure_rate: float = 0.0  # per code
    slow_processing_periods_per_day: int = 0
    slow_asset_periods_per_day: int = 0
    corrupt_rate: float = 0.0  # share of uploads that are corrupt videos
    duplicate_event_rate: float = 0.0
    non_video_rate: float = 0.0
    reupload_rate: float = 0.0
    hostile_per_day: int = 0  # acts of simulate.hostile a day, on top of the normal uploads

    @property
    def loses_create_responses(self) -> bool:
        return self.api_faults


def _merge(name: str, *profiles: FaultProfile) -> FaultProfile:
    fields: dict[str, Any] = {}
    for profile in profiles:
        for key, value in vars(profile).items():
            if key != "name" and value:
                fields[key] = value
    return FaultProfile(name=name, **fields)


CRASHES = FaultProfile("crashes", crash_rate=0.02, systematic_crashes=True, double_fire_rate=0.3, stall_rate=0.3)
API = FaultProfile("api", api_faults=True, item_failure_rate=0.004)
EXPIRY = FaultProfile("expiry", slow_processing_periods_per_day=1, slow_asset_periods_per_day=1, corrupt_rate=0.04)
EVENTS = FaultProfile("events", duplicate_event_rate=0.15, non_video_rate=0.06, reupload_rate=0.06)
HOSTILE = FaultProfile("hostile", hostile_per_day=8)

PROFILES: Final[dict[str, FaultProfile]] = {
    "none": FaultProfile("none"),
    "crashes": CRASHES,
    "api": API,
    "expiry": EXPIRY,
    "events": EVENTS,
    "hostile": HOSTILE,
    "all": _merge("all", CRASHES, API, EXPIRY, EVENTS, HOSTILE),
}

# Every failure code the retry policy distinguishes, plus codes it must treat by prefix or as unknown.
ITEM_FAILURE_CODES: Final[tuple[str, ...]] = (
    *sorted(RETRYABLE_CODES),
    *sorted(TERMINAL_CODES),
    *sorted(REQUEUE_NOW_FAILURE_CODES),
    "parameter_invalid",
    "invalid_video_source",
    "code_never_seen_before",
)


def emulator_fault_rules(profile: FaultProfile, *, latency_seconds: float) -> list[dict[str, Any]]:
    """The emulator's fault rules for ``profile`` (``POST /_emulator/faults``)."""
    rules: list[dict[str, Any]] = []
    if profile.api_faults:
        create = "POST /analyze/batches"
        rules += [
            {"endpoint": create, "rate": 0.08, "status": 429, "code": "too_many_requests", "retry_after": 30},
            {"endpoint": create, "rate": 0.04, "status": 503, "code": "service_unavailable"},
            {"endpoint": create, "rate": 0.06, "lose_response": True},
            {"endpoint": "GET /analyze/batches", "rate": 0.05, "status": 429, "retry_after": 5},
            {"endpoint": "GET /analyze/batches", "rate": 0.03, "status": 500},
            {"endpoint": "GET /analyze/batches/{id}", "rate": 0.05, "status": 503},
            {"endpoint": "GET /analyze/batches/{id}/results", "rate": 0.04, "status": 502},
            # Beyond the client's attempt timeout: the client gives up and retries (safe calls only).
            {
                "endpoint": "GET /analyze/batches/{id}/results",
                "rate": 0.02,
                "count": 3,
                "latency_seconds": latency_seconds,
            },
            {"endpoint": "GET /assets", "rate": 0.02, "count": 3, "latency_seconds": latency_seconds},
            {"endpoint": "POST /assets", "rate": 0.05, "status": 429, "retry_after": 10},
            {"endpoint": "POST /assets", "rate": 0.02, "status": 503},
            {"endpoint": "GET /assets", "rate": 0.05, "status": 500},
        ]
    if profile.item_failure_rate > 0:
        # The emulator draws once per task and the first rule with draw < rate wins: cumulative rates give
        # each code the same share.
        for index, code in enumerate(ITEM_FAILURE_CODES):
            rate = min(1.0, (index + 1) * profile.item_failure_rate)
            rules.append({"item_failure": {"code": code, "message": f"injected {code}", "rate": rate}})
    return rules
