"""The ``hostile`` profile: uploads and events a careless or malicious user sends, on top of the normal workload.

They are drawn from their own seeded stream (``<seed>:hostile``), so the normal plan of a seed is the same with
and without them: ``tests/simulation`` runs one seed both ways and checks that no normal video is delayed or
changed by the hostile ones (the isolation rule of docs/reliability.md).

==================  ==================================================================  ======================
kind                what                                                                expected
==================  ==================================================================  ======================
long_key            a valid video under a 1,000-byte key (its mirrored result address   done (bounded result
                    would pass S3's 1,024-byte limit)                                   key ``_long-keys/``)
encoded_key         spaces, ``+``, ``%``, ``%25`` and non-ASCII in the key (S3 events   done
                    URL-encode them)
prewritten_result   a video whose result address someone writes first (the bucket      failed result_conflict
                    policy denies that to uploaders; moto does not enforce bucket
                    policies, so this is the write-once check holding on its own)
folder_key          a non-empty object under a key ending in ``/``                      failed not_a_video_extension
dot_key             a key ending in ``.``                                               failed not_a_video_extension
other_bucket        an Object Created event naming another bucket, sent straight to     no item (dead-letter
                    the ingest queue (a misrouted rule, a forged message)               queue)
non_object_message  an ingest message whose body is JSON but not an object              no item (dead-letter
                                                                                        queue)
non_object_event    a scheduled function invoked with a list instead of an event        refused, nothing moves
==================  ==================================================================  ======================
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from videobatch.domain.items import ItemState

KINDS: Final[tuple[str, ...]] = (
    "long_key",
    "encoded_key",
    "prewritten_result",
    "folder_key",
    "dot_key",
    "other_bucket",
    "non_object_message",
    "non_object_event",
)
# Kinds that put an object into the video bucket (and so must become an item).
OBJECT_KINDS: Final = frozenset({"long_key", "encoded_key", "prewritten_result", "folder_key", "dot_key"})
OTHER_BUCKET: Final = "someone-elses-bucket"
LONG_KEY_BYTES: Final = 1000


@dataclass(frozen=True)
class Expected:
    state: ItemState
    code: str | None = None


EXPECTED: Final[dict[str, Expected]] = {
    "long_key": Expected(ItemState.DONE),
    "encoded_key": Expected(ItemState.DONE),
    "prewritten_result": Expected(ItemState.FAILED, "result_conflict"),
    "folder_key": Expected(ItemState.FAILED, "not_a_video_extension"),
    "dot_key": Expected(ItemState.FAILED, "not_a_video_extension"),
}


@dataclass(frozen=True)
class HostileAct:
    at: datetime
    kind: str
    key: str


def plan_hostile(seed: int, *, start: datetime, days: int, per_day: int) -> list[HostileAct]:
    """``per_day`` acts a day, every kind in turn (so each appears once ``per_day >= len(KINDS)``), at seeded
    moments; their own random stream leaves the seed's normal plan as it is."""
    rng = random.Random(f"{seed}:hostile")
    acts: list[HostileAct] = []
    for day in range(days):
        for number in range(per_day):
            at = start + timedelta(days=day, seconds=rng.uniform(0, 86_400))
            kind = KINDS[(day * per_day + number) % len(KINDS)]
            acts.append(HostileAct(at, kind, hostile_key(kind, f"h{day}-{number:03d}")))
    return sorted(acts, key=lambda act: act.at)


def hostile_key(kind: str, name: str) -> str:
    if kind == "long_key":
        stem = f"videos/{name}-"
        return stem + "k" * (LONG_KEY_BYTES - len(stem) - len(".mp4")) + ".mp4"
    if kind == "encoded_key":
        return f"videos/my video +{name} 100% %25 café ü.mp4"
    if kind == "folder_key":
        return f"videos/{name}/"
    if kind == "dot_key":
        return f"videos/{name}."
    return f"videos/{name}.mp4"
