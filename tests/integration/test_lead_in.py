"""A lot arriving between two readings finds the probe's last value: no gap at arrival.

Fridge probe reads once a minute; the lot arrives 30 s after a reading. Expectations are
worked out by hand below: the first 30 s of the lot's life carry the previous reading.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import psycopg
import pytest

from erp_core.audit.service import set_actor
from erp_core.lot_history import history
from erp_core.lots.models import LotIn
from erp_core.lots.service import create_lot
from erp_core.masterdata import service as master
from erp_core.masterdata.models import AssignmentIn, ItemIn, LocationIn
from erp_core.movements import service as movements
from erp_core.movements.models import MovementIn
from tests.integration.test_lot_history import add_readings, add_sensor, at

NOW = 11  # minutes: the lot lives from 0.5 to 11


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as c:
        set_actor(c, user="test-warehouse")
        yield c
        c.rollback()


def setup(
    conn: psycopg.Connection,
    *,
    assigned_at: float,
    first_value: float,
    without: tuple[float, float] | None = None,
) -> int:
    """A fridge whose probe reads every minute from -5 (but not in ``without``, inclusive);
    a lot received at minute 0.5."""
    site = master.create_location(conn, location=LocationIn(code="S", name="S", kind="site")).id
    fridge = master.create_location(
        conn, location=LocationIn(code="F", name="F", kind="fridge", parent_id=site)
    ).id
    probe = add_sensor(conn, "F-probe")
    master.assign_sensor(
        conn,
        assignment=AssignmentIn(sensor_id=probe, location_id=fridge, valid_from=at(assigned_at)),
    )
    values = dict.fromkeys(range(-5, NOW + 1), 5.0)
    values[0] = first_value  # the reading just before the lot arrives
    if without is not None:
        values = {m: v for m, v in values.items() if not without[0] <= m <= without[1]}
    add_readings(conn, probe, values)
    item = master.create_item(
        conn, item=ItemIn(gtin="04006381333931", name="x", range_low=2, range_high=8)
    )
    lot = create_lot(
        conn,
        lot=LotIn(item_id=item.id, lot_number="L1", expires_on=date(2030, 1, 1), quantity=1),
        now=at(0),
    ).id
    movements.record_movement(
        conn,
        movement=MovementIn(lot_id=lot, quantity=1, to_location_id=fridge, moved_at=at(0.5)),
        now=at(0.5),
    )
    return lot


def stats(conn: psycopg.Connection, lot: int, *, use_rollup: bool) -> history.HistoryStats:
    found = history.lot_history(
        conn, lot_id=lot, max_points=100, now=at(NOW), use_rollup=use_rollup
    )
    assert found.stats is not None
    return found.stats


def test_a_lot_arriving_between_readings_is_covered_from_arrival(conn) -> None:
    lot = setup(conn, assigned_at=-10, first_value=9.0)  # 9 °C read at 0, lot in at 0.5
    for use_rollup in (False, True):
        s = stats(conn, lot, use_rollup=use_rollup)
        assert s.coverage_share == 1.0
        assert s.readings == 10  # minutes 1..10 inside the life; the held 9 °C is not one
        assert s.max == 9.0  # the lot sat at 9 °C for its first 30 s
        assert s.tor_cumulative_seconds == 30.0
        # 30 s at 9 °C and 10 min at 5 °C, over 10.5 min
        assert s.mean == pytest.approx((30 * 9.0 + 600 * 5.0) / 630)


def test_a_probe_assigned_after_its_last_reading_brings_nothing(conn) -> None:
    """The 9 °C at minute 0 was read before the probe came to this fridge (0.2)."""
    lot = setup(conn, assigned_at=0.2, first_value=9.0)
    for use_rollup in (False, True):
        s = stats(conn, lot, use_rollup=use_rollup)
        assert s.coverage_share == pytest.approx(600 / 630)  # 0.5–1.0 not covered
        assert s.max == 5.0
        assert s.tor_cumulative_seconds == 0.0


def test_a_reading_older_than_max_hold_brings_nothing(conn) -> None:
    lot = setup(conn, assigned_at=-10, first_value=5.0, without=(-5, 0))
    conn.execute(
        "INSERT INTO telemetry.readings (time, sensor_id, value) SELECT %s, id, 9.0"
        " FROM telemetry.sensors WHERE uid = 'F-probe'",
        (at(0.5) - timedelta(minutes=16),),  # 16 min before arrival; max_hold is 15 min
    )
    s = stats(conn, lot, use_rollup=False)
    assert s.coverage_share == pytest.approx(600 / 630)
    assert s.max == 5.0


def test_the_chart_shows_the_value_the_lot_arrived_into(conn) -> None:
    """The held 9 °C is the lot's first value: its statistics count it, so its chart and
    ``erp.lot_readings`` (Grafana, reports) show it too, at the arrival (0.5)."""
    lot = setup(conn, assigned_at=-10, first_value=9.0)
    for use_rollup in (False, True):
        got = history.lot_history(
            conn, lot_id=lot, max_points=100, now=at(NOW), use_rollup=use_rollup
        )
        assert got.bucket_seconds == 10
        first = got.buckets[0]
        assert (first.start, first.count, first.min, first.max) == (at(0.5), 1, 9.0, 9.0)
        assert got.stats is not None
        assert max(b.max for b in got.buckets) == got.stats.max == 9.0
        assert sum(b.count for b in got.buckets) == got.stats.readings + 1
    rows = conn.execute(
        "SELECT time, value, held, read_at, held_until FROM erp.lot_readings(%s, %s, %s) "
        "WHERE held",
        (lot, at(0.5), at(NOW)),
    ).fetchall()
    assert rows == [(at(0.5), 9.0, True, at(0), at(1))]
