"""Goods movements as real processes: simulated scanners and an RFID portal → gateway →
Mosquitto → ingest → PostgreSQL → ``coldtrace erp-jobs`` → stock movements.

This is the demo's goods-in and dispatch story, checked against the ERP's records.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from coldtrace.broker import Broker, free_port
from coldtrace.demo import GATEWAY, write_gateway_config
from coldtrace.seed import (
    DOCK_SCANNER,
    FRIDGE_SCANNERS,
    TRUCK_PORTAL,
    dispatch_script,
    goods_in_script,
    seed_demo,
)
from coldtrace.supervise import Supervisor, coldtrace_args
from erp_core.movements.service import current_locations
from tests.integration.access_helpers import session_keyring
from tests.mqtt_helpers import ingest_env, wait_until

pytestmark = pytest.mark.slow


def stored_scans(db_url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT s.scanner, s.data, s.ok, s.reason, o.outcome, o.reason FROM telemetry.scans s"
            " LEFT JOIN erp.edge_event_outcomes o ON o.source = 'scan' AND o.event_id = s.id"
            " ORDER BY s.time"
        ).fetchall()


def outcome_counts(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT outcome, count(*) FROM erp.edge_event_outcomes GROUP BY 1"
        ).fetchall()
    return {k: int(v) for k, v in rows}


def test_scans_and_tag_reads_become_movements(
    tmp_path: Path, tls_broker: Broker, db_url: str
) -> None:
    broker = tls_broker  # the gateway comes in over TLS, as in the demo
    with psycopg.connect(db_url) as conn:
        lots = seed_demo(conn, now=datetime.now(UTC), gateway=GATEWAY, keyring=session_keyring())
    scanners = {name: free_port() for name in (*FRIDGE_SCANNERS, DOCK_SCANNER)}
    readers = {TRUCK_PORTAL: free_port()}
    cfg = write_gateway_config(
        tmp_path, broker, [], scanners=scanners, readers=readers, state_interval_s=2, tls=True
    )
    script = tmp_path / "warehouse.jsonl"
    env = {"COLDTRACE_DATABASE_URL": db_url}
    sup = Supervisor(logdir=tmp_path / "logs")
    wh = ["sim-warehouse", "--plain-logs", "--script", str(script)]
    wh += [f"--scanner={n}={p}" for n, p in scanners.items()]
    wh += [f"--reader={n}={p}" for n, p in readers.items()]
    try:
        sup.add("warehouse", coldtrace_args(*wh))
        sup.add("ingest", coldtrace_args("ingest", "--plain-logs"), env | ingest_env(broker))
        sup.add("gateway", coldtrace_args("gateway", "run", "-c", str(cfg), "--plain-logs"))
        sup.add("erp-jobs", coldtrace_args("erp-jobs", "--plain-logs", "--interval", "1"), env)
        with script.open("a") as fh:
            fh.writelines(json.dumps(a) + "\n" for a in goods_in_script(lots))
        assert wait_until(lambda: outcome_counts(db_url).get("moved", 0) >= 3, timeout=60), (
            f"goods-in scans did not become movements: {stored_scans(db_url)}"
        )
        with script.open("a") as fh:
            fh.writelines(json.dumps(a) + "\n" for a in dispatch_script(lots))
        assert wait_until(lambda: outcome_counts(db_url).get("moved", 0) >= 5, timeout=60), (
            f"dispatch did not become movements: {stored_scans(db_url)}"
        )
    finally:
        sup.stop()
    for child in sup.children.values():
        log = child.log_path.read_text(errors="replace") if child.log_path.exists() else ""
        assert "Traceback" not in log, f"{child.name} crashed:\n{log[-3000:]}"
    assert outcome_counts(db_url) == {"moved": 5, "ignored": 1}
    with psycopg.connect(db_url) as conn:
        path = conn.execute(
            "SELECT from_location_id, to_location_id, source, reader_id"
            " FROM erp.stock_movements WHERE lot_id = %s ORDER BY moved_at",
            (lots.shipped,),
        ).fetchall()
        damaged = conn.execute("SELECT ok, reason FROM telemetry.scans WHERE NOT ok").fetchall()
        now = datetime.now(UTC)
        where = {
            lot: current_locations(conn, lot_id=lot, time=now)
            for lot in (lots.clean, lots.excursion, lots.shipped)
        }
    assert path == [
        (None, lots.fridges[1], "scan", "scan-f2"),
        (lots.fridges[1], lots.dock, "scan", DOCK_SCANNER),
        (lots.dock, lots.truck, "rfid", TRUCK_PORTAL),
    ]
    assert where == {
        lots.clean: [(lots.fridges[0], 100.0)],
        lots.excursion: [(lots.fridges[2], 100.0)],
        lots.shipped: [(lots.truck, 100.0)],
    }
    assert len(damaged) == 1
    assert "check digit" in damaged[0][1]
