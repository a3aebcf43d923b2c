"""CloudWatch, far enough to evaluate the template's alarms against what the local stack really emitted.

- ``MetricStore``: metric data points on the virtual clock. ``add_emf`` takes one Embedded Metric Format blob (what
  Powertools prints to stdout) the way CloudWatch Logs extracts it: one data point per metric, value and dimension
  set of each ``CloudWatchMetrics`` directive, dimensions valued from the blob's top-level keys. ``add`` takes
  anything else (the Lambda and SQS metrics the wiring derives from its invocations and queues).
- ``AlarmSpec``: a ``AWS::CloudWatch::Alarm`` of the template, resolved (single metric; metric math is refused).
- ``evaluate``: the alarm's state at a moment, as CloudWatch decides it: the last ``EvaluationPeriods`` complete
  periods (aligned to multiples of ``Period`` since the epoch), each reduced by ``Statistic`` or missing;
  ``TreatMissingData`` decides what a missing period is (``breaching``, ``notBreaching``, ``ignore`` and
  ``missing`` are left out of the count); ALARM when at least ``DatapointsToAlarm`` counted periods breach, OK when
  any period was counted, INSUFFICIENT_DATA otherwise. (CloudWatch also looks back further for ``missing`` and
  ``ignore``, and evaluates with some delay; neither matters for alarms on metrics a run emits every minute.)
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

Dimensions = tuple[tuple[str, str], ...]


def dimensions_of(mapping: Mapping[str, str]) -> Dimensions:
    return tuple(sorted((str(k), str(v)) for k, v in mapping.items()))


@dataclass(frozen=True)
class SeriesKey:
    namespace: str
    name: str
    dimensions: Dimensions


class _Series:
    """Data points of one metric stream: parallel arrays (16 bytes a point), so days of points stay small."""

    __slots__ = ("timestamps", "values")

    def __init__(self) -> None:
        self.timestamps = array("d")
        self.values = array("d")


class MetricStore:
    def __init__(self) -> None:
        self._series: dict[SeriesKey, _Series] = {}

    def add(
        self, namespace: str, name: str, value: float, *, at: datetime, dimensions: Mapping[str, str] | None = None
    ) -> None:
        key = SeriesKey(namespace, name, dimensions_of(dimensions or {}))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        stamp = at.timestamp()
        if series.timestamps and stamp < series.timestamps[-1]:
            # Kept sorted for bisect (a test may set the clock back).
            index = bisect.bisect_right(series.timestamps, stamp)
            series.timestamps.insert(index, stamp)
            series.values.insert(index, float(value))
        else:
            series.timestamps.append(stamp)
            series.values.append(float(value))

    def add_emf(self, blob: Mapping[str, Any], *, at: datetime) -> int:
        """Extract one EMF blob as CloudWatch does; returns the number of data points added."""
        added = 0
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive.get("Dimensions", [[]]):
                dimensions = {name: str(blob[name]) for name in dimension_set}
                for metric in directive["Metrics"]:
                    raw = blob[metric["Name"]]
                    for value in raw if isinstance(raw, list) else [raw]:
                        self.add(directive["Namespace"], metric["Name"], float(value), at=at, dimensions=dimensions)
                        added += 1
        return added

    def series_keys(self) -> Iterator[SeriesKey]:
        return iter(self._series)

    def points(self, key: SeriesKey, start: datetime, end: datetime) -> list[float]:
        """Values with start <= timestamp < end."""
        series = self._series.get(key)
        if series is None:
            return []
        low = bisect.bisect_left(series.timestamps, start.timestamp())
        high = bisect.bisect_left(series.timestamps, end.timestamp())
        return list(series.values[low:high])

    def names(self, namespace: str) -> set[str]:
        return {key.name for key in self._series if key.namespace == namespace}


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


_STATISTICS: Mapping[str, Callable[[list[float]], float]] = {
    "Sum": sum,
    "Average": lambda values: sum(values) / len(values),
    "Minimum": min,
    "Maximum": max,
    "SampleCount": lambda values: float(len(values)),
}
_COMPARISONS: Mapping[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


@dataclass(frozen=True)
class AlarmSpec:
    logical_id: str
    namespace: str
    metric_name: str
    dimensions: Dimensions
    statistic: str
    period_seconds: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str

    @classmethod
    def from_properties(cls, logical_id: str, props: Mapping[str, Any]) -> AlarmSpec:
        """From the alarm's resolved CloudFormation properties."""
        if "Metrics" in props or "ExtendedStatistic" in props:
            raise NotImplementedError(f"{logical_id}: metric math and percentiles are not evaluated locally")
        if props["Statistic"] not in _STATISTICS or props["ComparisonOperator"] not in _COMPARISONS:
            raise NotImplementedError(f"{logical_id}: {props['Statistic']} / {props['ComparisonOperator']}")
        evaluation_periods = int(props["EvaluationPeriods"])
        return cls(
            logical_id=logical_id,
            namespace=str(props["Namespace"]),
            metric_name=str(props["MetricName"]),
            dimensions=dimensions_of({d["Name"]: d["Value"] for d in props.get("Dimensions", [])}),
            statistic=str(props["Statistic"]),
            period_seconds=int(props["Period"]),
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=int(props.get("DatapointsToAlarm", evaluation_periods)),
            threshold=float(props["Threshold"]),
            comparison=str(props["ComparisonOperator"]),
            treat_missing_data=str(props.get("TreatMissingData", "missing")),
        )

    @property
    def key(self) -> SeriesKey:
        return SeriesKey(self.namespace, self.metric_name, self.dimensions)

    def window_seconds(self) -> int:
        return self.period_seconds * self.evaluation_periods


@dataclass(frozen=True)
class Evaluation:
    alarm: str
    at: datetime
    state: AlarmState
    # Per evaluated period, oldest first: the statistic, or None when the period had no data point.
    datapoints: tuple[float | None, ...]


def evaluate(alarm: AlarmSpec, store: MetricStore, at: datetime) -> Evaluation:
    """The alarm's state at ``at`` over the last complete periods."""
    period = alarm.period_seconds
    end_epoch = math.floor(at.timestamp() / period) * period
    datapoints: list[float | None] = []
    for index in range(alarm.evaluation_periods, 0, -1):
        start = datetime.fromtimestamp(end_epoch - index * period, UTC)
        values = store.points(alarm.key, start, start + timedelta(seconds=period))
        datapoints.append(_STATISTICS[alarm.statistic](values) if values else None)
    breaching = 0
    counted = 0
    compare = _COMPARISONS[alarm.comparison]
    for value in datapoints:
        if value is None:
            if alarm.treat_missing_data == "breaching":
                breaching, counted = breaching + 1, counted + 1
            elif alarm.treat_missing_data == "notBreaching":
                counted += 1
            continue
        counted += 1
        breaching += compare(value, alarm.threshold)
    if breaching >= alarm.datapoints_to_alarm:
        state = AlarmState.ALARM
    elif counted:
        state = AlarmState.OK
    else:
        state = AlarmState.INSUFFICIENT_DATA
    return Evaluation(alarm.logical_id, at, state, tuple(datapoints))


def evaluate_over(
    alarms: Iterable[AlarmSpec], store: MetricStore, start: datetime, end: datetime, step: timedelta
) -> dict[str, list[Evaluation]]:
    """Each alarm evaluated every ``step`` from ``start`` to ``end``, both included (CloudWatch: every minute)."""
    timeline: dict[str, list[Evaluation]] = {}
    for alarm in alarms:
        moments: list[Evaluation] = []
        moment = start
        while moment <= end:
            moments.append(evaluate(alarm, store, moment))
            moment += step
        timeline[alarm.logical_id] = moments
    return timeline


def template_alarms(template: Mapping[str, Any], resolver: Any) -> list[AlarmSpec]:
    """Every alarm the template creates under the resolver's parameters and conditions."""
    return [
        AlarmSpec.from_properties(logical_id, resolver.resolve(spec["Properties"]))
        for logical_id, spec in template["Resources"].items()
        if spec["Type"] == "AWS::CloudWatch::Alarm" and resolver.resource_enabled(logical_id)
    ]


__all__ = [
    "AlarmSpec",
    "AlarmState",
    "Evaluation",
    "MetricStore",
    "SeriesKey",
    "dimensions_of",
    "evaluate",
    "evaluate_over",
    "template_alarms",
]
