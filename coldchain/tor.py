"""Time out of range: how long a product was outside its storage range, from readings.

A reading's value is taken to hold from its time until the next reading of the same
sensor, the end of the sensor's segment, or ``max_hold`` after it — whichever comes
first. Past ``max_hold`` nothing is known: that time is a coverage gap, not "in range"
(see ``coldchain.coverage``). Spans of several sensors are merged, so when two sensors
watch the lot at once the lot counts as out of range while either says so (the
conservative reading). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

ZERO = timedelta(0)


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """The half-open time interval [start, end)."""

    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        """How long the span lasts."""
        return self.end - self.start


@dataclass(frozen=True, slots=True, order=True)
class Sample:
    """One reading: device time and value."""

    time: datetime
    value: float


@dataclass(frozen=True, slots=True)
class HeldSample:
    """A reading with the span over which its value is taken to hold."""

    span: Span
    value: float


@dataclass(frozen=True, slots=True)
class TimeOutOfRange:
    """Out-of-range spans (merged) with the single longest and the cumulative duration."""

    spans: tuple[Span, ...]
    longest: timedelta
    cumulative: timedelta


def _sample_key(sample: Sample) -> tuple[datetime, float]:
    return (sample.time, sample.value)  # a plain tuple sorts far faster than the dataclass


def _span_key(span: Span) -> tuple[datetime, datetime]:
    return (span.start, span.end)


def held_samples(
    samples: Iterable[Sample], *, end: datetime, max_hold: timedelta
) -> list[HeldSample]:
    """Each reading of ONE sensor held until the next one, ``end`` or ``max_hold``; sorted."""
    ordered = sorted(samples, key=_sample_key)
    held = []
    for i, sample in enumerate(ordered):
        if sample.time >= end:
            break
        stop = min(end, sample.time + max_hold)
        if i + 1 < len(ordered):
            stop = min(stop, ordered[i + 1].time)
        if stop > sample.time:
            held.append(HeldSample(Span(sample.time, stop), sample.value))
    return held


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """The union of ``spans`` as sorted, disjoint, non-touching spans."""
    merged: list[Span] = []
    for span in sorted((s for s in spans if s.end > s.start), key=_span_key):
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Span(last.start, max(last.end, span.end))
        else:
            merged.append(span)
    return merged


def out_of_range_spans(held: Iterable[HeldSample], *, low: float, high: float) -> list[Span]:
    """Merged spans during which a held value was below ``low`` or above ``high``."""
    return merge_spans(h.span for h in held if h.value < low or h.value > high)


def time_out_of_range(spans: Iterable[Span]) -> TimeOutOfRange:
    """Single longest and cumulative time of the union of out-of-range ``spans``."""
    merged = merge_spans(spans)
    durations = [s.duration for s in merged]
    return TimeOutOfRange(
        spans=tuple(merged),
        longest=max(durations, default=ZERO),
        cumulative=sum(durations, ZERO),
    )


def sensor_time_out_of_range(
    samples: Sequence[Sample], *, low: float, high: float, end: datetime, max_hold: timedelta
) -> TimeOutOfRange:
    """Time out of [low, high] of one sensor's readings up to ``end``."""
    held = held_samples(samples, end=end, max_hold=max_hold)
    return time_out_of_range(out_of_range_spans(held, low=low, high=high))


def remaining_budget(*, budget: timedelta, used: timedelta) -> timedelta:
    """Time-out-of-refrigeration budget left; negative when the budget is overrun."""
    return budget - used
