"""The devices page on a real database: gateway health from its state, sensors' battery,
calibration and place, and the pager over the sensors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from erp_core.web.paging import PER_PAGE
from tests.integration.stock_fixtures import NOW, StockApi, api_for, assign, sensor, site_with
from tests.integration.web_helpers import sign_in

PASSWORD = "Long-enough-Pass-4711!"
_SENSOR_LINK = re.compile(r'<a href="/sensors/(\d+)">')


@pytest.fixture
def api(db_url: str) -> Iterator[StockApi]:
    with contextmanager(api_for)(db_url) as made:
        yield made


def _gateways(db_url: str) -> None:
    state = {
        "status": "online",
        "outbox_depth": 17,
        "clock_skew_ms": 4200,
        "clock_skewed": True,
        "alarms": [
            {"name": "fridge-1-buzzer", "active": True, "output_on": True},
            {"name": "fridge-2-buzzer", "active": False, "output_on": False},
        ],
    }
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO telemetry.gateways (id, site, status, state, first_seen, last_seen)"
            " VALUES ('gw-ok', 'PLANT', 'online', %s, %s, %s),"
            " ('gw-down', 'TRUCKS', 'offline', NULL, %s, %s)",
            (
                Jsonb(state),
                NOW - timedelta(days=1),
                NOW - timedelta(minutes=1),
                NOW - timedelta(days=1),
                NOW - timedelta(hours=3),
            ),
        )


def test_gateways_show_their_health_and_sensors_their_battery_calibration_and_place(
    api: StockApi, db_url: str
) -> None:
    _gateways(db_url)
    ids = site_with(api, ("F1", "fridge"))
    probe = sensor(db_url, "PROBE-1", gateway_site="PLANT")
    overdue = sensor(db_url, "PROBE-2", gateway_site="PLANT")
    assign(api, probe, ids["F1"], -60)
    with psycopg.connect(db_url) as conn:
        (battery,) = conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
            " VALUES ('PROBE-1', 'battery', '%%', 'gw-PLANT') RETURNING id"
        ).fetchone()
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value) VALUES"
            " (%s, %s, 4.25), (%s, %s, 12)",
            (NOW - timedelta(minutes=2), probe, NOW - timedelta(minutes=2), battery),
        )
        conn.execute(
            "UPDATE telemetry.sensors SET calibration_due = %s WHERE id = %s",
            (NOW.date() - timedelta(days=3), overdue),
        )
        conn.execute(
            "UPDATE telemetry.sensors SET calibration_due = %s WHERE id = %s",
            (NOW.date() + timedelta(days=200), probe),
        )
    sign_in(api.client, "qa", PASSWORD)
    r = api.client.get("/devices")
    assert r.status_code == 200, r.text
    text = r.text
    gateways = text.split("<h2>Sensors</h2>")[0]
    ok_row = gateways.split("gw-ok")[1].split("</tr>")[0]
    assert '<span class="badge ok">ONLINE</span>' in ok_row
    assert "17 waiting" in ok_row
    assert "4.2 s" in ok_row
    assert "SKEWED" in ok_row
    assert 'fridge-1-buzzer: <span class="badge alarm">SOUNDING</span>' in ok_row
    assert 'fridge-2-buzzer: <span class="badge ok">QUIET</span>' in ok_row
    down_row = gateways.split("gw-down")[1].split("</tr>")[0]
    assert '<span class="badge alarm">OFFLINE</span>' in down_row
    sensors = text.split("<h2>Sensors</h2>")[1]
    # the battery is shown beside its device's probe, not as a sensor of its own
    assert [int(x) for x in _SENSOR_LINK.findall(sensors)] == [probe, overdue]
    probe_row = sensors.split("PROBE-1</a>")[1].split("</tr>")[0]
    assert "4.2 °C" in probe_row or "4.3 °C" in probe_row
    assert "12 %" in probe_row
    assert "F1</span> since" in probe_row
    assert '<span class="badge ok">Dec 18, 2026</span>' in probe_row
    overdue_row = sensors.split("PROBE-2</a>")[1].split("</tr>")[0]
    assert '<span class="badge alarm">May 29, 2026 · OVERDUE</span>' in overdue_row


def test_sensors_paginate_and_the_chinese_page_has_chinese_words(
    api: StockApi, db_url: str
) -> None:
    _gateways(db_url)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
            " SELECT 'P-' || lpad(n::text, 3, '0'), 'temperature', 'Cel', 'gw-ok'"
            " FROM generate_series(1, %s) n",
            (PER_PAGE + 5,),
        )
    sign_in(api.client, "qa", PASSWORD)
    first = api.client.get("/devices").text
    assert len(_SENSOR_LINK.findall(first)) == PER_PAGE
    assert 'href="/devices?page=2" rel="next"' in first
    second = api.client.get("/devices?page=2").text
    assert len(_SENSOR_LINK.findall(second)) == 5
    assert "gw-ok" in second  # the gateways are on every page
    assert 400 <= api.client.get("/devices?page=0").status_code < 500
    api.client.headers["accept-language"] = "zh-CN"
    zh = api.client.get("/devices").text
    assert "<h1>设备</h1>" in zh
    assert "离线" in zh
    assert "在线" in zh
