"""No page emits a value from the database unescaped: hostile names show as text everywhere."""

from __future__ import annotations

from contextlib import contextmanager
from html import escape

import psycopg
import pytest

from tests.integration.stock_fixtures import (
    NOW,
    api_for,
    assign,
    at,
    iso,
    item,
    location,
    lot,
    move,
    sensor,
)
from tests.integration.web_helpers import sign_in

HOSTILE = "<script>alert(1)</script>"
PASSWORD = "Long-enough-Pass-4711!"


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_script_in_lot_item_and_location_names_is_text_on_every_page(
    db_url: str, locale: str
) -> None:
    with contextmanager(api_for)(db_url) as api:
        site = location(api, "S1", "site", None)
        fridge = location(api, f"F{HOSTILE}", "fridge", site)
        probe = sensor(db_url, f"T{HOSTILE}")
        assign(api, probe, fridge, -60)
        with psycopg.connect(db_url) as conn:
            conn.execute(
                "INSERT INTO telemetry.readings (time, sensor_id, value)"
                " SELECT t, %s, 9.0 FROM generate_series(%s::timestamptz, %s, '1 minute') t",
                (probe, at(0), NOW),
            )
            (alert,) = conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, sensor_id, status, started_at,"
                " summary, peak, detail) VALUES ('excursion_high', 'critical', %s, 'open', %s,"
                " %s, 9.0, jsonb_build_object('location', %s::text, 'profile', %s::text))"
                " RETURNING id",
                (probe, at(1), f"Fridge {HOSTILE} too warm", f"F{HOSTILE}", HOSTILE),
            ).fetchone()
            raw = HOSTILE.encode()
            conn.execute(
                "INSERT INTO telemetry.dead_letters (topic, gateway_id, reason, payload,"
                " payload_size, payload_sha256) VALUES (%s, %s, %s, %s, %s, sha256(%s))",
                (f"ct/v1/{HOSTILE}", f"gw{HOSTILE}", f"bad {HOSTILE}", raw, len(raw), raw),
            )
        product = item(api, name=f"Stent {HOSTILE}")
        hostile = lot(api, product, HOSTILE)
        move(api, hostile, None, fridge, 0)
        truck = location(api, f"T{HOSTILE}", "truck", site)
        dock = location(api, f"D{HOSTILE}", "dock", site)
        body = {
            "reference": f"SH{HOSTILE}",
            "truck_location_id": truck,
            "origin_location_id": fridge,
            "destination_location_id": dock,
            "lots": [{"lot_id": hostile, "quantity": 100}],
            "logger_sensor_ids": [probe],
        }
        shipment = api.post("wh", "/api/shipments", body)["id"]
        api.post("wh", f"/api/shipments/{shipment}/depart", {"time": iso(30)}, 200)
        # a pending four-eyes override with a hostile justification (the lot page shows it,
        # the lots list's banner names the lot)
        failed = [r["rule"] for r in api.get("qa", f"/api/lots/{hostile}/release")["failed_rules"]]
        proposal = {
            "password": PASSWORD,
            "justification": f"Stability data cover it {HOSTILE}",
            "confirmed_rules": failed,
        }
        api.post("qam", f"/api/lots/{hostile}/release/overrides", proposal, 201)
        client = api.client
        client.headers["accept-language"] = locale
        sign_in(client, "qa", PASSWORD)
        pages = {
            "/lots": True,
            f"/lots/{hostile}": True,
            f"/lots?q={HOSTILE}": True,
            f"/lots/{hostile}/override": True,
            "/": False,
            "/alerts": False,
            f"/alerts/{alert}": True,  # the lot exposed during the alert, by its number
            "/scans": False,
            "/dead-letters": False,
            f"/sensors/{probe}?hours=24": False,
            "/shipments": True,
            f"/shipments/{shipment}": True,
            "/devices": False,
            "/items": True,
            f"/items?q={HOSTILE}": False,
            f"/items/{product}": True,
            f"/items/{product}/edit": True,
            "/locations": True,
            f"/locations/{fridge}": True,
            f"/locations/{fridge}/edit": True,
            f"/sensors/{probe}": False,
            f"/lots?item={product}&expiry=expired": False,
            f"/lots?item={product}": True,
            "/account/password": False,
        }
        for url, shows_lot in pages.items():
            r = client.get(url)
            assert r.status_code == 200, (url, r.text)
            assert HOSTILE not in r.text, url
            assert "<script" not in r.text.lower(), url
            if shows_lot:
                assert escape(HOSTILE) in r.text, url
