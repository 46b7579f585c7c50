"""The array-based exposure against a minute-by-minute count of the same readings.

With readings on whole minutes and a whole-minute ``max_hold``, every statistic can be
counted minute by minute: which value holds at each minute of each segment, whether the
lot is covered then, whether any holding value is out of range. That count is written
here without the code under test and compared on random segments (hypothesis).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.mkt import mean_kinetic_temperature
from coldchain.tor import Span, micros
from erp_core.lot_history.exposure import Block, SegmentReadings, exposure

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOW, HIGH = 2.0, 8.0


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def readings(sensor: int, start: int, end: int, samples: dict[int, float]) -> SegmentReadings:
    times = sorted(samples, key=lambda m: (m * 7919) % 101)  # not in time order
    return SegmentReadings(
        sensor_id=sensor,
        span=Span(at(start), at(end)),
        times=np.array([micros(at(m)) for m in times], dtype=np.int64),
        values=np.array([samples[m] for m in times], dtype=np.float64),
    )


def runs(flags: list[bool]) -> list[tuple[int, int]]:
    """Maximal runs [first, last + 1) of True in ``flags``."""
    found, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            found.append((start, i))
            start = None
    return found


segment_st = st.tuples(
    st.integers(0, 120),  # start minute
    st.integers(1, 150),  # length
    st.dictionaries(
        st.integers(-5, 300), st.floats(-5, 15, allow_nan=False, width=32), max_size=40
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(segment_st, min_size=1, max_size=3),
    st.integers(1, 30),
    st.integers(1, 20),
    st.integers(0, 30),
    st.integers(0, 30),
)
def test_exposure_equals_the_minute_count(
    raw: list[tuple[int, int, dict[int, float]]],
    hold: int,
    min_gap: int,
    before: int,
    after: int,
) -> None:
    segments = []
    holding: list[dict[int, float]] = []  # per segment: minute -> the value that holds
    for start, length, samples in raw:
        end = start + length
        inside = {m: v for m, v in samples.items() if start <= m < end + 10}
        segments.append(readings(len(segments), start, end, inside))
        held = {}
        times = sorted(inside)
        for k, t in enumerate(times):
            stop = min(t + hold, end, times[k + 1] if k + 1 < len(times) else end)
            for m in range(t, stop):
                held[m] = inside[t]
        holding.append(held)
    life_start = min(s for s, _, _ in raw) - before
    life_end = max(s + n for s, n, _ in raw) + after
    got = exposure(
        segments,
        life=Span(at(life_start), at(life_end)),
        low=LOW,
        high=HIGH,
        max_hold=timedelta(minutes=hold),
        min_gap=timedelta(minutes=min_gap),
    )

    every = [v for seg in segments for v in seg.values.tolist()]
    assert got.readings == len(every)
    assert got.minimum == (min(every) if every else None)
    assert got.maximum == (max(every) if every else None)
    weighted = [v for held in holding for v in held.values()]
    if weighted:
        assert got.mean == pytest.approx(math.fsum(weighted) / len(weighted), rel=1e-12)
        assert got.mkt == pytest.approx(mean_kinetic_temperature(weighted), rel=1e-9, abs=1e-9)
    else:
        assert got.mean is None
        assert got.mkt is None

    minutes = range(min(life_start, 0) - 10, max(life_end, 310) + 10)
    out = [any(not LOW <= h[m] <= HIGH for h in holding if m in h) for m in minutes]
    out_runs = [(minutes[a], minutes[b - 1] + 1) for a, b in runs(out)]
    assert [(s.start, s.end) for s in got.tor.spans] == [(at(a), at(b)) for a, b in out_runs]
    assert got.tor.cumulative == timedelta(minutes=sum(out))
    assert got.tor.longest == timedelta(minutes=max((b - a for a, b in out_runs), default=0))

    life = range(life_start, life_end)
    uncovered = [not any(m in h for h in holding) for m in life]
    gaps = [(life[a], life[b - 1] + 1) for a, b in runs(uncovered)]
    cov = got.coverage
    assert cov.covered == timedelta(minutes=len(life) - sum(uncovered))
    assert cov.share == pytest.approx((len(life) - sum(uncovered)) / len(life), rel=1e-12)
    assert [(g.start, g.end) for g in cov.gaps] == [
        (at(a), at(b)) for a, b in gaps if b - a >= min_gap
    ]
    assert cov.short_gaps == sum(1 for a, b in gaps if b - a < min_gap)
    assert cov.short_gap_total == timedelta(minutes=sum(b - a for a, b in gaps if b - a < min_gap))


def test_a_block_counts_like_its_readings() -> None:
    """Readings 10..19 pre-summed as a block give what reading them does."""
    samples = {m: 5.0 + (m % 4) for m in range(30)}
    samples[25] = 9.5
    whole = exposure(
        [readings(1, 0, 30, samples)],
        life=Span(at(0), at(30)),
        low=LOW,
        high=HIGH,
        max_hold=timedelta(minutes=15),
        min_gap=timedelta(minutes=5),
    )
    summed = range(10, 20)
    block = Block(
        sensor_id=1,
        spans=(Span(at(10), at(20)),),
        n=len(summed),
        minimum=min(samples[m] for m in summed),
        maximum=max(samples[m] for m in summed),
        weight_s=60.0 * len(summed),
        weighted_sum=math.fsum(60.0 * samples[m] for m in summed),
        arrhenius_sum=math.fsum(60.0 * math.exp(-1e4 / (samples[m] + 273.15)) for m in summed),
    )
    first = readings(1, 0, 10, {m: samples[m] for m in range(10)})
    rest = readings(1, 20, 30, {m: samples[m] for m in range(20, 30)})
    parts = exposure(
        [first, rest],
        life=Span(at(0), at(30)),
        low=LOW,
        high=HIGH,
        max_hold=timedelta(minutes=15),
        min_gap=timedelta(minutes=5),
        blocks=[block],
    )
    assert parts.readings == whole.readings == 30
    assert (parts.minimum, parts.maximum) == (whole.minimum, whole.maximum)
    assert parts.mean == pytest.approx(whole.mean, rel=1e-12)
    assert parts.mkt == pytest.approx(whole.mkt, rel=1e-12)
    assert parts.tor == whole.tor
    assert parts.tor.spans == (Span(at(25), at(26)),)
    assert parts.coverage == whole.coverage


def test_a_block_outside_the_range_is_refused() -> None:
    block = Block(1, (Span(at(0), at(1)),), 1, 1.0, 5.0, 60.0, 60.0, 1.0)
    with pytest.raises(ValueError, match="outside the range"):
        exposure(
            [],
            life=Span(at(0), at(1)),
            low=LOW,
            high=HIGH,
            max_hold=timedelta(minutes=15),
            min_gap=timedelta(minutes=5),
            blocks=[block],
        )
