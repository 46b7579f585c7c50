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
            conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, sensor_id, status, started_at,"
                " summary, peak) VALUES ('excursion_high', 'critical', %s, 'open', %s, %s, 9.0)",
                (probe, at(1), f"Fridge {HOSTILE} too warm"),
            )
            raw = HOSTILE.encode()
            conn.execute(
                "INSERT INTO telemetry.dead_letters (topic, gateway_id, reason, payload,"
                " payload_size, payload_sha256) VALUES (%s, %s, %s, %s, %s, sha256(%s))",
                (f"ct/v1/{HOSTILE}", f"gw{HOSTILE}", f"bad {HOSTILE}", raw, len(raw), raw),
            )
        product = item(api, name=f"Stent {HOSTILE}")
        hostile = lot(api, product, HOSTILE)
        move(api, hostile, None, fridge, 0)
        client = api.client
        client.headers["accept-language"] = locale
        sign_in(client, "qa", PASSWORD)
        pages = {
            "/lots": True,
            f"/lots/{hostile}": True,
            f"/lots?q={HOSTILE}": True,
            "/": False,
            "/alerts": False,
            "/scans": False,
            "/dead-letters": False,
            f"/sensors/{probe}?hours=24": False,
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
