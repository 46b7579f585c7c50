"""The site time zone: validated by name, used by every time the pages, charts and reports print."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from erp_core.settings import ApiSettings
from erp_core.web.chart import Chart, ChartBucket, render_chart
from erp_core.web.format import (
    SITE_TIMEZONE_ENV,
    SiteZoneError,
    format_moment,
    format_stamp,
    format_time,
    parse_zone,
    site_zone,
    utc_offset,
    zone_from_env,
    zone_name,
)

SHANGHAI = parse_zone("Asia/Shanghai")
T = datetime(2026, 6, 1, 20, 30, tzinfo=UTC)  # 04:30 the next day in Shanghai


def test_an_unknown_zone_is_refused_naming_the_variable() -> None:
    with pytest.raises(SiteZoneError, match=SITE_TIMEZONE_ENV):
        parse_zone("Mars/Olympus_Mons")
    with pytest.raises(SiteZoneError, match="COLDTRACE_SITE_TIMEZONE"):
        zone_from_env({SITE_TIMEZONE_ENV: "UTC+8"})
    assert str(zone_from_env({})) == "UTC"  # not set: UTC
    assert str(zone_from_env({SITE_TIMEZONE_ENV: " Asia/Shanghai "})) == "Asia/Shanghai"


def test_api_settings_refuse_a_bad_zone_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SITE_TIMEZONE_ENV, "Asia/Shang_hai")
    with pytest.raises(ValidationError) as caught:
        ApiSettings(jwt_secret=SecretStr("x" * 40))
    assert "COLDTRACE_SITE_TIMEZONE" in str(caught.value)
    monkeypatch.setenv(SITE_TIMEZONE_ENV, "Europe/Berlin")
    assert ApiSettings(jwt_secret=SecretStr("x" * 40)).site_timezone == "Europe/Berlin"


def test_times_are_written_in_the_current_zone_and_say_which() -> None:
    assert format_time(T) == "2026-06-01 20:30"
    assert zone_name() == "UTC"
    with site_zone(SHANGHAI):
        assert format_time(T) == "2026-06-02 04:30"
        assert format_moment(T, locale="zh_CN") == "2026年6月2日 04:30"
        assert format_moment(T, locale="en") == "Jun 2, 2026 04:30"
        assert format_stamp(T) == "2026-06-02 04:30 UTC+8"
        assert zone_name(at=T) == "Asia/Shanghai (UTC+8)"
    assert format_time(T) == "2026-06-01 20:30"  # back to UTC after the block
    assert utc_offset(parse_zone("Asia/Kolkata"), at=T) == "UTC+5:30"
    assert utc_offset(parse_zone("America/St_Johns"), at=T) == "UTC-2:30"  # summer time


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))  # noqa: DTZ001 - naive bounds, as hypothesis wants
def test_the_shown_wall_clock_is_the_instant_plus_the_offset(naive: datetime) -> None:
    t = naive.replace(tzinfo=UTC)
    with site_zone(parse_zone("America/New_York")):
        shown = datetime.strptime(format_time(t), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        sign, hours = re.fullmatch(r"UTC([+-])(\d+)", utc_offset(at=t)).groups()  # type: ignore[union-attr]
    offset = timedelta(hours=int(hours)) * (1 if sign == "+" else -1)
    assert shown == (t + offset).replace(second=0, microsecond=0)


def _ticks(zone_name_: str) -> list[str]:
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    buckets = [
        ChartBucket(start + timedelta(hours=i), start + timedelta(hours=i + 1), 4, 6, 5)
        for i in range(6)
    ]
    chart = Chart(
        title="t",
        quantity="temperature",
        unit="°C",
        start=start,
        end=start + timedelta(hours=6),
        buckets=buckets,
        zone=parse_zone(zone_name_),
    )
    svg = str(render_chart(chart))
    return [
        *re.findall(r'<text class="tick" [^>]*text-anchor="middle">([^<]+)</text>', svg),
        *re.findall(r'<text class="axis-title" [^>]*>(Time[^<]*)</text>', svg),
    ]


def test_the_chart_time_axis_is_in_the_site_zone() -> None:
    utc = _ticks("UTC")
    shanghai = _ticks("Asia/Shanghai")
    assert utc[0] == "00:00"
    assert "Time (UTC)" in utc
    assert shanghai[0] == "08:00"
    assert "Time (Asia/Shanghai (UTC+8))" in shanghai
    kolkata = _ticks("Asia/Kolkata")
    # the axis starts at 05:30 there: ticks on the local wall clock's round hours
    assert kolkata[:2] == ["06:00", "07:00"]
    assert "Time (Asia/Kolkata (UTC+5:30))" in kolkata


def test_the_chart_dates_are_in_the_pages_language() -> None:
    start = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)  # 04:00 on 2 June in Shanghai
    buckets = [ChartBucket(start, start + timedelta(hours=1), 4, 6, 5)]
    for locale, day in (("en", "Jun 2"), ("zh_CN", "6月2日")):
        chart = Chart(
            title="t",
            quantity="温度",
            unit="°C",
            start=start,
            end=start + timedelta(hours=2),
            buckets=buckets,
            zone=SHANGHAI,
            locale=locale,
        )
        dates = re.findall(
            r'<text class="tick date" [^>]*>([^<]+)</text>', str(render_chart(chart))
        )
        assert dates == [day]
