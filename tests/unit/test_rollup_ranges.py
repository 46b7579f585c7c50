"""Which hours and days the rollup refresh recomputes: ranges joined and widened (pure)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from erp_core.lot_history.rollup import DAY, HOUR
from erp_core.lot_history.rollup_refresh import hour_ranges, widen

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_consecutive_hours_join_and_days_cover_them() -> None:
    hours = [T0 + HOUR * h for h in (5, 6, 7, 30, 23)]
    assert hour_ranges(hours) == [
        (T0 + 5 * HOUR, T0 + 8 * HOUR),
        (T0 + 23 * HOUR, T0 + 24 * HOUR),
        (T0 + 30 * HOUR, T0 + 31 * HOUR),
    ]
    assert widen(hour_ranges(hours), DAY) == [(T0, T0 + 2 * DAY)]
    assert widen([(T0 + 49 * HOUR, T0 + 50 * HOUR)], DAY) == [(T0 + 2 * DAY, T0 + 3 * DAY)]


@given(st.lists(st.tuples(st.integers(0, 24 * 20), st.integers(1, 60)), max_size=12))
def test_widened_days_cover_exactly_the_days_touched(pairs: list[tuple[int, int]]) -> None:
    ranges = [(T0 + HOUR * a, T0 + HOUR * (a + n)) for a, n in pairs]
    days = widen(ranges, DAY)
    assert all(a < b for a, b in days)
    assert all(b < c for (_, b), (c, _) in itertools.pairwise(days))  # sorted, apart
    assert all((t - T0) % DAY == timedelta(0) for span in days for t in span)
    touched = {(h - T0) // DAY for a, b in ranges for h in range_hours(a, b)}
    covered = {(d - T0) // DAY for a, b in days for d in range_days(a, b)}
    assert covered == touched


def range_hours(a: datetime, b: datetime) -> list[datetime]:
    return [a + HOUR * k for k in range((b - a) // HOUR)]


def range_days(a: datetime, b: datetime) -> list[datetime]:
    return [a + DAY * k for k in range((b - a) // DAY)]
