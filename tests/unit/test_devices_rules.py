"""The devices page's calibration rule, and charts with keys sharing one page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from erp_core.devices.service import calibration_level
from erp_core.monitoring.status import Level
from erp_core.web.chart import Chart, ChartBucket, render_chart

TODAY = date(2026, 6, 1)


@given(st.integers(min_value=-3650, max_value=3650))
def test_calibration_is_red_when_overdue_amber_within_30_days_else_green(days: int) -> None:
    level = calibration_level(TODAY + timedelta(days=days), today=TODAY)
    if days < 0:
        assert level is Level.ALARM
    elif days <= 30:
        assert level is Level.WARNING
    else:
        assert level is Level.OK


def test_no_calibration_date_is_neutral() -> None:
    assert calibration_level(None, today=TODAY) is Level.NEUTRAL


def test_two_charts_with_keys_have_distinct_ids() -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    buckets = [ChartBucket(start, start + timedelta(minutes=1), 4.0, 9.0, 6.0)]

    def svg(key: str) -> str:
        return render_chart(
            Chart(
                title="t",
                quantity="temperature",
                unit="°C",
                start=start,
                end=start + timedelta(hours=1),
                buckets=buckets,
                limits=(2.0, 8.0),
                key=key,
            )
        )

    one, two, plain = svg("a"), svg("b"), svg("")
    assert 'id="out-of-range-a"' in one
    assert "url(#out-of-range-a)" in one
    assert 'id="chart-title-b"' in two
    assert "out-of-range-a" not in two
    assert 'id="out-of-range"' in plain  # a page with one chart keeps the fixed ids
