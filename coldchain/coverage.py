"""Coverage: the share of a lot's life for which some sensor's readings say its temperature.

Gaps are reported with their times, never hidden: a lot whose history has holes cannot
be released on that history alone. Gaps shorter than ``min_gap`` (e.g. the fraction of a
sampling period at the start of each segment) are counted in the share and summed, but
not listed one by one. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from coldchain.tor import ZERO, Span, merge_spans


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much of ``life`` is covered by readings, and where it is not."""

    life: Span
    covered: timedelta
    share: float
    gaps: tuple[Span, ...]
    short_gaps: int
    short_gap_total: timedelta


def uncovered(covered: Iterable[Span], *, life: Span) -> list[Span]:
    """The parts of ``life`` that no span of ``covered`` overlaps, in time order."""
    gaps = []
    cursor = life.start
    for span in merge_spans(covered):
        start, end = max(span.start, life.start), min(span.end, life.end)
        if end <= start:
            continue
        if start > cursor:
            gaps.append(Span(cursor, start))
        cursor = max(cursor, end)
    if cursor < life.end:
        gaps.append(Span(cursor, life.end))
    return gaps


def coverage(covered: Iterable[Span], *, life: Span, min_gap: timedelta) -> Coverage:
    """Coverage of ``life`` by ``covered``; gaps of at least ``min_gap`` listed."""
    gaps = uncovered(covered, life=life)
    missing = sum((g.duration for g in gaps), ZERO)
    total = life.duration
    short = [g for g in gaps if g.duration < min_gap]
    return Coverage(
        life=life,
        covered=total - missing,
        share=(total - missing) / total if total > ZERO else 0.0,
        gaps=tuple(g for g in gaps if g.duration >= min_gap),
        short_gaps=len(short),
        short_gap_total=sum((g.duration for g in short), ZERO),
    )
