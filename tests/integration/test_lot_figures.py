"""The release figures erp-jobs keeps per lot (``erp.lot_figures``) follow their inputs.

A row is recomputed when a late reading of the lot's life arrives, when a movement of the
lot is recorded, when its item's limits change and once it is older than ``max_age``;
a lot still held is recomputed at every pass, and a finished lot nobody touched is left
alone. The rows equal the release evidence of the same instant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from coldtrace.seed import TRANSIT_LOT, DemoLots, seed_demo
from erp_core.audit.service import set_actor
from erp_core.jobs import refresh_figures
from erp_core.lot_history import figures
from erp_core.movements import service as movements
from erp_core.movements.models import MovementIn
from erp_core.release.service import gather_evidence
from tests.integration.access_helpers import session_keyring

GATEWAY = "gw-figures"
NO_MARGIN = timedelta(0)  # every change here is committed before the next look


def _setup(db_url: str, now: datetime) -> tuple[DemoLots, int]:
    """Three hours of readings; the clean lot in fridge 1 from +10 to +100 min, the
    excursion lot still in fridge 3; readings received 20 s after they were taken."""
    start = now - timedelta(hours=3)
    with psycopg.connect(db_url) as conn:
        lots = seed_demo(conn, now=start, gateway=GATEWAY, keyring=session_keyring())
        sensors = [
            int(r[0])
            for r in conn.execute(
                "SELECT id FROM telemetry.sensors WHERE gateway_id = %s ORDER BY uid", (GATEWAY,)
            ).fetchall()
        ]
        with conn.cursor().copy(
            "COPY telemetry.readings (time, sensor_id, value, received_at) FROM STDIN"
        ) as copy:
            for sensor in sensors:
                for m in range(1, 180):
                    t = start + timedelta(minutes=m)
                    copy.write_row((t, sensor, 5.0 + (m % 7) / 10, t + timedelta(seconds=20)))
        set_actor(conn, user="test:figures", reason="figures test data")
        for lot, fridge in ((lots.clean, lots.fridges[0]), (lots.excursion, lots.fridges[2])):
            _move(conn, lot, to=fridge, at=start + timedelta(minutes=10), now=now)
        _move(conn, lots.clean, frm=lots.fridges[0], at=start + timedelta(minutes=100), now=now)
    return lots, sensors[0]


def _move(
    conn: psycopg.Connection[Any],
    lot: int,
    *,
    at: datetime,
    now: datetime,
    to: int | None = None,
    frm: int | None = None,
) -> None:
    movement = MovementIn(
        lot_id=lot, quantity=100, from_location_id=frm, to_location_id=to, moved_at=at
    )
    movements.record_movement(conn, movement=movement, now=now)


def _row(db_url: str, lot: int) -> dict[str, Any]:
    with psycopg.connect(db_url) as conn:
        cur = conn.execute("SELECT * FROM erp.lot_figures WHERE lot_id = %s", (lot,))
        row = cur.fetchone()
        assert row is not None, f"lot {lot} has no figures"
        return dict(zip([d.name for d in cur.description or []], row, strict=True))


def _stale(db_url: str, now: datetime, **kw: Any) -> list[int]:
    with psycopg.connect(db_url) as conn:
        return figures.stale_lots(conn, now=now, margin=NO_MARGIN, **kw)


def _held(db_url: str, lots: DemoLots) -> list[int]:
    """The lots still held at the set-up's end: recomputed at every pass.

    The excursion lot stays in its fridge; the seed's fourth lot is on a truck.
    """
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT id FROM erp.lots WHERE lot_number = %s", (TRANSIT_LOT,)
        ).fetchone()
    assert row is not None
    return sorted([lots.excursion, int(row[0])])


def _refresh(db_url: str, now: datetime) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return refresh_figures(conn, now=lambda: now)


def test_figures_follow_late_readings_movements_and_limits(db_url: str) -> None:
    t0 = datetime.now(UTC)
    lots, probe = _setup(db_url, t0)
    t1 = datetime.now(UTC)  # after the set-up's movements were recorded
    held = _held(db_url, lots)
    assert _refresh(db_url, t1) == 3  # the shipped lot never moved: no figures, no row
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT lot_id FROM erp.lot_figures ORDER BY lot_id").fetchall() == [
            (lot,) for lot in sorted([lots.clean, *held])
        ]
    clean = _row(db_url, lots.clean)
    assert not clean["life_open"]
    assert clean["readings"] == 90  # one a minute from +10 to +100 min
    assert clean["max"] == pytest.approx(5.6)
    assert _row(db_url, lots.excursion)["life_open"]
    # nothing changed: only the lot still held is due (its life grows with the clock)
    assert _stale(db_url, t1) == held

    # a late upload: a reading inside the clean lot's life, received now
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value) VALUES (%s, %s, 12.5)",
            (t0 - timedelta(hours=3) + timedelta(minutes=50, seconds=30), probe),
        )
    assert lots.clean in _stale(db_url, t1)
    t2 = datetime.now(UTC)
    _refresh(db_url, t2)
    clean = _row(db_url, lots.clean)
    assert (clean["readings"], clean["max"], clean["computed_at"]) == (91, 12.5, t2)
    assert clean["tor_minutes"] > 0
    assert _stale(db_url, t2) == held
    # a reading after the lot left changes nothing of it
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value) VALUES (%s, %s, 30)",
            (t0 - timedelta(minutes=30, seconds=10), probe),
        )
    assert _stale(db_url, t2) == held

    # the item's MKT limit changes
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test:figures", reason="new limit")
        conn.execute(
            "UPDATE erp.items SET mkt_limit = 7.5 WHERE id = (SELECT item_id FROM erp.lots"
            " WHERE id = %s)",
            (lots.clean,),
        )
    assert lots.clean in _stale(db_url, t2)
    t3 = datetime.now(UTC)
    _refresh(db_url, t3)
    assert _row(db_url, lots.clean)["mkt_limit"] == 7.5
    assert _stale(db_url, t3) == held

    # a movement: the lot comes back to fridge 1 for the last 20 minutes
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test:figures", reason="returned")
        _move(conn, lots.clean, to=lots.fridges[0], at=t0 - timedelta(minutes=20), now=t3)
    assert lots.clean in _stale(db_url, t3)
    t4 = datetime.now(UTC)
    _refresh(db_url, t4)
    clean = _row(db_url, lots.clean)
    assert clean["life_open"]
    assert clean["life_end"] == t4
    # and the row is what the release decision sees at that instant
    with psycopg.connect(db_url) as conn:
        evidence = gather_evidence(conn, lot_id=lots.clean, now=t4)
    assert clean["mkt"] == pytest.approx(evidence.mkt, rel=1e-12)
    assert clean["tor_minutes"] == pytest.approx(evidence.tor_cumulative_min, rel=1e-12)
    assert clean["coverage"] == pytest.approx(evidence.coverage, rel=1e-12)
    assert clean["mkt_limit"] == evidence.mkt_limit == 7.5


def test_every_row_is_recomputed_once_older_than_max_age(db_url: str) -> None:
    t0 = datetime.now(UTC)
    lots, _ = _setup(db_url, t0)
    held = _held(db_url, lots)
    t1 = datetime.now(UTC)
    _refresh(db_url, t1)
    assert _stale(db_url, t1 + timedelta(hours=1)) == held
    day_later = t1 + timedelta(days=1, minutes=1)
    assert _stale(db_url, day_later) == sorted([lots.clean, *held])
    assert _stale(db_url, day_later, max_age=timedelta(days=2)) == held
