"""Shipments for the page tests: one in transit with a logger that ran warm, one planned,
one arrived — made through the API as the warehouse does (fixture body helpers)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from tests.integration.stock_fixtures import (
    NOW,
    StockApi,
    at,
    iso,
    item,
    lot,
    move,
    sensor,
    site_with,
)


@dataclass(frozen=True)
class Shipments:
    in_transit: int
    planned: int
    arrived: int
    logger: int  # travels on the shipment in transit: 5 °C, 9 °C for 20 min
    alert: int  # the logger's excursion during the trip
    lots: dict[str, int]  # lot number -> id


def _ship(
    api: StockApi,
    reference: str,
    truck: int,
    origin: int,
    destination: int,
    lots: list[int],
    loggers: list[int],
) -> int:
    body = {
        "reference": reference,
        "truck_location_id": truck,
        "origin_location_id": origin,
        "destination_location_id": destination,
        "lots": [{"lot_id": x, "quantity": 100} for x in lots],
        "logger_sensor_ids": loggers,
    }
    return int(api.post("wh", "/api/shipments", body)["id"])


def make_shipments(
    api: StockApi, db_url: str, *, prefix: str = "", lot_prefix: str = "L-"
) -> Shipments:
    """Three shipments from fridge FR to dock DK; the one in transit left 5 h before NOW."""
    ids = site_with(api, ("FR", "fridge"), ("DK", "dock"), ("T1", "truck"), ("T2", "truck"))
    product = item(api)
    numbers = [f"{lot_prefix}{n}" for n in ("TRIP-1", "TRIP-2", "PLAN", "DONE")]
    lots = {n: lot(api, product, n) for n in numbers}
    for lot_id in lots.values():
        move(api, lot_id, None, ids["FR"], 0)
    logger = sensor(db_url, f"{prefix}LOGGER-1")
    spare = sensor(db_url, f"{prefix}LOGGER-2")
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value)"
            " SELECT t, %s, CASE WHEN t >= %s AND t < %s THEN 9.0 ELSE 5.0 END"
            " FROM generate_series(%s::timestamptz, %s, interval '1 minute') t",
            (logger, at(120), at(140), at(60), NOW),
        )
        spec = {"name": "truck-2-8", "low": 2.0, "high": 8.0, "pre_alarm_band": 0.5}
        conn.execute(
            "WITH p AS (INSERT INTO telemetry.alarm_profiles (name, spec)"
            " VALUES ('truck-2-8', %s) RETURNING id)"
            " INSERT INTO telemetry.sensor_profiles (sensor_id, profile_id)"
            " SELECT %s, id FROM p",
            (Jsonb(spec), logger),
        )
        (alert,) = conn.execute(
            "INSERT INTO telemetry.alerts (kind, severity, sensor_id, status, started_at,"
            " ended_at, summary, peak) VALUES ('excursion_high', 'critical', %s, 'open',"
            " %s, %s, %s, 9.0) RETURNING id",
            (logger, at(120), at(140), f"{prefix}Truck above 8 °C for 20 min"),
        ).fetchone()
    first, second, planned_lot, done_lot = (lots[n] for n in numbers)
    arrived = _ship(api, f"{prefix}SH-DONE", ids["T2"], ids["FR"], ids["DK"], [done_lot], [spare])
    api.post("wh", f"/api/shipments/{arrived}/depart", {"time": iso(10)}, 200)
    api.post("wh", f"/api/shipments/{arrived}/arrive", {"time": iso(50)}, 200)
    in_transit = _ship(
        api, f"{prefix}SH-TRANSIT", ids["T1"], ids["FR"], ids["DK"], [first, second], [logger]
    )
    api.post("wh", f"/api/shipments/{in_transit}/depart", {"time": iso(60)}, 200)
    planned = _ship(api, f"{prefix}SH-PLAN", ids["T1"], ids["FR"], ids["DK"], [planned_lot], [])
    return Shipments(
        in_transit=in_transit,
        planned=planned,
        arrived=arrived,
        logger=logger,
        alert=int(alert),
        lots=lots,
    )
