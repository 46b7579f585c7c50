"""Coverage: the share of a lot's life for which some sensor's readings say its temperature.

Gaps are reported with their times, never hidden: a lot whose history has holes cannot
be released on that history alone. Gaps shorter than ``min_gap`` (e.g. the fraction of a
sampling period at the start of each segment) are counted in the share and summed, but
not listed one by one. Pure: no I/O. The work is done on arrays of microseconds
(``coverage_micros``, as in ``coldchain.tor``); ``coverage`` takes spans.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from coldchain.tor import MICROSECOND, Micros, Span, merge_micros, micros, micros_of, spans_of


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much of ``life`` is covered by readings, and where it is not."""

    life: Span
    covered: timedelta
    share: float
    gaps: tuple[Span, ...]
    short_gaps: int
    short_gap_total: timedelta


def gaps_micros(start: Micros, stop: Micros, *, life: Span) -> tuple[Micros, Micros]:
    """The parts of ``life`` that no span [start, stop) overlaps, in time order (µs)."""
    lo, hi = micros(life.start), micros(life.end)
    start, stop = merge_micros(start, stop)
    start, stop = np.maximum(start, lo), np.minimum(stop, hi)
    inside = stop > start
    gap_start = np.concatenate(([lo], stop[inside])).astype(np.int64)
    gap_stop = np.concatenate((start[inside], [hi])).astype(np.int64)
    real = gap_stop > gap_start
    return gap_start[real], gap_stop[real]


def uncovered(covered: Iterable[Span], *, life: Span) -> list[Span]:
    """The parts of ``life`` that no span of ``covered`` overlaps, in time order."""
    return spans_of(*gaps_micros(*micros_of(covered), life=life))


def coverage_micros(start: Micros, stop: Micros, *, life: Span, min_gap: timedelta) -> Coverage:
    """Coverage of ``life`` by the spans [start, stop) (µs); gaps of at least ``min_gap``."""
    gap_start, gap_stop = gaps_micros(start, stop, life=life)
    lengths = gap_stop - gap_start
    listed = lengths >= min_gap // MICROSECOND
    total = life.duration // MICROSECOND
    missing = int(lengths.sum())
    return Coverage(
        life=life,
        covered=timedelta(microseconds=total - missing),
        share=(total - missing) / total if total > 0 else 0.0,
        gaps=tuple(spans_of(gap_start[listed], gap_stop[listed])),
        short_gaps=int((~listed).sum()),
        short_gap_total=timedelta(microseconds=int(lengths[~listed].sum())),
    )


def coverage(covered: Iterable[Span], *, life: Span, min_gap: timedelta) -> Coverage:
    """Coverage of ``life`` by ``covered``; gaps of at least ``min_gap`` listed."""
    return coverage_micros(*micros_of(covered), life=life, min_gap=min_gap)
