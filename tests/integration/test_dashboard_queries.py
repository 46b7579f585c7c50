"""Every query of the generated dashboards, expanded as Grafana expands it, on real data.

The database is filled by the demo seed (``coldtrace.seed``) and three simulated fridges
(``firmware_sim.thermal``; fridge 3's compressor fails), with lots moved into them, a
shipment under way with a logger, door, power and battery sensors, alerts, an
excursion, a dead letter and a failed notification. Each SQL text of each dashboard
(panels, annotations, variables) goes through ``dashboards.macros.interpolate`` for
several ranges and intervals — ``$__interval`` in its text forms ``500ms``, ``20m``,
``1h``, ``1d`` — and runs **as the read-only role Grafana logs in as**; it must return
the columns its panel reads and at least one row. A migration that breaks a panel's SQL
fails here. The batch figures are the rows ``coldtrace erp-jobs`` writes
(``erp_core.jobs.refresh_figures``), written here by that function.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from coldtrace.seed import seed_demo
from dashboards import queries
from dashboards.generate import render
from dashboards.macros import QueryContext, interpolate
from dashboards.targets import SqlTarget, sql_targets
from erp_core.app import create_app
from erp_core.audit.service import set_actor
from erp_core.auth import service as auth_service
from erp_core.auth.models import Role
from erp_core.jobs import refresh_figures
from erp_core.lot_history import rollup_refresh
from erp_core.movements import service as movements
from erp_core.movements.models import MovementIn
from erp_core.release.service import gather_evidence
from erp_core.settings import ApiSettings
from erp_core.shipments import service as shipments
from erp_core.shipments.models import ShipmentIn, ShipmentLotIn
from firmware_sim.thermal import CompressorFailure, FridgeModel, FridgeParams
from tests.integration.access_helpers import session_keyring
from tests.integration.api_client import Api

GATEWAY = "gw-dash"
OLD_DASHBOARD = Path(__file__).parent / "data" / "old_cold_chain.json"
INTERVALS = (
    timedelta(milliseconds=500),
    timedelta(minutes=20),
    timedelta(hours=1),
    timedelta(days=1),
)
GAP = (timedelta(minutes=100), timedelta(minutes=125))
BY_SQL = {q.sql: q for q in vars(queries).values() if isinstance(q, queries.Query)}


def _sensor(conn: psycopg.Connection[Any], uid: str, quantity: str, unit: str) -> int:
    row = conn.execute(
        "INSERT INTO telemetry.sensors (gateway_id, uid, quantity, unit) VALUES (%s, %s, %s, %s)"
        " RETURNING id",
        (GATEWAY, uid, quantity, unit),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _readings(
    conn: psycopg.Connection[Any], sensor: int, rows: list[tuple[datetime, float]]
) -> None:
    with conn.cursor().copy("COPY telemetry.readings (time, sensor_id, value) FROM STDIN") as copy:
        for t, v in rows:
            copy.write_row((t, sensor, v))


def _fill(db_url: str, owner_db_url: str, now: datetime) -> dict[str, str]:
    """The demo plant with three hours of simulated readings; the dashboards' variables."""
    start = now - timedelta(hours=3)
    with psycopg.connect(db_url) as conn:
        state = {
            "v": 1,
            "gateway": GATEWAY,
            "status": "online",
            "t": int(now.timestamp() * 1000) - 1500,
            "outbox_depth": 4,
            "sources": [{"name": "relay-1", "ok": False, "error": "coil write timed out"}],
        }
        conn.execute(
            "INSERT INTO telemetry.gateways (id, site, status, state, last_seen)"
            " VALUES (%s, 'plant-demo', 'online', %s, %s)",
            (GATEWAY, json.dumps(state), now),
        )
        lots = seed_demo(conn, now=start, gateway=GATEWAY, keyring=session_keyring())
        fridge_sensors = [
            int(r[0])
            for r in conn.execute(
                "SELECT id FROM telemetry.sensors WHERE gateway_id = %s ORDER BY uid", (GATEWAY,)
            ).fetchall()
        ]
        for i, sensor in enumerate(fridge_sensors):
            failure = CompressorFailure(at_s=3600) if i == 2 else None
            model = FridgeModel(FridgeParams(), seed=i, failure=failure)
            rows = [
                (start + timedelta(minutes=m), model.step(60).measured_temp_c)
                for m in range(1, 180)
            ]
            if i == 2:  # fridge 3's probe is silent for 25 minutes: a gap in its lot's record
                rows = [r for r in rows if not start + GAP[0] <= r[0] < start + GAP[1]]
            _readings(conn, sensor, rows)
        set_actor(conn, user="test:dashboards", reason="dashboard test data")
        # fridge 3's second probe (the profile asks for two): 30 s after the first, silent
        # from 10 minutes earlier, so the lot's coverage is the union of both probes' spans
        second = _sensor(conn, "FRIDGE-3B", "temperature", "Cel")
        conn.execute(
            "INSERT INTO erp.sensor_assignments (sensor_id, location_id, valid_from)"
            " VALUES (%s, %s, %s)",
            (second, lots.fridges[2], start),
        )
        _readings(
            conn,
            second,
            [
                (t + timedelta(seconds=30), v + 0.1)
                for t, v in rows
                if not start + GAP[0] - timedelta(minutes=10) <= t < start + GAP[1]
            ],
        )
        moved_at = start + timedelta(minutes=10)
        for lot, fridge in zip(
            (lots.clean, lots.shipped, lots.excursion), lots.fridges, strict=True
        ):
            movements.record_movement(
                conn,
                movement=MovementIn(
                    lot_id=lot, quantity=100, to_location_id=fridge, moved_at=moved_at
                ),
                now=now,
            )
        logger = _sensor(conn, "LOGGER-1", "temperature", "Cel")
        _readings(conn, logger, [(now - timedelta(minutes=m), 5.5) for m in range(1, 70)])
        shipment = shipments.create_shipment(
            conn,
            shipment=ShipmentIn(
                reference="SHP-1",
                truck_location_id=lots.truck,
                origin_location_id=lots.fridges[1],
                destination_location_id=lots.dock,
                lots=[ShipmentLotIn(lot_id=lots.shipped, quantity=100)],
                logger_sensor_ids=[logger],
            ),
        )
        shipments.depart(conn, shipment_id=shipment.id, time=now - timedelta(hours=1), now=now)
        door = _sensor(conn, "DOOR-F1", "door", "1")
        power = _sensor(conn, "POWER-F1", "power", "1")
        battery = _sensor(conn, "BATT-F1", "battery", "%")
        for s in (door, power, battery):
            conn.execute(
                "INSERT INTO erp.sensor_assignments (sensor_id, location_id, valid_from)"
                " VALUES (%s, %s, %s)",
                (s, lots.fridges[0], start),
            )
        minutes = (30, 31, 32)
        _readings(conn, door, [(start + timedelta(minutes=m), float(m == 31)) for m in minutes])
        _readings(conn, power, [(start + timedelta(minutes=m), float(m != 32)) for m in minutes])
        _readings(conn, battery, [(now - timedelta(minutes=5), 9.0)])
        conn.execute(
            "UPDATE telemetry.sensors SET calibration_due = current_date + 10 WHERE id = %s",
            (fridge_sensors[0],),
        )
        hot = fridge_sensors[2]
        episode = conn.execute(
            "INSERT INTO telemetry.excursion_episodes (sensor_id, kind, level, start_t, last_t,"
            " peak, area_c_min, readings, delay_reached, abs_breach)"
            " VALUES (%s, 'high', 'alarm', %s, %s, 11.5, 40, 30, true, false) RETURNING id",
            (hot, start + timedelta(hours=2), now - timedelta(minutes=2)),
        ).fetchone()
        assert episode is not None
        payload = b"{not json"
        conn.execute(
            "INSERT INTO telemetry.dead_letters (topic, reason, payload, payload_size,"
            " payload_sha256, last_received_at) VALUES ('ct/x', 'bad json', %s, %s,"
            " sha256(%s), %s)",
            (payload, len(payload), payload, now - timedelta(minutes=10)),
        )
        rollup_refresh.refresh(conn, sensor_ids=fridge_sensors)
    # Alerts and their log belong to ingest's functions (migration 0023): written here as
    # the owner, as the evaluator's functions would.
    with psycopg.connect(owner_db_url) as conn:
        alerts = []
        for sensor, severity in ((hot, "critical"), (logger, "warning"), (door, "info")):
            row = conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, sensor_id, gateway_id, started_at,"
                " summary) VALUES ('excursion', %s, %s, %s, %s, 'too warm') RETURNING id",
                (severity, sensor, GATEWAY, now - timedelta(minutes=30)),
            ).fetchone()
            assert row is not None
            alerts.append(int(row[0]))
        event = conn.execute(
            "INSERT INTO telemetry.alert_events (alert_id, event) VALUES (%s, 'opened')"
            " RETURNING id",
            (alerts[0],),
        ).fetchone()
        recipient = conn.execute("SELECT min(id) FROM telemetry.recipients").fetchone()
        assert event is not None
        assert recipient is not None
        conn.execute(
            "INSERT INTO telemetry.notify_deliveries (event_id, alert_id, recipient_id, channel,"
            " address, status, failed_at) VALUES (%s, %s, %s, 'email', 'qa@x.example', 'failed',"
            " %s)",
            (event[0], alerts[0], recipient[0], now - timedelta(minutes=20)),
        )
    # the batch figures, as erp-jobs writes them (as the application role)
    with psycopg.connect(db_url, autocommit=True) as conn:
        count = conn.execute("SELECT count(*) FROM erp.lots").fetchone()
        assert count is not None
        assert count[0] >= 3  # the demo seed's lots, every one with its row
        assert refresh_figures(conn, now=lambda: now) == count[0]
    return {"location": str(lots.fridges[0]), "lot": str(lots.excursion)}


def _run(reader_db_url: str, target: SqlTarget, ctx: QueryContext) -> tuple[list[str], list[Any]]:
    with psycopg.connect(reader_db_url) as conn:
        # as Grafana's session: the reader role has JIT off (scripts/services.sh, db/roles.py)
        assert conn.execute("SHOW jit").fetchone() == ("off",)
        cur = conn.execute(interpolate(target.sql, ctx).encode())
        return [d.name for d in cur.description or []], cur.fetchall()


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads(text) for text in render().values()]


def test_every_dashboard_query_runs_as_grafana_sends_it(
    db_url: str, owner_db_url: str, reader_db_url: str
) -> None:
    now = datetime.now(UTC)
    variables = _fill(db_url, owner_db_url, now)
    # the location panels show fridge 1 (door and power events); the batch, the hot lot
    location_of = {"location": variables["location"], "lot": variables["lot"]}
    seen: set[str] = set()
    for dashboard in _dashboards():
        for target in sql_targets(dashboard):
            query = BY_SQL.get(target.sql)
            assert query is not None, f"{target.where}: SQL not from dashboards.queries"
            seen.add(query.key)
            for interval in INTERVALS:
                span = max(timedelta(hours=6), interval * 6)
                ctx = QueryContext(now - span, now + timedelta(minutes=1), interval, location_of)
                columns, rows = _run(reader_db_url, target, ctx)
                assert tuple(columns) == query.columns, target.where
                assert rows, f"{target.where}: no row with $__interval {interval}"
    assert seen == {q.key for q in BY_SQL.values()}, "a query of dashboards.queries is unused"


def test_the_first_dashboards_interval_cast_is_caught(reader_db_url: str) -> None:
    """The hand-written dashboard of before: ``$__interval::interval`` reaches PostgreSQL
    as ``20m::interval``, which it rejects. Expanded as Grafana expands it, it fails here."""
    old = json.loads(OLD_DASHBOARD.read_text())
    target = next(t for t in sql_targets(old) if "$__interval" in t.sql)
    now = datetime.now(UTC)
    ctx = QueryContext(now - timedelta(hours=6), now, timedelta(minutes=20))
    assert "date_bin(20m::interval" in interpolate(target.sql, ctx)
    with pytest.raises(psycopg.errors.SyntaxError, match="trailing junk"):
        _run(reader_db_url, target, ctx)


def _release_panel(db_url: str, lot: int, now: datetime) -> dict[str, Any]:
    """``GET /api/lots/{lot}/release`` with the API's clock at ``now``, as a QA user."""
    secret = "dashboard-test-secret-0123456789abcdef"
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test-setup")
        auth_service.create_user(
            conn,
            username="dash-qa",
            full_name="Dash QA",
            password="Long-enough-Pass-4711!",
            roles=[Role("qa")],
            now=now,
            keyring=session_keyring(),
        )
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=2, jwt_secret=SecretStr(secret)
    )
    with TestClient(create_app(settings, clock=lambda: now)) as client:
        panel: dict[str, Any] = Api(client, secret=secret, now=now).get(
            "dash-qa", f"/api/lots/{lot}/release"
        )
    return panel


def test_batch_figures_equal_the_release_evidence(
    db_url: str, owner_db_url: str, reader_db_url: str
) -> None:
    """The batch dashboard's figures are the ones the QA release decision is shown.

    The dashboard reads the row erp-jobs wrote as of ``now``; the release panel and its
    evidence are asked for at that same instant (the lot is still held, so its life, and
    with it coverage, grows with the clock).
    """
    now = datetime.now(UTC)
    variables = _fill(db_url, owner_db_url, now)
    lot = int(variables["lot"])
    target = SqlTarget("batch stats", queries.BATCH_STATS.sql, "table")
    ctx = QueryContext(now - timedelta(days=30), now, timedelta(hours=1), {"lot": str(lot)})
    columns, rows = _run(reader_db_url, target, ctx)
    figures = dict(zip(columns, rows[0], strict=True))
    assert figures["computed_at"] == now
    with psycopg.connect(db_url) as conn:
        evidence = gather_evidence(conn, lot_id=lot, now=now)
    assert evidence.mkt is not None
    assert figures["mkt"] == pytest.approx(evidence.mkt, rel=1e-12)
    assert figures["mkt_limit"] == evidence.mkt_limit
    assert figures["tor_budget_minutes"] == evidence.tor_budget_min
    assert evidence.tor_cumulative_min > 30  # the hot fridge's lot is out of range
    assert figures["tor_minutes"] == pytest.approx(evidence.tor_cumulative_min, rel=1e-12)
    assert evidence.coverage < 0.95  # the probe's silence, less the 15 min a value holds
    assert figures["coverage"] == pytest.approx(evidence.coverage, rel=1e-12)
    # … and the API shows the QA user the same numbers, in its own words
    rules = {r["rule"]: r["evidence"] for r in _release_panel(db_url, lot, now)["rules"]}
    mkt = f"MKT {figures['mkt']:.2f} °C, limit {figures['mkt_limit']:.2f} °C"
    assert rules["mean kinetic temperature"] == mkt
    tor = f"{figures['tor_minutes']:.0f} min out of range of a"
    assert rules["time out of range within budget"].startswith(tor)
    assert f"readings cover {figures['coverage']:.1%}" in rules["temperature record complete"]


# Location figures from every raw reading: what the rollup path must equal.
_ALL_RAW_LOCATION_STATS = """
WITH a AS (
    SELECT a.sensor_id, greatest(a.valid_from, %(f)s) AS f,
           least(coalesce(a.valid_to, 'infinity'), %(t)s) AS t
      FROM erp.sensor_assignments a
      JOIN telemetry.sensors s ON s.id = a.sensor_id AND s.quantity = 'temperature'
     WHERE a.location_id = %(location)s AND a.during && tstzrange(%(f)s, %(t)s, '[]')),
w AS (
    SELECT r.value, extract(epoch FROM least(
               (SELECT n.time FROM telemetry.readings n WHERE n.sensor_id = r.sensor_id
                   AND n.time > r.time ORDER BY n.time LIMIT 1),
               r.time + interval '15 minutes', a.t) - r.time) AS w,
           (p.spec->>'low')::float8 AS low, (p.spec->>'high')::float8 AS high
      FROM a
      JOIN telemetry.readings r ON r.sensor_id = a.sensor_id AND r.time >= a.f AND r.time < a.t
      JOIN telemetry.sensor_effective_profiles p ON p.sensor_id = a.sensor_id)
SELECT 10000 / -ln(sum(w * exp(-10000 / (value + 273.15))) / sum(w)) - 273.15,
       sum(w * value) / sum(w), min(value), max(value),
       coalesce(sum(w) FILTER (WHERE value < low OR value > high), 0) / 60
  FROM w WHERE w > 0
"""


@pytest.mark.parametrize("fridge", [0, 2])
def test_location_figures_from_the_rollup_equal_every_raw_reading(
    db_url: str, owner_db_url: str, reader_db_url: str, fridge: int
) -> None:
    """Clean hours come from the hourly rollup, the rest raw: the same figures as reading
    every reading (fridge 1 in range; fridge 3 with an excursion and a silent probe)."""
    now = datetime.now(UTC)
    _fill(db_url, owner_db_url, now)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT id FROM erp.locations WHERE code = %s", (f"F{fridge + 1}",)
        ).fetchone()
        assert row is not None
        location = int(row[0])
        clean = conn.execute(
            "SELECT count(*) FROM erp.reading_hours h JOIN erp.sensor_assignments a"
            " ON a.sensor_id = h.sensor_id WHERE a.location_id = %s AND h.vmin >= 2"
            " AND h.vmax <= 8 AND h.max_step <= 900",
            (location,),
        ).fetchone()
    assert clean is not None
    assert clean[0] >= 1, "the test needs a clean hour to read from the rollup"
    start, end = now - timedelta(hours=6), now + timedelta(minutes=1)
    ctx = QueryContext(start, end, timedelta(hours=1), {"location": str(location)})
    _, rows = _run(reader_db_url, SqlTarget("stats", queries.LOCATION_STATS.sql, "table"), ctx)
    with psycopg.connect(reader_db_url) as conn:
        expected = conn.execute(
            _ALL_RAW_LOCATION_STATS, {"f": start, "t": end, "location": location}
        ).fetchone()
    assert expected is not None
    assert [float(v) for v in rows[0]] == pytest.approx([float(v) for v in expected], rel=1e-9)
