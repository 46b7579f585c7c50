"""Columns packed by PostgreSQL into numpy arrays give what psycopg's row-by-row fetch gives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.tor import from_micros
from erp_core.lot_history.columns import fetch_columns

QUERY = """
SELECT i, big, t, v
  FROM unnest(%(i)s::int4[], %(big)s::int8[], %(t)s::timestamptz[], %(v)s::float8[])
       AS x(i, big, t, v)
"""


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as c:
        yield c


rows_st = st.lists(
    st.tuples(
        st.integers(-(2**31), 2**31 - 1),
        st.integers(-(2**63), 2**63 - 1),
        st.datetimes(
            min_value=datetime(1900, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
            max_value=datetime(2200, 1, 1),  # noqa: DTZ001
            timezones=st.just(UTC),
        ),
        st.floats(allow_nan=False),
    ),
    max_size=200,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows_st)
def test_columns_equal_the_rows(conn: psycopg.Connection, rows: list[tuple]) -> None:
    params = {
        "i": [r[0] for r in rows],
        "big": [r[1] for r in rows],
        "t": [r[2] for r in rows],
        "v": [r[3] for r in rows],
    }
    expected = conn.execute(QUERY, params).fetchall()
    i, big, t, v = fetch_columns(conn, QUERY, params, ("int4", "int8", "timestamptz", "float8"))
    got = zip(
        i.tolist(), big.tolist(), [from_micros(x) for x in t.tolist()], v.tolist(), strict=True
    )
    assert sorted(got) == sorted(expected)  # in no particular order


def test_times_keep_their_microseconds(conn: psycopg.Connection) -> None:
    t0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    (t,) = fetch_columns(
        conn,
        "SELECT %(t)s::timestamptz + n * interval '1 microsecond' FROM generate_series(0, 2) n",
        {"t": t0},
        ("timestamptz",),
    )
    assert [from_micros(x) for x in t.tolist()] == [
        t0 + timedelta(microseconds=n) for n in range(3)
    ]


def test_no_rows_give_empty_columns(conn: psycopg.Connection) -> None:
    i, v = fetch_columns(conn, "SELECT 1::int4, 2.0::float8 WHERE false", {}, ("int4", "float8"))
    assert (i.size, v.size) == (0, 0)
    assert (i.dtype, v.dtype) == (np.int64, np.float64)


def test_a_null_is_refused(conn: psycopg.Connection) -> None:
    query = (
        "SELECT n::int4, CASE WHEN n = 2 THEN NULL ELSE n END::float8 FROM generate_series(1, 3) n"
    )
    with pytest.raises(ValueError, match="NULL"):
        fetch_columns(conn, query, {}, ("int4", "float8"))
