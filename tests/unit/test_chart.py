"""The SVG chart draws the allowed band and the pre-alarm strips where the profile puts them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from erp_core.web.chart import Chart, ChartBucket, render_chart

START = datetime(2026, 6, 1, tzinfo=UTC)


def _chart(low: float, high: float, band: float | None) -> Chart:
    buckets = [
        ChartBucket(START + timedelta(minutes=i), START + timedelta(minutes=i + 1), 4, 6, 5)
        for i in range(10)
    ]
    return Chart(
        title="t",
        quantity="temperature",
        unit="°C",
        start=START,
        end=START + timedelta(minutes=10),
        buckets=buckets,
        limits=(low, high),
        warn=None if band is None else (low + band, high - band),
    )


def _rects(svg: str, css: str) -> list[tuple[float, float]]:
    found = re.findall(
        rf'<rect class="{css}" x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)"', svg
    )
    return [(float(y), float(y) + float(h)) for y, h in found]


def _axis(svg: str) -> list[tuple[float, float]]:
    """(value, y) of every value-axis tick."""
    ticks = re.findall(r'<text class="tick" x="[^"]+" y="([^"]+)" dy="0.35em"[^>]*>([-\d.]+)', svg)
    return [(float(v), float(y)) for y, v in ticks]


def _value(svg: str, y: float) -> float:
    (v0, y0), (v1, y1) = _axis(svg)[0], _axis(svg)[-1]
    return v0 + (y - y0) * (v1 - v0) / (y1 - y0)


@given(
    low=st.integers(-30, 20),
    width=st.integers(4, 40),
    band=st.sampled_from([None, 0.5, 1.0]),
)
def test_band_and_pre_alarm_strips_sit_at_the_profiles_values(
    low: int, width: int, band: float | None
) -> None:
    high = low + width
    svg = render_chart(_chart(low, high, band))
    ((top, bottom),) = _rects(svg, "limits")
    assert abs(_value(svg, bottom) - low) < 0.06
    assert abs(_value(svg, top) - high) < 0.06
    strips = sorted((_value(svg, b), _value(svg, t)) for t, b in _rects(svg, "pre-alarm"))
    if band is None:
        assert strips == []
    else:
        expected = [(low, low + band), (high - band, high)]
        assert all(
            abs(a - c) < 0.06 and abs(b - d) < 0.06
            for (a, b), (c, d) in zip(strips, expected, strict=True)
        )
