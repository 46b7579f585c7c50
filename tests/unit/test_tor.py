"""Time out of range, remaining budget and coverage against hand-computed cases."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from coldchain.coverage import coverage
from coldchain.tor import (
    Sample,
    Span,
    held_samples,
    merge_spans,
    out_of_range_spans,
    remaining_budget,
    sensor_time_out_of_range,
    time_out_of_range,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOLD = timedelta(minutes=15)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def series(values: list[float], step: int = 1) -> list[Sample]:
    return [Sample(at(i * step), v) for i, v in enumerate(values)]


def test_all_in_range_is_zero() -> None:
    tor = sensor_time_out_of_range(series([4.0, 5.0, 6.0]), low=2, high=8, end=at(3), max_hold=HOLD)
    assert tor.cumulative == timedelta(0)
    assert tor.longest == timedelta(0)
    assert tor.spans == ()


def test_two_excursions_longest_and_cumulative() -> None:
    # minute: 0  1  2   3   4  5  6  7   8  9   (end at 10)
    values = [5, 5, 9, 10, 5, 5, 1, 1, 1.5, 5]
    tor = sensor_time_out_of_range(series(values), low=2, high=8, end=at(10), max_hold=HOLD)
    # warm: minutes 2-4 (2 min); cold: minutes 6-9 (3 min)
    assert tor.spans == (Span(at(2), at(4)), Span(at(6), at(9)))
    assert tor.longest == 3 * MIN
    assert tor.cumulative == 5 * MIN


def test_boundaries_are_in_range() -> None:
    tor = sensor_time_out_of_range(series([2.0, 8.0]), low=2, high=8, end=at(2), max_hold=HOLD)
    assert tor.cumulative == timedelta(0)


def test_hold_is_capped_so_a_silent_sensor_adds_no_time() -> None:
    # One warm reading then silence for an hour: only max_hold counts, the rest is a gap.
    samples = [Sample(at(0), 12.0), Sample(at(60), 5.0)]
    tor = sensor_time_out_of_range(samples, low=2, high=8, end=at(61), max_hold=HOLD)
    assert tor.cumulative == HOLD


def test_last_reading_held_until_end() -> None:
    tor = sensor_time_out_of_range(
        [Sample(at(0), 5.0), Sample(at(5), 9.0)], low=2, high=8, end=at(8), max_hold=HOLD
    )
    assert tor.spans == (Span(at(5), at(8)),)


def test_two_sensors_merge_overlapping_excursions() -> None:
    a = held_samples([Sample(at(0), 9.0), Sample(at(10), 5.0)], end=at(20), max_hold=HOLD)
    b = held_samples([Sample(at(5), 9.0), Sample(at(15), 5.0)], end=at(20), max_hold=HOLD)
    tor = time_out_of_range(out_of_range_spans([*a, *b], low=2, high=8))
    assert tor.spans == (Span(at(0), at(15)),)
    assert tor.cumulative == 15 * MIN


def test_remaining_budget_goes_negative_when_overrun() -> None:
    assert remaining_budget(budget=timedelta(hours=2), used=30 * MIN) == 90 * MIN
    assert remaining_budget(budget=timedelta(hours=1), used=75 * MIN) == -15 * MIN


def test_coverage_lists_gaps_with_times() -> None:
    life = Span(at(0), at(100))
    covered = [Span(at(0), at(30)), Span(at(29), at(40)), Span(at(70), at(99.5))]
    cov = coverage(covered, life=life, min_gap=5 * MIN)
    assert cov.gaps == (Span(at(40), at(70)),)
    assert cov.short_gaps == 1
    assert cov.short_gap_total == timedelta(seconds=30)
    assert cov.covered == timedelta(minutes=69.5)
    assert abs(cov.share - 0.695) < 1e-12


def test_coverage_of_nothing_is_one_gap() -> None:
    cov = coverage([], life=Span(at(0), at(10)), min_gap=MIN)
    assert cov.share == 0.0
    assert cov.gaps == (Span(at(0), at(10)),)


values_st = st.lists(st.floats(min_value=-30, max_value=40, allow_nan=False), max_size=60)


@given(values_st, st.randoms(use_true_random=False))
def test_tor_is_invariant_to_sample_order(values: list[float], rnd: random.Random) -> None:
    samples = series(values, step=2)
    shuffled = samples[:]
    rnd.shuffle(shuffled)
    kwargs = {"low": 2.0, "high": 8.0, "end": at(2 * len(values) + 1), "max_hold": HOLD}
    assert sensor_time_out_of_range(samples, **kwargs) == sensor_time_out_of_range(
        shuffled, **kwargs
    )


@given(values_st)
def test_longest_at_most_cumulative_at_most_span(values: list[float]) -> None:
    samples = series(values, step=3)
    end = at(3 * len(values))
    tor = sensor_time_out_of_range(samples, low=2, high=8, end=end, max_hold=HOLD)
    assert tor.longest <= tor.cumulative <= end - T0
    # Cumulative equals the count of out-of-range readings × 3 minutes (each holds 3 min).
    assert tor.cumulative == 3 * MIN * sum(1 for v in values if v < 2 or v > 8)


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(1, 30)), max_size=20))
def test_merged_spans_are_disjoint_and_keep_every_instant(pairs: list[tuple[int, int]]) -> None:
    spans = [Span(at(s), at(s + d)) for s, d in pairs]
    merged = merge_spans(spans)
    assert all(a.end < b.start for a, b in itertools.pairwise(merged))
    for minute in range(131):
        inside = any(s.start <= at(minute) < s.end for s in spans)
        assert inside == any(m.start <= at(minute) < m.end for m in merged)
