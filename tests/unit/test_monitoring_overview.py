"""The overview judges each sensor by its own alarm profile; never all OK while anything is open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from coldchain.profiles import AlarmProfile
from erp_core.monitoring.models import OpenMatters, SensorSummary
from erp_core.monitoring.overview import build_overview
from erp_core.monitoring.pages import RANGE_CHOICES_HOURS, default_window
from erp_core.monitoring.status import Level

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
FROZEN = AlarmProfile(name="frozen", low=-30.0, high=-15.0)
COLD = AlarmProfile(name="cold", low=2.0, high=8.0, pre_alarm_band=0.5)
NOTHING_OPEN = OpenMatters(alerts=0, lots_with_deviation=0)


def _sensor(sensor_id: int, value: float | None) -> SensorSummary:
    return SensorSummary(
        id=sensor_id,
        uid=f"T{sensor_id}",
        quantity="temperature",
        unit="Cel",
        gateway_id="gw",
        latest_time=NOW - timedelta(minutes=1),
        latest_value=value,
        readings_24h=10,
    )


def _overview(values: dict[int, float], profiles: dict[int, AlarmProfile], matters: OpenMatters):  # type: ignore[no-untyped-def]
    return build_overview(
        sensors=[_sensor(i, v) for i, v in values.items()],
        profiles=profiles,
        gateways=[],
        matters=matters,
        now=NOW,
        stale_after=timedelta(minutes=15),
    )


def test_a_freezer_at_minus_20_is_in_range_and_a_fridge_at_minus_20_is_too_cold() -> None:
    view = _overview({1: -20.0, 2: -20.0}, {1: FROZEN, 2: COLD}, NOTHING_OPEN)
    words = {row.sensor.id: (row.value.level, row.value.word) for row in view.sensors}
    assert words[1] == (Level.OK, "IN RANGE")
    assert words[2] == (Level.ALARM, "TOO COLD")
    assert view.level is Level.ALARM
    assert [(a.kind, a.sensor.sensor.id) for a in view.lines if a.sensor] == [("value", 2)]


def test_no_profile_is_not_judged_and_the_pre_alarm_strip_warns() -> None:
    view = _overview({1: 30.0, 2: 7.8}, {2: COLD}, NOTHING_OPEN)
    rows = {row.sensor.id: row.value for row in view.sensors}
    assert (rows[1].level, rows[1].word) == (Level.NEUTRAL, "NO ALARM PROFILE")
    assert (rows[2].level, rows[2].word) == (Level.WARNING, "NEAR LIMIT")


def test_all_ok_only_without_open_alerts_or_deviations() -> None:
    assert _overview({1: 5.0}, {1: COLD}, NOTHING_OPEN).level is Level.OK
    for matters in (
        OpenMatters(alerts=1, lots_with_deviation=0),
        OpenMatters(alerts=0, lots_with_deviation=2),
    ):
        view = _overview({1: 5.0}, {1: COLD}, matters)
        assert view.level is Level.ALARM
        assert {a.kind for a in view.lines} <= {"alerts", "deviations"}
        assert view.lines


@given(st.floats(min_value=-40, max_value=40), st.integers(0, 3), st.integers(0, 3))
def test_the_banner_is_ok_exactly_when_nothing_needs_attention(
    value: float, alerts: int, lots: int
) -> None:
    view = _overview({1: value}, {1: COLD}, OpenMatters(alerts=alerts, lots_with_deviation=lots))
    inside = COLD.low + COLD.pre_alarm_band <= value <= COLD.high - COLD.pre_alarm_band
    assert (view.level is Level.OK) == (inside and alerts == 0 and lots == 0)


def test_the_default_chart_window_fits_the_readings() -> None:
    assert default_window(None, now=NOW) == timedelta(hours=24)
    twelve = default_window(NOW - timedelta(minutes=12), now=NOW)
    assert timedelta(minutes=12) < twelve < timedelta(minutes=14)  # not six hours of one dot
    assert default_window(NOW - timedelta(minutes=1), now=NOW) == timedelta(minutes=10.5)
    assert default_window(NOW - timedelta(hours=20), now=NOW) == timedelta(hours=21)
    week = timedelta(hours=RANGE_CHOICES_HOURS[-1])
    assert default_window(NOW - timedelta(days=6, hours=23), now=NOW) == week


@given(st.integers(min_value=0, max_value=7 * 24 * 60))
def test_the_default_window_always_holds_the_readings(minutes: int) -> None:
    first = NOW - timedelta(minutes=minutes)
    window = default_window(first, now=NOW)
    assert NOW - window <= first
    assert window <= timedelta(days=7)
