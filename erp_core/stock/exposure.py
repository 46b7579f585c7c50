"""A lot's thermal exposure from its sensor segments (pure): the statistics of its history.

Each (sensor, segment) is the readings one sensor took while it stood for the lot. A
reading holds until the same sensor's next reading, the segment end, or ``max_hold``;
that held time weights the mean and MKT, is what "covered" means, and is what counts as
out of range when the value is outside the item's range. Overlapping sensors are merged
(the lot is out of range while any of its sensors says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from coldchain.coverage import Coverage, coverage
from coldchain.mkt import arrhenius_term, mkt_from_sums
from coldchain.tor import (
    Sample,
    Span,
    TimeOutOfRange,
    held_samples,
    out_of_range_spans,
    time_out_of_range,
)


@dataclass(frozen=True, slots=True)
class SegmentReadings:
    """The readings one sensor took while it stood for the lot over ``span``."""

    sensor_id: int
    span: Span
    samples: Sequence[Sample]


@dataclass(frozen=True, slots=True)
class Block:
    """Readings of one sensor summed ahead (see ``rollup``), all inside the range.

    Their held spans cover exactly ``spans``; weights are held seconds.
    """

    sensor_id: int
    spans: tuple[Span, ...]
    n: int
    minimum: float
    maximum: float
    weight_s: float
    weighted_sum: float
    arrhenius_sum: float


@dataclass(frozen=True, slots=True)
class Exposure:
    """Statistics of a lot's history; temperatures None when there is no reading."""

    readings: int
    minimum: float | None
    maximum: float | None
    mean: float | None
    mkt: float | None
    tor: TimeOutOfRange
    coverage: Coverage


def exposure(  # noqa: PLR0913 - keyword-only, each a documented input
    segments: Sequence[SegmentReadings],
    *,
    life: Span,
    low: float,
    high: float,
    max_hold: timedelta,
    min_gap: timedelta,
    blocks: Sequence[Block] = (),
) -> Exposure:
    """Min, max, time-weighted mean and MKT, time out of range and coverage over ``life``.

    ``blocks`` are readings summed ahead; they must lie inside [low, high].
    """
    if any(b.minimum < low or b.maximum > high for b in blocks):
        raise ValueError("a pre-summed block holds values outside the range")
    held = [
        h
        for seg in segments
        for h in held_samples(seg.samples, end=seg.span.end, max_hold=max_hold)
    ]
    values = [s.value for seg in segments for s in seg.samples]
    weights = [h.span.duration.total_seconds() for h in held]
    total = math.fsum([*weights, *(b.weight_s for b in blocks)])
    mean = mkt = None
    if total > 0:
        weighted = [w * h.value for w, h in zip(weights, held, strict=True)]
        mean = math.fsum([*weighted, *(b.weighted_sum for b in blocks)]) / total
        terms = [w * arrhenius_term(h.value) for w, h in zip(weights, held, strict=True)]
        mkt = mkt_from_sums(math.fsum([*terms, *(b.arrhenius_sum for b in blocks)]), total)
    lows = [*values, *(b.minimum for b in blocks)]
    highs = [*values, *(b.maximum for b in blocks)]
    return Exposure(
        readings=len(values) + sum(b.n for b in blocks),
        minimum=min(lows, default=None),
        maximum=max(highs, default=None),
        mean=mean,
        mkt=mkt,
        tor=time_out_of_range(out_of_range_spans(held, low=low, high=high)),
        coverage=coverage(
            [*(h.span for h in held), *(sp for b in blocks for sp in b.spans)],
            life=life,
            min_gap=min_gap,
        ),
    )
