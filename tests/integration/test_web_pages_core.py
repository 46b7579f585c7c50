"""The overview, sensor, dead-letter, lots and error pages as a plant reads them (real PostgreSQL).

Each sensor is judged by its own alarm profile; the overview never says all OK while an
alert or a deviation is open; times are in the site's zone and the footer says which;
dead letters and lots paginate and filter.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, timedelta
from html import escape

import psycopg
from psycopg.types.json import Jsonb

from erp_core.audit.service import set_actor
from tests.integration.stock_fixtures import (
    GTIN,
    NOW,
    StockApi,
    api_for,
    assign,
    at,
    item,
    location,
    move,
    sensor,
)
from tests.integration.web_helpers import csrf_of, sign_in

PASSWORD = "Long-enough-Pass-4711!"


def _readings(db_url: str, sensor_id: int, value: float, minutes: int = 30) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value)"
            " SELECT t, %s, %s FROM generate_series(%s::timestamptz, %s, '1 minute') t",
            (sensor_id, value, NOW - timedelta(minutes=minutes), NOW),
        )


def _own_profile(db_url: str, sensor_id: int, spec: dict[str, object]) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "WITH p AS (INSERT INTO telemetry.alarm_profiles (name, spec) VALUES (%s, %s)"
            " RETURNING id) INSERT INTO telemetry.sensor_profiles (sensor_id, profile_id)"
            " SELECT %s, id FROM p",
            (spec["name"], Jsonb(spec), sensor_id),
        )


def test_overview_judges_each_sensor_by_its_own_profile_and_names_what_is_open(
    db_url: str,
) -> None:
    with contextmanager(api_for)(db_url, site_timezone="Asia/Shanghai") as api:
        freezer = sensor(db_url, "T-FREEZER")
        fridge = sensor(db_url, "T-FRIDGE")
        _own_profile(db_url, freezer, {"name": "frozen-30-15", "low": -30.0, "high": -15.0})
        _readings(db_url, freezer, -20.0)
        _readings(db_url, fridge, 5.0, minutes=12)
        client = api.client
        sign_in(client, "qa", PASSWORD)
        html = client.get("/").text
        assert "ALL OK" in html  # -20 °C in a freezer, 5 °C in a fridge: both in range
        assert "frozen-30-15" in html
        assert "TOO COLD" not in html
        assert "All times are Asia/Shanghai (UTC+8)." in html
        # the reading at NOW (12:00 UTC) is shown at 20:00 in Shanghai
        assert "Jun 1, 2026 20:00" in html
        assert "Jun 1, 2026 12:00" not in html

        cold = sensor(db_url, "T-FRIDGE-2")  # a fridge probe (default profile) at -20 °C
        _readings(db_url, cold, -20.0, minutes=12)
        with psycopg.connect(db_url) as conn:
            conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, sensor_id, status, started_at,"
                " summary) VALUES ('excursion_low', 'critical', %s, 'open', %s, 'too cold')",
                (cold, at(-5)),
            )
        html = client.get("/").text
        assert "ALL OK" not in html
        assert "NEEDS ATTENTION NOW" in html
        assert "1 alert is open" in html
        banner = html.split("<h2>", 1)[0]
        assert "T-FRIDGE-2" in banner
        assert "T-FREEZER" not in banner
        assert "TOO COLD" in banner

        # the sensor page: its chart fits the 12 minutes of readings, axis in Shanghai time
        page = client.get(f"/sensors/{cold}").text
        assert "Time (Asia/Shanghai (UTC+8))" in page
        assert ">19:50<" in page or ">19:55<" in page  # a tick inside the 12 minutes
        assert "6 h" in page  # the range links are still offered
        zh = client.get(f"/sensors/{cold}", headers={"accept-language": "zh-CN"}).text
        assert "时间（Asia/Shanghai (UTC+8)）" in zh
        assert "所有时间均为 Asia/Shanghai (UTC+8)。" in zh


def test_dead_letters_page_shows_reason_topic_gateway_and_payload_safely_a_page_at_a_time(
    db_url: str,
) -> None:
    with contextmanager(api_for)(db_url) as api, psycopg.connect(db_url) as conn:
        rows = [
            (f"ct/v1/s/gw-{i}/readings", f"gw-{i}", f"reason {i}", f"payload {i}".encode())
            for i in range(53)
        ]
        rows.append(("ct/v1/s/gw-x/readings", "gw-x", "not JSON <b>", b"\xff\xfe<script>"))
        rows.append(("ct/v1/s/gw-y/readings", "gw-y", "hostile", b"<script>alert(1)</script>"))
        for n, (topic, gw, reason, payload) in enumerate(rows):
            conn.execute(
                "INSERT INTO telemetry.dead_letters (received_at, last_received_at, topic,"
                " gateway_id, reason, payload, payload_size, payload_sha256, times_received)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, sha256(%s), %s)",
                (at(n), at(n + 30), topic, gw, reason, payload, len(payload), payload, 1 + n % 3),
            )
        conn.commit()
        client = api.client
        sign_in(client, "qa", PASSWORD)
        first = client.get("/dead-letters").text
        assert first.count("<tr><td") == 50
        assert "ff fe 3c 73 63 72 69 70 74 3e" in first  # not UTF-8: shown as hex
        assert escape("<script>alert(1)</script>") in first  # text: escaped
        assert "<script" not in first.lower()
        assert "not JSON &lt;b&gt;" in first
        assert "gw-y" in first
        assert "ct/v1/s/gw-y/readings" in first
        assert "55 in all" in first
        assert 'href="/dead-letters?page=2"' in first
        second = client.get("/dead-letters?page=2").text
        assert second.count("<tr><td") == 5
        assert "reason 0" in second  # the oldest, last
        assert client.get("/dead-letters?page=0").status_code == 422


def _lot(api: StockApi, item_id: int, number: str, expires: date) -> int:
    body = {"item_id": item_id, "lot_number": number, "expires_on": str(expires), "quantity": 100}
    return int(api.post("wh", "/api/lots", body)["id"])


def test_lots_list_filters_by_item_and_expiry_and_shows_product_place_and_deviation(
    db_url: str,
) -> None:
    with contextmanager(api_for)(db_url) as api:
        site = location(api, "S1", "site", None)
        fridge = location(api, "F-7", "fridge", site)
        stent = item(api)
        graft = item(api, gtin="09506000134369", name="Graft")
        soon = _lot(api, stent, "L-SOON", NOW.date() + timedelta(days=20))
        later = _lot(api, graft, "L-LATER", NOW.date() + timedelta(days=400))
        gone = _lot(api, graft, "L-GONE", NOW.date() - timedelta(days=1))
        move(api, soon, None, fridge, 0)
        probe = sensor(db_url, "T-F7")
        assign(api, probe, fridge, -60)
        with psycopg.connect(db_url) as conn:
            set_actor(conn, user="qa", reason="test: a deviation on the lot")
            conn.execute(
                "INSERT INTO erp.deviations (lot_id, title, description, opened_by)"
                " VALUES (%s, 'too warm', 'test', 'qa')",
                (soon,),
            )
        client = api.client
        sign_in(client, "qa", PASSWORD)
        html = client.get("/lots").text
        row = html.split(f'<a href="/lots/{soon}">L-SOON</a>', 1)[1].split("</tr>", 1)[0]
        assert "Stent" in row
        assert "F-7" in row
        assert "1 open" in row
        other = html.split(f'<a href="/lots/{later}">L-LATER</a>', 1)[1].split("</tr>", 1)[0]
        assert "Graft" in other
        assert "1 open" not in other
        by_item = client.get(f"/lots?item={graft}").text
        assert "L-LATER" in by_item
        assert "L-SOON" not in by_item
        expiring = client.get("/lots?expiry=30").text
        assert "L-SOON" in expiring
        assert "L-LATER" not in expiring
        half_year = client.get("/lots?expiry=180&item=").text
        assert "L-SOON" in half_year
        assert "L-LATER" not in half_year
        assert "L-GONE" not in half_year
        expired = client.get("/lots?expiry=expired").text
        assert f'<a href="/lots/{gone}">L-GONE</a>' in expired
        assert "L-SOON" not in expired
        assert "No lot matches." in client.get(f"/lots?expiry=expired&item={stent}").text
        # nonsense filters mean "all", never an error
        assert client.get("/lots?item=abc&expiry=7").status_code == 200
        assert GTIN in client.get("/lots?item=abc&expiry=7").text


def test_403_and_error_pages_and_the_language_form_speak_the_users_language(db_url: str) -> None:
    with contextmanager(api_for)(db_url) as api:
        client = api.client
        client.headers["accept-language"] = "zh-CN"
        sign_in(client, "qa", PASSWORD)
        html = client.get("/scans").text
        assert "语言" in html  # the selector's visible label
        assert "跟随浏览器（简体中文）" in html
        refused = client.post("/scans/scan/1/retry", data={"csrf_token": csrf_of(html)})
        assert refused.status_code == 403
        assert "不允许" in refused.text
        assert "warehouse" in refused.text
        forged = client.post("/account/language", data={"csrf_token": "x", "locale": "en"})
        assert forged.status_code == 403
        assert "CSRF" in forged.text
        assert "表单校验失败" in forged.text
        missing = client.get("/sensors/999999")
        assert missing.status_code == 404
        assert "未找到" in missing.text
        client.headers["accept-language"] = "en"
        en = client.get("/account/password").text
        assert "As the browser (English)" in en
        assert 'name="current_password"' in en
        assert "autofocus" in en
