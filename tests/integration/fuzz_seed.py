"""Data for the API fuzz tests to chew on: one of every record the endpoints name by id.

Written the way production writes it: ERP records through the API (as the users of the
fuzz run), telemetry as ingest stores it (SQL as the application role). ``seed`` returns, by
each path parameter name of the OpenAPI document to the id of a record that exists, so
the fuzzer's cases can reach past the 404 of a made-up id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg

from db import migrate
from tests.fix_services import ADMIN_URL, APP_LOGIN, as_login

GTIN = "04006381333931"


@contextmanager
def module_database(template: str) -> Iterator[str]:
    """A database of its own for a whole test module (a copy of the migrated template), as
    the application role's URL; dropped at the end. Fuzzing needs one long-lived app."""
    name = f"ct_fuzz_{uuid.uuid4().hex[:12]}"
    base = ADMIN_URL.rsplit("/", 1)[0]
    migrate.copy_database(f"{base}/{template}", name)
    owner_url = f"{base}/{name}"
    try:
        yield as_login(owner_url, APP_LOGIN)
    finally:
        migrate.drop_database(owner_url)


def seed(
    client: httpx.Client, db_url: str, *, headers: dict[str, dict[str, str]], now: datetime
) -> dict[str, object]:
    """A site with a fridge, a dock and a truck; a sensor with readings assigned to the fridge;
    an item, two lots (one in the fridge, one on a shipment), an alert, a deviation, a dead
    letter, a failed scan and a reader. ``headers`` holds the bearer header per role."""

    def post(role: str, path: str, body: object, status: int = 201) -> Any:
        r = client.post(path, json=body, headers=headers[role])
        assert r.status_code == status, (path, r.text)
        return r.json()

    def at(minutes: float) -> str:
        return (now - timedelta(hours=6) + timedelta(minutes=minutes)).isoformat()

    def location(code: str, kind: str, parent: int | None) -> int:
        body = {"code": code, "name": f"{code} name", "kind": kind, "parent_id": parent}
        return int(post("admin", "/api/locations", body)["id"])

    site = location("S", "site", None)
    area = location("A", "area", site)
    fridge = location("F1", "fridge", area)
    dock = location("DK", "dock", area)
    truck = location("TRK", "truck", site)
    with psycopg.connect(db_url) as conn:
        sensor, logger = (
            int(
                conn.execute(
                    "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id) "
                    "VALUES (%s, 'temperature', 'Cel', 'gw-1') RETURNING id",
                    (uid,),
                ).fetchone()[0]  # type: ignore[index]
            )
            for uid in ("fridge-1", "logger-1")
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO telemetry.readings (time, sensor_id, value) VALUES (%s, %s, %s)",
                [
                    (at(m), s, 5.0 + (m % 7) / 10)
                    for m in range(0, 360, 2)
                    for s in (sensor, logger)
                ],
            )
    assignment = post(
        "admin",
        "/api/sensor-assignments",
        {"sensor_id": sensor, "location_id": fridge, "valid_from": at(-60)},
    )["id"]
    r = client.put(
        "/api/readers/door-1",
        json={"location_id": fridge, "kind": "scan"},
        headers=headers["admin"],
    )
    assert r.status_code == 200, r.text
    item = post(
        "admin",
        "/api/items",
        {"gtin": GTIN, "name": "Graft", "range_low": 2, "range_high": 8, "tor_budget_minutes": 30},
    )["id"]
    lot = post(
        "warehouse",
        "/api/lots",
        {"item_id": item, "lot_number": "L1", "expires_on": "2028-01-01", "quantity": 10},
    )["id"]
    shipped = post(
        "warehouse",
        "/api/lots",
        {"item_id": item, "lot_number": "L2", "expires_on": "2028-01-01", "quantity": 5},
    )["id"]
    for lot_id, qty, dst in ((lot, 10, fridge), (shipped, 5, dock)):
        body = {"lot_id": lot_id, "quantity": qty, "to_location_id": dst, "moved_at": at(0)}
        post("warehouse", "/api/movements", body)
    shipment = post(
        "warehouse",
        "/api/shipments",
        {
            "reference": "SH-1",
            "truck_location_id": truck,
            "origin_location_id": dock,
            "destination_location_id": fridge,
            "lots": [{"lot_id": shipped, "quantity": 5}],
            "logger_sensor_ids": [logger],
        },
    )["id"]
    post("qa_manager", f"/api/lots/{lot}/inspections", {"kind": "visual", "result": "passed"}, 201)
    with psycopg.connect(db_url) as conn:
        # an excursion episode of the fridge's sensor: the database opens a deviation for
        # the lot in the fridge; an alert as the evaluator raises it
        conn.execute(
            "INSERT INTO telemetry.excursion_episodes (sensor_id, kind, level, start_t, end_t,"
            " last_t, peak, area_c_min, readings, delay_reached, abs_breach)"
            " VALUES (%s, 'high', 'alarm', %s, %s, %s, 9.5, 15, 10, true, false)",
            (sensor, at(60), at(80), at(79)),
        )
        alert = conn.execute(
            "INSERT INTO telemetry.alerts (kind, severity, sensor_id, status, late, started_at,"
            " summary, peak) VALUES ('excursion_high', 'critical', %s, 'open', false, %s,"
            " 'Fridge 1 above 8 °C', 9.5) RETURNING id",
            (sensor, at(60)),
        ).fetchone()[0]  # type: ignore[index]
        deviation = conn.execute(
            "SELECT id FROM erp.deviations WHERE lot_id = %s", (lot,)
        ).fetchone()[0]  # type: ignore[index]
        payload = b'{"not": "a reading"'
        conn.execute(
            "INSERT INTO telemetry.dead_letters (received_at, topic, gateway_id, stream, seq, "
            "reason, payload, payload_size, payload_sha256, dedupe_key) "
            "VALUES (%s, 'ct/v1/site-a/gw-1/readings', 'gw-1', 'main', 42, 'truncated JSON', "
            "%s, %s, sha256(%s), 'seed')",
            (at(100), payload, len(payload), payload),
        )
        scan = conn.execute(
            "INSERT INTO telemetry.scans (time, gateway_id, stream, seq, scanner, data, ok,"
            " reason, gtin, lot, sscc) VALUES (%s, 'gw-1', 'scans', 1, 'door-9', 'x', true, NULL,"
            " %s, 'L9', NULL) RETURNING id",
            (at(120), GTIN),
        ).fetchone()[0]  # type: ignore[index]
    return {
        "sensor_id": sensor,
        "item_id": item,
        "location_id": fridge,
        "lot_id": lot,
        "shipment_id": shipment,
        "assignment_id": assignment,
        "alert_id": int(alert),
        "deviation_id": int(deviation),
        "reader_id": "door-1",
        "source": "scan",
        "event_id": int(scan),
    }
