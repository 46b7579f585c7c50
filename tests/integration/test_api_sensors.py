"""The HTTP API and web UI against a real PostgreSQL: data goes in by SQL, out over HTTP.

Expected aggregates are computed here from the inserted readings, independently of the
bucket planner: each returned bucket names its [start, end), and the test checks it
against the readings it inserted in that interval.
"""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from erp_core.app import create_app
from erp_core.auth import tokens
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import add_user
from tests.integration.web_helpers import sign_in

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


SECRET = "api-sensors-test-secret-0123456789abcdef"


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    """An operator: signed in to the web UI, and with a bearer token for the JSON API."""
    add_user(db_url, "viewer", ["operator"], "viewer-Pass-4711!")
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=4, jwt_secret=SecretStr(SECRET)
    )
    with TestClient(create_app(settings, clock=lambda: NOW)) as c:
        sign_in(c, "viewer", "viewer-Pass-4711!")
        token = tokens.issue(username="viewer", secret=SECRET, now=NOW, lifetime=timedelta(hours=1))
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def test_the_json_api_needs_a_signed_in_user(client, conn):
    sensor = add_sensor(conn, "fridge-1")
    paths = [
        "/api/sensors",
        f"/api/sensors/{sensor}/readings",
        "/api/gateways",
        "/api/dead-letters",
    ]
    anonymous = TestClient(client.app)  # no token, no cookie
    for path in paths:
        assert client.get(path).status_code == 200, path
        r = anonymous.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
    # the web session cookie is not a bearer token for the API
    cookie_only = TestClient(client.app, cookies=dict(client.cookies))
    assert cookie_only.get("/api/sensors").status_code == 401


def add_sensor(
    conn: psycopg.Connection,
    uid: str,
    *,
    quantity: str = "temperature",
    unit: str = "Cel",
    gateway: str | None = "gw-1",
) -> int:
    row = conn.execute(
        "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id) "
        "VALUES (%s, %s, %s, %s) RETURNING id",
        (uid, quantity, unit, gateway),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_readings(
    conn: psycopg.Connection, sensor_id: int, readings: list[tuple[datetime, float]]
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO telemetry.readings (time, sensor_id, value) VALUES (%s, %s, %s)",
            [(t, sensor_id, v) for t, v in readings],
        )


def add_dead_letter(
    conn: psycopg.Connection, *, received_at: datetime, reason: str, payload: bytes
) -> None:
    conn.execute(
        "INSERT INTO telemetry.dead_letters (received_at, topic, gateway_id, stream, seq, "
        "reason, payload, payload_size, payload_sha256, dedupe_key) "
        "VALUES (%s, 'ct/v1/site-a/gw-1/readings', 'gw-1', 'main', 42, %s, %s, %s, "
        "sha256(%s), %s)",
        (received_at, reason, payload, len(payload), payload, reason),
    )


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- /api/sensors ------------------------------------------------------------------------


def test_sensors_list_latest_reading_and_24h_count(client, conn):
    fridge = add_sensor(conn, "fridge-1")
    humidity = add_sensor(conn, "fridge-1", quantity="humidity", unit="%")
    silent = add_sensor(conn, "fridge-2", gateway="gw-2")
    add_readings(
        conn,
        fridge,
        [
            (NOW - timedelta(hours=30), 4.0),  # older than 24 h
            (NOW - timedelta(hours=24), 4.5),  # exactly 24 h ago: outside (now - 24 h, now]
            (NOW - timedelta(hours=3), 5.0),
            (NOW - timedelta(minutes=2), 9.25),
        ],
    )
    add_readings(conn, humidity, [(NOW - timedelta(minutes=5), 61.5)])

    response = client.get("/api/sensors")

    assert response.status_code == 200
    by_id = {s["id"]: s for s in response.json()}
    assert set(by_id) == {fridge, humidity, silent}
    f = by_id[fridge]
    assert (f["uid"], f["quantity"], f["unit"], f["gateway_id"]) == (
        "fridge-1",
        "temperature",
        "Cel",
        "gw-1",
    )
    assert at(f["latest_time"]) == NOW - timedelta(minutes=2)
    assert f["latest_value"] == 9.25
    assert f["readings_24h"] == 2
    h = by_id[humidity]
    assert (h["latest_value"], h["readings_24h"], h["unit"]) == (61.5, 1, "%")
    s = by_id[silent]
    assert (s["latest_time"], s["latest_value"], s["readings_24h"]) == (None, None, 0)
    assert s["gateway_id"] == "gw-2"


# --- /api/sensors/{id}/readings ----------------------------------------------------------


@pytest.fixture
def noisy_sensor(conn) -> tuple[int, list[tuple[datetime, float]]]:
    """A sensor with a reading every 37 s for 5 h of seeded random values, plus a neighbour."""
    rng = random.Random(20261125)
    t0 = NOW - timedelta(hours=5)
    data = [(t0 + timedelta(seconds=37 * i), round(rng.uniform(1.0, 10.0), 3)) for i in range(487)]
    sensor = add_sensor(conn, "cold-room-3")
    add_readings(conn, sensor, data)
    # Readings of another sensor at the same times must not leak into the aggregates.
    other = add_sensor(conn, "cold-room-4")
    add_readings(conn, other, [(t, 100.0) for t, _ in data])
    return sensor, data


@pytest.mark.parametrize("max_points", [2, 3, 7, 50, 500, 5000])
def test_downsampled_buckets_match_the_inserted_readings(client, noisy_sensor, max_points):
    sensor, data = noisy_sensor
    start = data[20][0]  # exactly on a reading: included
    end = data[400][0]  # exactly on a reading: excluded
    expected_in_range = [(t, v) for t, v in data if start <= t < end]
    assert len(expected_in_range) == 380

    response = client.get(
        f"/api/sensors/{sensor}/readings",
        params={"start": start.isoformat(), "end": end.isoformat(), "max_points": max_points},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sensor"]["id"] == sensor
    assert at(body["start"]) == start
    assert at(body["end"]) == end
    buckets = body["buckets"]
    assert 0 < len(buckets) <= max_points
    previous_end = start
    for b in buckets:
        b_start, b_end = at(b["start"]), at(b["end"])
        assert previous_end <= b_start < b_end <= end
        assert (b_end - b_start).total_seconds() <= body["bucket_seconds"]
        previous_end = b_end
        values = [v for t, v in data if b_start <= t < b_end]
        assert b["count"] == len(values)
        assert b["min"] == min(values)
        assert b["max"] == max(values)
        assert b["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert sum(b["count"] for b in buckets) == len(expected_in_range)


def test_a_range_of_millennia_is_still_at_most_max_points(client, noisy_sensor):
    sensor, data = noisy_sensor

    response = client.get(
        f"/api/sensors/{sensor}/readings",
        params={"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T00:00:00Z", "max_points": 2},
    )

    assert response.status_code == 200, response.text
    buckets = response.json()["buckets"]
    assert 0 < len(buckets) <= 2
    assert sum(b["count"] for b in buckets) == len(data)
    assert min(b["min"] for b in buckets) == min(v for _, v in data)


def test_readings_default_to_the_last_24_hours(client, conn):
    sensor = add_sensor(conn, "fridge-9")
    add_readings(
        conn,
        sensor,
        [(NOW - timedelta(hours=25), 3.0), (NOW - timedelta(hours=1), 5.0), (NOW, 6.0)],
    )

    body = client.get(f"/api/sensors/{sensor}/readings").json()

    assert at(body["end"]) == NOW
    assert at(body["start"]) == NOW - timedelta(hours=24)
    assert sum(b["count"] for b in body["buckets"]) == 1  # the reading at NOW is excluded
    assert body["buckets"][0]["mean"] == 5.0


def test_time_without_offset_is_taken_as_utc(client, conn):
    sensor = add_sensor(conn, "fridge-10")
    add_readings(conn, sensor, [(datetime(2026, 11, 25, 8, 30, tzinfo=UTC), 4.0)])

    body = client.get(
        f"/api/sensors/{sensor}/readings",
        params={"start": "2026-11-25T08:00:00", "end": "2026-11-25T09:00:00"},
    ).json()

    assert at(body["start"]) == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert [b["count"] for b in body["buckets"]] == [1]


def test_unknown_sensor_is_404_with_a_message(client):
    response = client.get("/api/sensors/987654/readings")

    assert response.status_code == 404
    assert response.json() == {"detail": "sensor 987654 not found"}


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-11-25T10:00:00Z", "2026-11-25T09:00:00Z"),
        ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00Z"),
    ],
)
def test_reversed_or_empty_range_is_422_with_a_message(client, conn, start, end):
    sensor = add_sensor(conn, "fridge-1")

    response = client.get(f"/api/sensors/{sensor}/readings", params={"start": start, "end": end})

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "start"]
    assert "must be before end" in error["msg"]


def test_default_range_before_year_1_is_422(client, conn):
    sensor = add_sensor(conn, "fridge-1")

    response = client.get(f"/api/sensors/{sensor}/readings", params={"end": "0001-01-01T06:00:00Z"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "end"]


@pytest.mark.parametrize(("max_points", "limit_word"), [(1, "greater"), (5001, "less")])
def test_max_points_outside_2_to_5000_is_422_with_a_message(client, conn, max_points, limit_word):
    sensor = add_sensor(conn, "fridge-1")

    response = client.get(f"/api/sensors/{sensor}/readings", params={"max_points": max_points})

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "max_points"]
    assert limit_word in error["msg"]


# --- /api/gateways -----------------------------------------------------------------------


def test_gateways_with_status_and_committed_watermarks(client, conn):
    conn.execute(
        "INSERT INTO telemetry.gateways (id, site, status, state, last_seen) VALUES "
        "('gw-1', 'site-a', 'online', %s, %s), ('gw-2', 'site-b', 'offline', NULL, %s)",
        (
            json.dumps(
                {
                    "v": 1,
                    "gateway": "gw-1",
                    "status": "online",
                    "t": 0,
                    "outbox_depth": 12,
                    "sources": [{"name": "fridge-1", "ok": False, "error": "timeout"}],
                }
            ),
            NOW - timedelta(minutes=1),
            NOW - timedelta(hours=2),
        ),
    )
    # Seqs 1-10 stored, 15-20 stored but 11-14 missing: the watermark stops at 10.
    conn.execute("SELECT telemetry.commit_seq_ranges('gw-1', 'main', ARRAY[1, 15], ARRAY[10, 20])")

    response = client.get("/api/gateways")

    assert response.status_code == 200
    gateways = {g["id"]: g for g in response.json()}
    gw1 = gateways["gw-1"]
    assert (gw1["site"], gw1["status"], gw1["outbox_depth"]) == ("site-a", "online", 12)
    assert at(gw1["last_seen"]) == NOW - timedelta(minutes=1)
    assert gw1["sources"] == [{"name": "fridge-1", "ok": False, "error": "timeout"}]
    (stream,) = gw1["streams"]
    assert (stream["stream"], stream["committed_seq"], stream["pending_ranges"]) == (
        "main",
        10,
        1,
    )
    gw2 = gateways["gw-2"]
    assert (gw2["status"], gw2["outbox_depth"], gw2["sources"], gw2["streams"]) == (
        "offline",
        None,
        [],
        [],
    )


# --- /api/dead-letters -------------------------------------------------------------------


def test_dead_letters_newest_first_text_or_hex_truncated(client, conn):
    add_dead_letter(
        conn, received_at=NOW - timedelta(hours=3), reason="not JSON", payload=b'{"v": 1, "ga'
    )
    add_dead_letter(
        conn,
        received_at=NOW - timedelta(hours=2),
        reason="binary garbage",
        payload=bytes([0x00, 0xFF, 0x10, 0x80]),
    )
    big = ("é" * 3000).encode()  # 6000 bytes of two-byte characters
    add_dead_letter(conn, received_at=NOW - timedelta(hours=1), reason="too big", payload=big)

    letters = client.get("/api/dead-letters").json()

    assert [d["reason"] for d in letters] == ["too big", "binary garbage", "not JSON"]
    too_big, binary, text = letters
    assert (too_big["payload_encoding"], too_big["payload_bytes"]) == ("utf-8", 6000)
    assert too_big["payload_truncated"] is True
    assert too_big["payload"] == "é" * 1024  # the first 2048 bytes
    assert (binary["payload_encoding"], binary["payload"]) == ("hex", "00 ff 10 80")
    assert binary["payload_truncated"] is False
    assert (text["payload_encoding"], text["payload"]) == ("utf-8", '{"v": 1, "ga')
    assert (text["topic"], text["gateway_id"], text["stream"], text["seq"]) == (
        "ct/v1/site-a/gw-1/readings",
        "gw-1",
        "main",
        42,
    )
    assert at(text["received_at"]) == NOW - timedelta(hours=3)

    newest = client.get("/api/dead-letters", params={"limit": 1}).json()
    assert [d["reason"] for d in newest] == ["too big"]
    assert client.get("/api/dead-letters", params={"limit": 0}).status_code == 422


# --- web UI ------------------------------------------------------------------------------


def test_overview_shows_sensors_status_words_and_dead_letter_count(client, conn):
    warm = add_sensor(conn, "fridge-warm")
    fine = add_sensor(conn, "fridge-fine")
    add_sensor(conn, "fridge<b>evil</b>")  # device ids are any printable ASCII
    add_readings(conn, warm, [(NOW - timedelta(minutes=1), 9.4)])
    add_readings(conn, fine, [(NOW - timedelta(minutes=1), 4.2)])
    conn.execute(
        "INSERT INTO telemetry.gateways (id, site, status, last_seen) "
        "VALUES ('gw-1', 'site-a', 'online', %s)",
        (NOW,),
    )
    add_dead_letter(conn, received_at=NOW, reason="bad", payload=b"x")

    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "fridge-warm" in page
    assert "fridge-fine" in page
    assert "9.4 °C" in page
    assert "TOO WARM" in page
    assert "IN RANGE" in page
    assert "NEVER REPORTED" in page
    assert "ONLINE" in page
    assert '<a href="/dead-letters">1 dead letter</a>' in page
    assert "fridge&lt;b&gt;evil&lt;/b&gt;" in page
    assert "<b>evil</b>" not in page
    assert "/static/style.css" in page
    assert client.get("/static/style.css").status_code == 200


def test_sensor_page_has_an_svg_chart_with_threshold_band(client, conn):
    sensor = add_sensor(conn, "fridge-chart")
    add_readings(
        conn,
        sensor,
        [(NOW - timedelta(minutes=5 * i), 5.0 + (i % 7)) for i in range(1, 72)],
    )

    response = client.get(f"/sensors/{sensor}")

    assert response.status_code == 200
    page = response.text
    assert "fridge-chart" in page
    assert "<svg" in page
    assert "<polyline" in page
    assert "Time (UTC)" in page
    # no profile of its own: its quantity's default profile (seeded: fridge-2-8, 0.5 °C strips)
    assert "allowed 2\N{EN DASH}8 °C (alarm profile fridge-2-8)" in page
    assert 'class="limits"' in page
    assert page.count('class="pre-alarm"') == 2
    assert "out-of-range" in page  # readings above 8 °C are drawn in the alarm colour

    week = client.get(f"/sensors/{sensor}", params={"hours": 168})
    assert week.status_code == 200
    assert "<svg" in week.text


def test_sensor_page_without_readings_and_unknown_sensor(client, conn):
    sensor = add_sensor(conn, "fridge-empty")

    empty = client.get(f"/sensors/{sensor}")
    missing = client.get("/sensors/987654")

    assert empty.status_code == 200
    assert "<svg" in empty.text
    assert "No readings in this period" in empty.text
    assert missing.status_code == 404
    assert "sensor 987654 not found" in missing.text


def test_dead_letters_page_escapes_payloads(client, conn):
    add_dead_letter(
        conn, received_at=NOW, reason="unknown unit <Fahrenheit>", payload=b"<script>x</script>"
    )

    page = client.get("/dead-letters").text

    assert "unknown unit &lt;Fahrenheit&gt;" in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<script>" not in page


# --- operations --------------------------------------------------------------------------


def test_health_and_metrics(client):
    assert client.get("/health").json() == {"status": "ok", "database": "ok"}
    assert client.get("/api/sensors").status_code == 200

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'coldtrace_api_requests_total{method="GET",route="/api/sensors",status="200"} 1.0' in text
    )
    assert "coldtrace_api_request_seconds_bucket" in text
    assert client.get("/docs").status_code == 200
    assert "/api/sensors/{sensor_id}/readings" in client.get("/openapi.json").json()["paths"]


def test_unreachable_database_gives_503():
    settings = ApiSettings(
        database_url="postgresql://postgres@127.0.0.1:9/none?connect_timeout=1",
        pool_min_size=0,
        pool_timeout_s=0.5,
        jwt_secret=SecretStr(SECRET),
    )
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        health = client.get("/health")
        api = client.get("/api/sensors")
        page = client.get("/")

    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "database": "unreachable"}
    assert api.status_code == 503
    assert api.json() == {"detail": "database unavailable; see the API log"}
    assert page.status_code == 503
    assert "Database unavailable" in page.text
