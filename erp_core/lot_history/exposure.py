"""A lot's thermal exposure from its sensor segments (pure): the statistics of its history.

Each (sensor, segment) is the readings one sensor took while it stood for the lot. A
reading holds until the same sensor's next reading, the segment end, or ``max_hold``;
that held time weights the mean and MKT, is what "covered" means, and is what counts as
out of range when the value is outside the item's range. Overlapping sensors are merged
(the lot is out of range while any of its sensors says so).

Readings come as numpy arrays (times in µs since the epoch, see ``coldchain.tor``), so a
year of minute readings costs no Python per row. Sums use ``math.fsum`` and each
Arrhenius term ``math.exp``, as ``coldchain.mkt`` does: the figures do not depend on how
the readings were split between segments, runs and pre-summed blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from coldchain.coverage import Coverage, coverage_micros
from coldchain.mkt import (
    DELTA_H_J_PER_MOL,
    GAS_CONSTANT_J_PER_MOL_K,
    KELVIN_OFFSET,
    MktError,
    mkt_from_sums,
)
from coldchain.tor import (
    MICROSECOND,
    Floats,
    Held,
    Micros,
    Span,
    TimeOutOfRange,
    hold,
    micros,
    micros_of,
    out_of_range,
)

_ARRHENIUS = -DELTA_H_J_PER_MOL / GAS_CONSTANT_J_PER_MOL_K  # exp(_ARRHENIUS / T) per reading


@dataclass(frozen=True, slots=True)
class SegmentReadings:
    """The readings one sensor took while it stood for the lot over ``span``.

    ``times`` are µs since the Unix epoch, ``values`` °C, one per reading.
    """

    sensor_id: int
    span: Span
    times: Micros
    values: Floats


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
    lead_ins: Sequence[SegmentReadings] = (),
) -> Exposure:
    """Min, max, time-weighted mean and MKT, time out of range and coverage over ``life``.

    ``blocks`` are readings summed ahead; they must lie inside [low, high]. ``lead_ins``
    are held values from before a segment (``erp_core.lot_history.lead_in``): they count like
    any held reading but are not readings of the lot.
    """
    if any(b.minimum < low or b.maximum > high for b in blocks):
        raise ValueError("a pre-summed block holds values outside the range")
    parts = [
        hold(s.times, s.values, end=micros(s.span.end), max_hold=max_hold // MICROSECOND)
        for s in [*segments, *lead_ins]
    ]
    start = np.concatenate([np.empty(0, np.int64), *(p.start for p in parts)])
    stop = np.concatenate([np.empty(0, np.int64), *(p.stop for p in parts)])
    value = np.concatenate([np.empty(0, np.float64), *(p.value for p in parts)])
    weights = (stop - start) / 1e6  # held seconds
    total = math.fsum([*weights.tolist(), *(b.weight_s for b in blocks)])
    mean = mkt = None
    if total > 0:
        weighted = (weights * value).tolist()
        mean = math.fsum([*weighted, *(b.weighted_sum for b in blocks)]) / total
        mkt = mkt_from_sums(
            math.fsum([*_arrhenius(weights, value), *(b.arrhenius_sum for b in blocks)]), total
        )
    values = np.concatenate([np.empty(0, np.float64), *(s.values for s in segments)])
    seen = np.concatenate([values, *(s.values for s in lead_ins)])
    lows = [*(b.minimum for b in blocks), *([float(seen.min())] if seen.size else [])]
    highs = [*(b.maximum for b in blocks), *([float(seen.max())] if seen.size else [])]
    block_start, block_stop = micros_of(sp for b in blocks for sp in b.spans)
    return Exposure(
        readings=int(values.size) + sum(b.n for b in blocks),
        minimum=min(lows, default=None),
        maximum=max(highs, default=None),
        mean=mean,
        mkt=mkt,
        tor=out_of_range(Held(start, stop, value), low=low, high=high),
        coverage=coverage_micros(
            np.concatenate([start, block_start]),
            np.concatenate([stop, block_stop]),
            life=life,
            min_gap=min_gap,
        ),
    )


def _arrhenius(weights: Floats, celsius: Floats) -> list[float]:
    """Each held reading's weight × exp(-ΔH/(R·T)), with ``math.exp`` as ``coldchain.mkt``."""
    kelvin = celsius + KELVIN_OFFSET
    if not bool(np.all(kelvin > 0)):
        raise MktError(f"{float(celsius.min())} °C is at or below absolute zero")
    terms = np.array([math.exp(x) for x in (_ARRHENIUS / kelvin).tolist()], dtype=np.float64)
    weighted: list[float] = (weights * terms).tolist()
    return weighted
