"""A lot's temperature history stitched from the right sensors over the right intervals.

Scenario (minutes after T0): received into fridge A at 10; A → dock at 100; dock →
truck at 130; truck → fridge B at 250; still in B at "now" = 300. Fridge A's logger
is swapped at 60 (sensor A1 out, A2 in). Every sensor reports once a minute from -30 to
320, so many readings lie outside the lot's intervals and must not appear; the truck is
silent from 170 to 199; the dock is warm (12 °C) from 100 to 119; the truck is at 9 °C
from 220 to 224. The expectations are built here minute by minute, without the code
under test: which sensor stands for the lot at each minute, and what it read.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from erp_core.audit.service import set_actor
from erp_core.lot_history import history, rollup_refresh
from erp_core.lots.models import LotIn
from erp_core.lots.service import create_lot
from erp_core.masterdata import service as master
from erp_core.masterdata.models import AssignmentIn, ItemIn, LocationIn
from erp_core.movements import service as movements
from erp_core.movements.models import MovementIn

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW_MIN = 300
A = 83_144.0 / 8.3144


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    # One transaction per test: audited tables need the acting user set in it.
    with psycopg.connect(db_url) as c:
        set_actor(c, user="test-warehouse")
        yield c
        c.rollback()


def add_sensor(conn: psycopg.Connection, uid: str, quantity: str = "temperature") -> int:
    row = conn.execute(
        "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
        " VALUES (%s, %s, 'Cel', 'gw-1') RETURNING id",
        (uid, quantity),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_readings(
    conn: psycopg.Connection,
    sensor_id: int,
    values: dict[int, float],
    *,
    received_ago: timedelta | None = None,
) -> None:
    """Readings at minutes from T0; ``received_ago``: stored that long ago (readings are
    immutable, so the time of receipt is set as they are written, not changed later)."""
    columns = "time, sensor_id, value" + (", received_at" if received_ago else "")
    received = () if received_ago is None else (datetime.now(UTC) - received_ago,)
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY telemetry.readings ({columns}) FROM STDIN") as copy,
    ):
        for m, v in values.items():
            copy.write_row((at(m), sensor_id, v, *received))


def add_episode(conn: psycopg.Connection, sensor: int, start: datetime, end: datetime) -> int:
    row = conn.execute(
        "INSERT INTO telemetry.excursion_episodes (sensor_id, kind, level, start_t, end_t, "
        "last_t, peak, area_c_min, readings, delay_reached, abs_breach) "
        "VALUES (%s, 'high', 'alarm', %s, %s, %s, 12, 80, 20, true, false) RETURNING id",
        (sensor, start, end, end),
    ).fetchone()
    assert row is not None
    return int(row[0])


def location(conn: psycopg.Connection, code: str, kind: str, parent: int | None) -> int:
    loc = master.create_location(
        conn, location=LocationIn(code=code, name=code, kind=kind, parent_id=parent)
    )
    return loc.id


@pytest.mark.parametrize("use_rollup", [True, False])
def test_history_stitched_from_the_right_sensors(  # noqa: C901
    conn: psycopg.Connection, use_rollup: bool
) -> None:
    site = location(conn, "SITE", "site", None)
    area = location(conn, "COLD", "area", site)
    fridge_a = location(conn, "FR-A", "fridge", area)
    dock = location(conn, "DOCK", "dock", area)
    truck = location(conn, "TRK-1", "truck", site)
    fridge_b = location(conn, "FR-B", "fridge", area)
    a1, a2, d, t, b = (add_sensor(conn, u) for u in ("a1", "a2", "dock", "truck", "b"))
    humidity = add_sensor(conn, "a1", quantity="humidity")
    day_before = at(-24 * 60)
    for sensor, loc, start, end in [
        (a1, fridge_a, day_before, at(60)),
        (a2, fridge_a, at(60), None),
        (humidity, fridge_a, day_before, None),
        (d, dock, day_before, None),
        (t, truck, day_before, None),
        (b, fridge_b, day_before, None),
    ]:
        master.assign_sensor(
            conn,
            assignment=AssignmentIn(
                sensor_id=sensor, location_id=loc, valid_from=start, valid_to=end
            ),
        )
    minutes = range(-30, 321)
    add_readings(conn, a1, {m: 4.0 if m < 60 else 20.0 for m in minutes})  # 20: elsewhere
    add_readings(conn, a2, {m: 30.0 if m < 60 else 5.0 for m in minutes})  # 30: not yet here
    add_readings(conn, humidity, dict.fromkeys(minutes, 55.0))
    add_readings(conn, d, {m: 12.0 if 100 <= m < 120 else 6.0 for m in minutes})
    add_readings(
        conn,
        t,
        {m: 9.0 if 220 <= m < 225 else 6.0 for m in minutes if not 170 <= m < 200},
    )
    add_readings(conn, b, dict.fromkeys(minutes, 3.0))
    # Excursion episodes: the dock's touches the lot; A1's (after its swap) does not.
    dock_episode = add_episode(conn, d, at(100), at(120))
    add_episode(conn, a1, at(200), at(210))

    item = master.create_item(
        conn,
        item=ItemIn(
            gtin="04006381333931",
            name="Bone graft",
            range_low=2.0,
            range_high=8.0,
            mkt_limit=7.0,
            tor_budget_minutes=60,
        ),
    )
    lot = create_lot(
        conn,
        lot=LotIn(item_id=item.id, lot_number="L1", expires_on=date(2027, 1, 1), quantity=100),
        now=at(0),
    )
    for src, dst, minute in [
        (None, fridge_a, 10),
        (fridge_a, dock, 100),
        (dock, truck, 130),
        (truck, fridge_b, 250),
    ]:
        movements.record_movement(
            conn,
            movement=MovementIn(
                lot_id=lot.id,
                quantity=100,
                from_location_id=src,
                to_location_id=dst,
                moved_at=at(minute),
            ),
        )

    # Independent expectation: the sensor standing for the lot at each minute.
    def sensor_at(m: int) -> int:
        if m < 60:
            return a1
        if m < 100:
            return a2
        if m < 130:
            return d
        if m < 250:
            return t
        return b

    value_of = {
        a1: lambda m: 4.0,
        a2: lambda m: 5.0,
        d: lambda m: 12.0 if 100 <= m < 120 else 6.0,
        t: lambda m: 9.0 if 220 <= m < 225 else 6.0,
        b: lambda m: 3.0,
    }
    expected_readings = [
        (at(m), sensor_at(m), value_of[sensor_at(m)](m))
        for m in range(10, NOW_MIN)
        if not (sensor_at(m) == t and 170 <= m < 200)
    ]

    got = history.lot_history(
        conn, lot_id=lot.id, max_points=1000, now=at(NOW_MIN), use_rollup=use_rollup
    )

    assert [(i.location_id, i.start, i.end) for i in got.intervals] == [
        (fridge_a, at(10), at(100)),
        (dock, at(100), at(130)),
        (truck, at(130), at(250)),
        (fridge_b, at(250), None),
    ]
    assert [(s.sensor_id, s.start, s.end) for s in got.segments] == [
        (a1, at(10), at(60)),
        (a2, at(60), at(100)),
        (d, at(100), at(130)),
        (t, at(130), at(250)),
        (b, at(250), at(NOW_MIN)),
    ]
    # 290 minutes in at most 1000 buckets: every bucket holds one reading.
    series = [(k.start, k.sensor_ids, k.min, k.max, k.count) for k in got.buckets]
    assert series == [(tm, [s], v, v, 1) for tm, s, v in expected_readings]

    # Statistics by minute: a reading holds until the next (at most 15 min), so the
    # truck's 169 reading covers 169..183 and 184..199 is a gap.
    covered: dict[int, float] = {}
    for m in range(10, NOW_MIN):
        s = sensor_at(m)
        if s == t and 170 <= m < 200:
            if m < 169 + 15:
                covered[m] = value_of[t](169)
            continue
        covered[m] = value_of[s](m)
    stats = got.stats
    assert stats is not None
    assert stats.readings == len(expected_readings)
    assert stats.min == 3.0
    assert stats.max == 12.0
    assert stats.mean == pytest.approx(sum(covered.values()) / len(covered))
    mkt = A / -math.log(sum(math.exp(-A / (v + 273.15)) for v in covered.values()) / len(covered))
    assert stats.mkt == pytest.approx(mkt - 273.15)
    assert stats.mkt_over_limit is (mkt - 273.15 > 7.0)
    out = [m for m, v in covered.items() if not 2.0 <= v <= 8.0]
    assert stats.tor_cumulative_seconds == 60 * len(out) == 60 * 25
    assert stats.tor_longest_seconds == 60 * 20
    assert [(s.start, s.end) for s in stats.out_of_range] == [
        (at(100), at(120)),
        (at(220), at(225)),
    ]
    assert stats.tor_remaining_seconds == 60 * (60 - 25)
    assert stats.life.start == at(10)
    assert stats.life.end == at(NOW_MIN)
    assert stats.coverage_share == pytest.approx(len(covered) / (NOW_MIN - 10))
    assert [(g.start, g.end) for g in stats.gaps] == [(at(184), at(200))]
    assert stats.short_gaps == 0
    assert [(e.id, e.sensor_id, e.start, e.end) for e in got.excursions] == [
        (dock_episode, d, at(100), at(120))
    ]
    assert got.notes == []


@pytest.mark.parametrize("use_rollup", [True, False])
def test_downsampled_buckets_keep_min_and_max(conn: psycopg.Connection, use_rollup: bool) -> None:
    site = location(conn, "S", "site", None)
    fridge = location(conn, "F", "fridge", site)
    sensor = add_sensor(conn, "f")
    master.assign_sensor(
        conn, assignment=AssignmentIn(sensor_id=sensor, location_id=fridge, valid_from=at(0))
    )
    values = {m: 5.0 + 3.0 * math.sin(m / 7.0) + (4.0 if m == 333 else 0.0) for m in range(1000)}
    add_readings(conn, sensor, values)
    item = master.create_item(
        conn, item=ItemIn(gtin="96385074", name="Vaccine", range_low=2, range_high=8)
    )
    lot = create_lot(
        conn,
        lot=LotIn(item_id=item.id, lot_number="X", expires_on=date(2027, 1, 1), quantity=5),
        now=at(0),
    )
    movements.record_movement(
        conn,
        movement=MovementIn(lot_id=lot.id, quantity=5, to_location_id=fridge, moved_at=at(0)),
    )
    got = history.lot_history(
        conn, lot_id=lot.id, max_points=12, now=at(1000), use_rollup=use_rollup
    )
    assert 1 <= len(got.buckets) <= 12
    assert sum(k.count for k in got.buckets) == 1000
    for k in got.buckets:
        inside = [v for m, v in values.items() if k.start <= at(m) < k.end]
        assert (k.min, k.max, k.count) == (min(inside), max(inside), len(inside))
    assert max(k.max for k in got.buckets) == max(values.values())  # the spike survives
    assert got.stats is not None
    assert got.stats.max == max(values.values())


def test_partial_moves_keep_the_lot_at_both_locations(conn: psycopg.Connection) -> None:
    site = location(conn, "S", "site", None)
    fridge = location(conn, "F", "fridge", site)
    dock = location(conn, "D", "dock", site)
    item = master.create_item(
        conn, item=ItemIn(gtin="96385074", name="Vaccine", range_low=2, range_high=8)
    )
    lot = create_lot(
        conn,
        lot=LotIn(item_id=item.id, lot_number="P", expires_on=date(2027, 1, 1), quantity=100),
        now=at(0),
    )
    for qty, src, dst, minute in [
        (100, None, fridge, 0),
        (40, fridge, dock, 10),
        (60, fridge, dock, 30),
        (100, dock, None, 50),
    ]:
        movements.record_movement(
            conn,
            movement=MovementIn(
                lot_id=lot.id,
                quantity=qty,
                from_location_id=src,
                to_location_id=dst,
                moved_at=at(minute),
            ),
        )
    got = movements.lot_intervals(conn, lot_id=lot.id)
    assert [(i.location_id, i.start, i.end) for i in got] == [
        (fridge, at(0), at(30)),
        (dock, at(10), at(50)),
    ]


def test_rollup_path_equals_reading_every_row(conn: psycopg.Connection) -> None:
    """Three days, two moves mid-hour, gaps, excursions, a late reading: both paths agree."""
    site = location(conn, "S", "site", None)
    room = location(conn, "R", "cold_room", site)
    fridge = location(conn, "F", "fridge", site)
    r1, r2, f1 = add_sensor(conn, "r1"), add_sensor(conn, "r2"), add_sensor(conn, "f1")
    for sensor, loc in [(r1, room), (r2, room), (f1, fridge)]:
        master.assign_sensor(
            conn,
            assignment=AssignmentIn(sensor_id=sensor, location_id=loc, valid_from=at(-60)),
        )
    rnd = random.Random(7)
    days = 3 * 24 * 60
    for sensor in (r1, r2, f1):
        values = {}
        for m in range(-30, days, rnd.choice([1, 2, 5])):
            if rnd.random() < 0.002:  # a rare outage of 20–90 minutes
                continue
            values[m] = 10.0 if m % 1500 < 7 else 5 + 2.5 * math.sin(m / 300)
        for hole in (rnd.randrange(days), rnd.randrange(days)):
            for m in range(hole, hole + rnd.randrange(20, 90)):
                values.pop(m, None)
        add_readings(conn, sensor, values)
    item = master.create_item(
        conn,
        item=ItemIn(
            gtin="96385074", name="Vaccine", range_low=2, range_high=8, tor_budget_minutes=90
        ),
    )
    lot = create_lot(
        conn,
        lot=LotIn(item_id=item.id, lot_number="R", expires_on=date(2027, 1, 1), quantity=9),
        now=at(0),
    )
    for src, dst, minute in [(None, room, 17), (room, fridge, 1333), (fridge, room, 2999)]:
        movements.record_movement(
            conn,
            movement=MovementIn(
                lot_id=lot.id,
                quantity=9,
                from_location_id=src,
                to_location_id=dst,
                moved_at=at(minute),
            ),
        )

    def both(now: datetime) -> tuple[history.LotHistory, history.LotHistory]:
        kwargs = {"lot_id": lot.id, "max_points": 30, "now": now}
        return (
            history.lot_history(conn, **kwargs, use_rollup=True),
            history.lot_history(conn, **kwargs, use_rollup=False),
        )

    fast, slow = both(at(days - 10))
    assert fast.bucket_seconds is not None
    assert fast.bucket_seconds % 3600 == 0  # the rollup builds these buckets
    assert_same(fast, slow)
    assert fast.stats is not None
    assert fast.stats.tor_cumulative_seconds > 0
    assert fast.stats.gaps  # the outages show

    # A late reading (received now) in an old hour is seen once the rollup refreshes.
    conn.commit()
    set_actor(conn, user="test-warehouse")
    add_readings(conn, f1, {2000 + 0.5: 30.0})  # the lot is in the fridge then
    conn.commit()
    set_actor(conn, user="test-warehouse")
    fast2, slow2 = both(at(days - 10))
    assert_same(fast2, slow2)
    assert fast2.stats is not None
    assert fast2.stats.max == 30.0
    assert fast2.stats.readings == fast.stats.readings + 1


def assert_same(fast: history.LotHistory, slow: history.LotHistory) -> None:
    assert [(b.start, b.end, b.count, b.min, b.max, b.sensor_ids) for b in fast.buckets] == [
        (b.start, b.end, b.count, b.min, b.max, b.sensor_ids) for b in slow.buckets
    ]
    for a, b in zip(fast.buckets, slow.buckets, strict=True):
        assert a.mean == pytest.approx(b.mean)
    f, s = fast.stats, slow.stats
    assert f is not None
    assert s is not None
    for name in ("mean", "mkt", "coverage_share", "covered_seconds"):
        assert getattr(f, name) == pytest.approx(getattr(s, name), rel=1e-9), name
    for name in (
        "readings",
        "min",
        "max",
        "tor_longest_seconds",
        "tor_cumulative_seconds",
        "out_of_range",
        "gaps",
        "short_gaps",
        "life",
    ):
        assert getattr(f, name) == getattr(s, name), name


DAY_MIN = 24 * 60


def day_rows(values: dict[float, float]) -> dict[datetime, tuple]:
    """Per UTC day of one sensor's readings: n, min, max, first, last, next reading, max step."""
    times = sorted(values)
    rows: dict[datetime, list] = {}
    for k, m in enumerate(times):
        nxt = times[k + 1] if k + 1 < len(times) else None
        day = T0 + timedelta(days=m // DAY_MIN)
        step = None if nxt is None else (nxt - m) * 60.0
        row = rows.setdefault(day, [0, math.inf, -math.inf, at(m), None, None, 0.0])
        row[0] += 1
        row[1] = min(row[1], values[m])
        row[2] = max(row[2], values[m])
        row[4] = at(m)
        row[5] = None if nxt is None else at(nxt)
        row[6] = None if step is None or row[6] is None else max(row[6], step)
    return {day: tuple(row) for day, row in rows.items()}


def stored_day_rows(conn: psycopg.Connection, sensor: int) -> dict[datetime, tuple]:
    return {
        day: (n, lo, hi, first, last, nxt, step)
        for day, n, lo, hi, first, last, nxt, step in conn.execute(
            "SELECT day, n, vmin, vmax, first_t, last_t, next_t, max_step "
            "FROM erp.reading_days WHERE sensor_id = %s ORDER BY day",
            (sensor,),
        ).fetchall()
    }


def watermarks(conn: psycopg.Connection) -> dict[int, datetime]:
    rows = conn.execute("SELECT sensor_id, received_until FROM erp.reading_hours_state")
    return dict(rows.fetchall())


def assert_days(conn: psycopg.Connection, sensor: int, values: dict[float, float]) -> None:
    expected = day_rows(values)
    stored = stored_day_rows(conn, sensor)
    assert stored.keys() == expected.keys()
    for day, row in expected.items():
        n, lo, hi, first, last, nxt, step = stored[day]
        assert (n, lo, hi, first, last, nxt) == row[:6], (sensor, day)
        assert step == pytest.approx(row[6]), (sensor, day)


def test_daily_rollup_equals_reading_every_row(conn: psycopg.Connection) -> None:
    """Ten days, so whole days are clean: the daily level, its refresh and both paths agree.

    Two probes in a cold room (one reading a minute and every two minutes) and a fridge
    logger (every five); excursions on some days, outages longer than max_hold on others;
    the lot moves mid-day room → fridge → room. Compared at bucket widths of whole days
    (the daily level), hours (the hourly level) and minutes (raw buckets).
    """
    site = location(conn, "S", "site", None)
    room = location(conn, "R", "cold_room", site)
    fridge = location(conn, "F", "fridge", site)
    r1, r2, f1 = add_sensor(conn, "r1"), add_sensor(conn, "r2"), add_sensor(conn, "f1")
    for sensor, loc in [(r1, room), (r2, room), (f1, fridge)]:
        master.assign_sensor(
            conn,
            assignment=AssignmentIn(sensor_id=sensor, location_id=loc, valid_from=at(-3 * DAY_MIN)),
        )
    days = 10
    rnd = random.Random(11)
    readings: dict[int, dict[float, float]] = {}
    for sensor, step, warm_days, outages in [
        (r1, 1, (2.3, 6.1), ()),
        (r2, 2, (), (3.2, 8.7)),
        (f1, 5, (4.5,), (4.9,)),
    ]:
        values: dict[float, float] = {}
        for m in range(-DAY_MIN, days * DAY_MIN, step):
            if any(0 <= m - d * DAY_MIN < 45 for d in outages):
                continue
            warm = any(0 <= m - d * DAY_MIN < 7 for d in warm_days)
            values[m] = 10.0 if warm else 5 + 2.5 * math.sin(m / 300) + rnd.random() * 0.1
        readings[sensor] = values
        # Stored an hour ago: older than the refresh's margin for open ingest transactions.
        add_readings(conn, sensor, values, received_ago=timedelta(hours=1))
    item = master.create_item(
        conn,
        item=ItemIn(
            gtin="96385074", name="Vaccine", range_low=2, range_high=8, tor_budget_minutes=90
        ),
    )
    lot = create_lot(
        conn,
        lot=LotIn(item_id=item.id, lot_number="D", expires_on=date(2027, 1, 1), quantity=9),
        now=at(0),
    )
    for src, dst, minute in [
        (None, room, 17),
        (room, fridge, 4 * DAY_MIN + 333),
        (fridge, room, 5 * DAY_MIN + 1000),
    ]:
        movements.record_movement(
            conn,
            movement=MovementIn(
                lot_id=lot.id,
                quantity=9,
                from_location_id=src,
                to_location_id=dst,
                moved_at=at(minute),
            ),
        )
    now = at(days * DAY_MIN - 10)

    def compare(max_points: int) -> history.LotHistory:
        kwargs = {"lot_id": lot.id, "max_points": max_points, "now": now}
        fast = history.lot_history(conn, **kwargs, use_rollup=True)
        slow = history.lot_history(conn, **kwargs, use_rollup=False)
        assert_same(fast, slow)
        return fast

    widths = {}
    for max_points in (3, 12, 30, 1000):
        got = compare(max_points)
        assert got.bucket_seconds is not None
        widths[max_points] = got.bucket_seconds
    assert widths[3] % 86400 == 0  # several days a bucket
    assert widths[12] == 86400
    assert widths[30] % 3600 == 0
    assert widths[30] % 86400 != 0
    assert widths[1000] % 3600 != 0
    stats = compare(12).stats
    assert stats is not None
    assert stats.tor_cumulative_seconds > 0
    assert stats.gaps  # the fridge's outage: it is alone there

    # The daily level holds what the readings say, day by day (computed here).
    for sensor, values in readings.items():
        assert_days(conn, sensor, values)

    # A later read that finds nothing new writes nothing: the watermarks stay.
    conn.commit()
    set_actor(conn, user="test-warehouse")
    marks = watermarks(conn)
    assert marks.keys() == {r1, r2, f1}
    compare(12)
    assert watermarks(conn) == marks

    # Late readings, received now, into days that were clean: one in range, one warm.
    conn.commit()
    set_actor(conn, user="test-warehouse")
    late = {7 * DAY_MIN + 600.5: 6.0, 8 * DAY_MIN + 100.25: 30.0}
    add_readings(conn, r1, late)
    readings[r1].update(late)
    conn.commit()
    set_actor(conn, user="test-warehouse")
    after = compare(12)
    moved = watermarks(conn)
    assert moved[r1] > marks[r1]  # r1's hours were recomputed
    assert (moved[r2], moved[f1]) == (marks[r2], marks[f1])
    assert after.stats is not None
    assert after.stats.max == 30.0
    assert after.stats.readings == stats.readings + 2
    assert after.stats.tor_cumulative_seconds > stats.tor_cumulative_seconds
    for max_points in (3, 30, 1000):
        compare(max_points)
    assert_days(conn, r1, readings[r1])


def hour_rows(conn: psycopg.Connection, sensor: int) -> list[tuple]:
    return conn.execute(
        "SELECT hour, n, first_t, last_t, next_t, max_step, w_sum, wv_sum "
        "FROM erp.reading_hours WHERE sensor_id = %s ORDER BY hour",
        (sensor,),
    ).fetchall()


def test_late_readings_in_two_holes_refresh_the_hours_before_each(
    conn: psycopg.Connection,
) -> None:
    """Re-sent readings fill two holes, each the first reading of its hour: the hour of
    the reading before *each* of them changes (its step ends earlier), not only the hour
    before the earliest one. The stored rollup must equal one computed from scratch."""
    sensor = add_sensor(conn, "holes")
    add_readings(
        conn,
        sensor,
        {m: 5.0 + m / 100 for m in range(0, 300, 10) if m not in (60, 180)},
        received_ago=timedelta(hours=1),
    )
    rollup_refresh.refresh(conn, sensor_ids=[sensor])
    conn.commit()
    set_actor(conn, user="test-warehouse")
    add_readings(conn, sensor, {60: 4.0, 180: 9.0})  # received now, after the watermark
    conn.commit()
    set_actor(conn, user="test-warehouse")
    rollup_refresh.refresh(conn, sensor_ids=[sensor])
    refreshed = hour_rows(conn, sensor)
    conn.execute("SELECT erp.refresh_reading_hours(%s, %s, %s)", (sensor, at(-60), at(360)))
    assert refreshed == hour_rows(conn, sensor)
    assert refreshed[2][4] == at(180)  # hour 2's last reading (170) is followed by 180
