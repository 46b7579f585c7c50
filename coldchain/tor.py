"""Time out of range: how long a product was outside its storage range, from readings.

A reading's value is taken to hold from its time until the next reading of the same
sensor, the end of the sensor's segment, or ``max_hold`` after it — whichever comes
first. Past ``max_hold`` nothing is known: that time is a coverage gap, not "in range"
(see ``coldchain.coverage``). Spans of several sensors are merged, so when two sensors
watch the lot at once the lot counts as out of range while either says so (the
conservative reading). Pure: no I/O.

The work is done on numpy arrays of microseconds since the Unix epoch (``hold``,
``merge_micros``, ``tor_micros``): a lot's year of minute readings is millions of them.
The functions on ``Sample`` and ``Span`` objects are thin wrappers for small inputs;
their times must carry a time zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

ZERO = timedelta(0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

Micros = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def micros(t: datetime) -> int:
    """``t`` as microseconds since the Unix epoch (``t`` carries a time zone)."""
    return (t - EPOCH) // MICROSECOND


def from_micros(us: int) -> datetime:
    """The UTC time ``us`` microseconds after the Unix epoch."""
    return EPOCH + timedelta(microseconds=us)


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
class Held:
    """Readings with the spans [start, stop) (µs since the epoch) their values hold."""

    start: Micros
    stop: Micros
    value: Floats


@dataclass(frozen=True, slots=True)
class TimeOutOfRange:
    """Out-of-range spans (merged) with the single longest and the cumulative duration."""

    spans: tuple[Span, ...]
    longest: timedelta
    cumulative: timedelta


def hold(times: Micros, values: Floats, *, end: int, max_hold: int) -> Held:
    """Each reading of ONE sensor held until the next one, ``end`` or ``max_hold`` (µs)."""
    if times.size > 1 and not bool(np.all(times[1:] > times[:-1])):
        order = np.lexsort((values, times))  # by time, then value
        times, values = times[order], values[order]
    kept = times < end
    t, v = times[kept], values[kept]
    stop = np.minimum(t + max_hold, end)
    if t.size > 1:
        stop[:-1] = np.minimum(stop[:-1], t[1:])
    held = stop > t
    return Held(start=t[held], stop=stop[held], value=v[held])


def merge_micros(start: Micros, stop: Micros) -> tuple[Micros, Micros]:
    """The union of the spans [start, stop) as sorted, disjoint, non-touching spans."""
    nonempty = stop > start
    start, stop = start[nonempty], stop[nonempty]
    if start.size == 0:
        return start, stop
    order = np.lexsort((stop, start))
    start, stop = start[order], stop[order]
    reach = np.maximum.accumulate(stop)
    first = np.ones(start.size, dtype=bool)
    first[1:] = start[1:] > reach[:-1]
    firsts = np.flatnonzero(first)
    lasts = np.append(firsts[1:] - 1, start.size - 1)
    return start[firsts], reach[lasts]


def spans_of(start: Micros, stop: Micros) -> list[Span]:
    """Spans from arrays of microseconds."""
    return [
        Span(from_micros(a), from_micros(b))
        for a, b in zip(start.tolist(), stop.tolist(), strict=True)
    ]


def micros_of(spans: Iterable[Span]) -> tuple[Micros, Micros]:
    """Arrays of microseconds from spans."""
    pairs = [(micros(s.start), micros(s.end)) for s in spans]
    both = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return both[:, 0].copy(), both[:, 1].copy()


def tor_micros(start: Micros, stop: Micros) -> TimeOutOfRange:
    """Single longest and cumulative time of the union of out-of-range spans (µs)."""
    start, stop = merge_micros(start, stop)
    durations = stop - start
    return TimeOutOfRange(
        spans=tuple(spans_of(start, stop)),
        longest=timedelta(microseconds=int(durations.max(initial=0))),
        cumulative=timedelta(microseconds=int(durations.sum())),
    )


def out_of_range(held: Held, *, low: float, high: float) -> TimeOutOfRange:
    """Time during which a held value was below ``low`` or above ``high``."""
    outside = (held.value < low) | (held.value > high)
    return tor_micros(held.start[outside], held.stop[outside])


def held_samples(
    samples: Iterable[Sample], *, end: datetime, max_hold: timedelta
) -> list[HeldSample]:
    """Each reading of ONE sensor held until the next one, ``end`` or ``max_hold``; sorted."""
    listed = list(samples)
    held = hold(
        np.array([micros(s.time) for s in listed], dtype=np.int64),
        np.array([s.value for s in listed], dtype=np.float64),
        end=micros(end),
        max_hold=max_hold // MICROSECOND,
    )
    return [
        HeldSample(Span(from_micros(a), from_micros(b)), v)
        for a, b, v in zip(
            held.start.tolist(), held.stop.tolist(), held.value.tolist(), strict=True
        )
    ]


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """The union of ``spans`` as sorted, disjoint, non-touching spans."""
    return spans_of(*merge_micros(*micros_of(spans)))


def out_of_range_spans(held: Iterable[HeldSample], *, low: float, high: float) -> list[Span]:
    """Merged spans during which a held value was below ``low`` or above ``high``."""
    return merge_spans(h.span for h in held if h.value < low or h.value > high)


def time_out_of_range(spans: Iterable[Span]) -> TimeOutOfRange:
    """Single longest and cumulative time of the union of out-of-range ``spans``."""
    return tor_micros(*micros_of(spans))


def sensor_time_out_of_range(
    samples: Sequence[Sample], *, low: float, high: float, end: datetime, max_hold: timedelta
) -> TimeOutOfRange:
    """Time out of [low, high] of one sensor's readings up to ``end``."""
    held = held_samples(samples, end=end, max_hold=max_hold)
    return time_out_of_range(out_of_range_spans(held, low=low, high=high))


def remaining_budget(*, budget: timedelta, used: timedelta) -> timedelta:
    """Time-out-of-refrigeration budget left; negative when the budget is overrun."""
    return budget - used
