"""``dashboards.macros`` expands as Grafana's PostgreSQL data source does (11.3).

The expected strings are Grafana's own test vectors (pkg/tsdb/grafana-postgresql-
datasource/macros_test.go) and the interval text of ``gtime.FormatInterval``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboards.generate import render
from dashboards.macros import MacroError, QueryContext, format_interval, interpolate
from dashboards.targets import sql_targets

FROM = datetime(2018, 4, 12, 18, 0, tzinfo=UTC)
CTX = QueryContext(FROM, FROM + timedelta(minutes=5), timedelta(minutes=20))
TS = QueryContext(FROM, FROM + timedelta(minutes=5), timedelta(minutes=20), timescaledb=True)


@pytest.mark.parametrize(
    ("sql", "expanded"),
    [
        ("select $__time(time_column)", 'select time_column AS "time"'),
        (
            "WHERE $__timeFilter(time_column)",
            "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
        ),
        ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
        ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
        (
            "SELECT $__timeGroup(time_column,'5m'), value",
            'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value',
        ),
        (
            "SELECT $__timeGroup(time_column,'5m') as time, value",
            "SELECT floor(extract(epoch from time_column)/300)*300 as time, value",
        ),
        (
            "SELECT $__timeGroup(time_column,'5m')",
            "SELECT floor(extract(epoch from time_column)/300)*300",
        ),
        (
            "$__timeGroupAlias(time_column , '5m')",
            'floor(extract(epoch from time_column)/300)*300 AS "time"',
        ),
        ("select $__unixEpochFilter(time)", "select time >= 1523556000 AND time <= 1523556300"),
        (
            "SELECT $__unixEpochGroup(time_column+time_adjustment,'5m')",
            "SELECT floor((time_column+time_adjustment)/300)*300",
        ),
        ("select $__unixEpochNanoFrom()", "select 1523556000000000000"),
        ("SELECT $__interval_ms, $__interval", "SELECT 1200000, 20m"),
        ("date_bin($__interval::interval, t, o)", "date_bin(20m::interval, t, o)"),
    ],
)
def test_grafana_vectors(sql: str, expanded: str) -> None:
    assert interpolate(sql, CTX) == expanded


@pytest.mark.parametrize(
    ("sql", "expanded"),
    [
        ("GROUP BY $__timeGroup(time_column,'5m')", "GROUP BY time_bucket('300.000s',time_column)"),
        (
            "GROUP BY $__timeGroup(time_column , '12d')",
            "GROUP BY time_bucket('1036800.000s',time_column)",
        ),
        (
            "GROUP BY $__timeGroup(time_column , '20ms')",
            "GROUP BY time_bucket('0.020s',time_column)",
        ),
    ],
)
def test_timescaledb_vectors(sql: str, expanded: str) -> None:
    assert interpolate(sql, TS) == expanded


def test_fractional_times_as_rfc3339_nano() -> None:
    ctx = QueryContext(
        datetime(1960, 2, 1, 7, 0, 0, 500_000, tzinfo=UTC),
        datetime(1980, 2, 3, 8, 0, 0, 500_000, tzinfo=UTC),
        timedelta(seconds=1),
    )
    expected = "c BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'"
    assert interpolate("$__timeFilter(c)", ctx) == expected


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(microseconds=10), "1ms"),
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=20), "20m"),
        (timedelta(minutes=90), "1h"),
        (timedelta(hours=1), "1h"),
        (timedelta(days=3), "3d"),
        (timedelta(days=400), "1y"),
    ],
)
def test_interval_text(interval: timedelta, text: str) -> None:
    assert format_interval(interval) == text


def test_template_variables_as_the_browser_substitutes_them() -> None:
    ctx = QueryContext(FROM, FROM, timedelta(minutes=1), {"lot": "4'2", "ids": ["a", "b'c"]})
    sql = "$lot ${lot} [[lot]] IN ($ids) $other"
    assert interpolate(sql, ctx) == "4''2 4''2 4''2 IN ('a','b''c') $other"


def test_unknown_macro_is_refused() -> None:
    with pytest.raises(MacroError, match="unknown macro"):
        interpolate("$__nope(x)", CTX)


@given(st.integers(min_value=1, max_value=10**12))
def test_interval_text_is_never_a_postgres_interval_cast_safe_number(ms: int) -> None:
    """Every text form ends in a unit letter: cast with ``::interval`` it is a syntax error."""
    text = format_interval(timedelta(milliseconds=ms))
    assert text[-1] in "smhdy"
    assert text[0].isdigit()


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)),
    st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(days=400)),
)
def test_every_dashboard_query_expands_completely(
    start: datetime, span: timedelta, interval: timedelta
) -> None:
    """Whatever the range and interval, no ``$`` is left for PostgreSQL to choke on."""
    ctx = QueryContext(start, start + span, interval, {"location": "3", "lot": "7"})
    for text in render().values():
        for target in sql_targets(json.loads(text)):
            assert "$" not in interpolate(target.sql, ctx), target.where


@given(st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(days=364)))
def test_time_group_interval_parses_what_format_interval_writes(interval: timedelta) -> None:
    """``$__timeGroup(c, $__interval)`` works: Grafana's parser reads the text form back
    as the interval rounded down to its largest whole unit."""
    text = format_interval(interval)
    expanded = interpolate(f"$__timeGroup(c, {text})", QueryContext(FROM, FROM, interval))
    seconds = float(expanded.split("/")[1].split(")")[0])
    assert 0 < seconds <= interval.total_seconds()
