"""``erp.lot_readings`` — what Grafana and reports read — and ``GET /api/lots/{id}/history``
agree on every reading, the held value at arrival included.

Scenario (minutes after ``at(0)``, six hours before the API's clock; every probe reads on
even minutes from -60 to 360):

* fridge FA, probe ``pa`` there since long before: the lot arrives at 11, one minute
  after ``pa`` read 9.5 °C (out of range) — held value at arrival;
* a second probe ``pa2`` joins FA at 40, bringing readings of 20 °C from elsewhere
  (before 40): nothing of those is held;
* at 70 the lot moves to the dock D, whose probe ``pd`` was silent from 40 to 75: its
  last reading (38) is 32 minutes old — older than max_hold (15), so not held;
* at 101 a shipment departs from D on truck T (its own probe ``pt`` there all along,
  7.5 °C at 100; the shipment's logger ``pl`` joins the truck at 101, 20 °C before);
* at 201 the shipment arrives in fridge FB (probe ``pb``, 2.5 °C at 200); the lot is
  still there at the API's "now" (360).

The held values are worked out here by hand for three max_hold settings. The API's
buckets and statistics are then recomputed from the rows the reader role gets from
``erp.lot_readings`` (plain Python, no code under test) and compared, for a chart of
5-second buckets (built in SQL) and one of 2-hour buckets (built from the rollup).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
import pytest

from erp_core.lot_history import history
from erp_core.release.service import gather_evidence
from tests.integration.stock_fixtures import (
    NOW,
    StockApi,
    api_for,
    assign,
    at,
    iso,
    item,
    lot,
    move,
    sensor,
    site_with,
)

A = 83_144.0 / 8.3144  # ΔH/R, K
LOW, HIGH = 2.0, 8.0


@pytest.fixture
def api(db_url: str) -> Iterator[StockApi]:
    yield from api_for(db_url)


def readings(db_url: str, sensor_id: int, value_at: dict[int, float], *, skip=range(0)) -> None:
    """Readings on every even minute from -60 to 360 (not in ``skip``), 5 °C unless given."""
    with (
        psycopg.connect(db_url) as conn,
        conn.cursor() as cur,
        cur.copy("COPY telemetry.readings (time, sensor_id, value) FROM STDIN") as copy,
    ):
        for m in range(-60, 361, 2):
            if m not in skip:
                copy.write_row((at(m), sensor_id, value_at.get(m, 5.0)))


@pytest.fixture
def story(api: StockApi, db_url: str) -> dict[str, int]:
    loc = site_with(api, ("FA", "fridge"), ("D", "dock"), ("T", "truck"), ("FB", "fridge"))
    ids = {name: sensor(db_url, name) for name in ("pa", "pa2", "pd", "pt", "pl", "pb")}
    for name, where in (("pa", "FA"), ("pd", "D"), ("pt", "T"), ("pb", "FB")):
        assign(api, ids[name], loc[where], -600)
    assign(api, ids["pa2"], loc["FA"], 40)
    readings(db_url, ids["pa"], {10: 9.5})
    readings(db_url, ids["pa2"], {m: 20.0 if m < 40 else 4.0 for m in range(-60, 361, 2)})
    readings(db_url, ids["pd"], dict.fromkeys(range(-60, 361, 2), 6.0), skip=range(40, 76))
    readings(db_url, ids["pt"], {m: 7.5 if m == 100 else 6.5 for m in range(-60, 361, 2)})
    readings(db_url, ids["pl"], {m: 20.0 if m < 101 else 6.0 for m in range(-60, 361, 2)})
    readings(db_url, ids["pb"], {m: 2.5 if m == 200 else 3.0 for m in range(-60, 361, 2)})
    lot_id = lot(api, item(api))
    move(api, lot_id, None, loc["FA"], 11)
    move(api, lot_id, loc["FA"], loc["D"], 70)
    shipment = api.post(
        "wh",
        "/api/shipments",
        {
            "reference": "SHP-1",
            "truck_location_id": loc["T"],
            "origin_location_id": loc["D"],
            "destination_location_id": loc["FB"],
            "lots": [{"lot_id": lot_id, "quantity": 100}],
            "logger_sensor_ids": [ids["pl"]],
        },
    )
    api.post("wh", f"/api/shipments/{shipment['id']}/depart", {"time": iso(101)}, 200)
    api.post("wh", f"/api/shipments/{shipment['id']}/arrive", {"time": iso(201)}, 200)
    return {**ids, "lot": lot_id}


def view_rows(reader_db_url: str, lot_id: int, max_hold: timedelta) -> list[tuple]:
    """(sensor, time, value, held, read_at, held_until) as Grafana's role reads them."""
    with psycopg.connect(reader_db_url) as conn:
        return conn.execute(
            "SELECT sensor_id, time, value, held, read_at, held_until "
            "FROM erp.lot_readings(%s, %s, %s, %s) ORDER BY time, sensor_id, held",
            (lot_id, at(11), NOW, max_hold),
        ).fetchall()


# (sensor, held from, value, read at, held until), minutes, per max_hold in minutes.
HELD = {
    15: [("pa", 11, 9.5, 10, 12), ("pt", 101, 7.5, 100, 102), ("pb", 201, 2.5, 200, 202)],
    1.5: [("pa", 11, 9.5, 10, 11.5), ("pt", 101, 7.5, 100, 101.5), ("pb", 201, 2.5, 200, 201.5)],
    60: [
        ("pa", 11, 9.5, 10, 12),
        ("pd", 70, 6.0, 38, 76),
        ("pt", 101, 7.5, 100, 102),
        ("pb", 201, 2.5, 200, 202),
    ],
}


def union(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def seconds(spans: list[tuple[datetime, datetime]]) -> float:
    return sum((b - a).total_seconds() for a, b in spans)


def figures(rows: list[tuple]) -> tuple[float, float, list[tuple[datetime, datetime]], float]:
    """From (sensor, time, value, held, read_at, held_until) rows, as a report would: the
    mean and MKT weighted by held time, the out-of-range spans and the covered seconds."""
    weights = [((r[5] - r[1]).total_seconds(), r[2]) for r in rows]
    total = sum(w for w, _ in weights)
    mean = sum(w * v for w, v in weights) / total
    mkt = A / -math.log(sum(w * math.exp(-A / (v + 273.15)) for w, v in weights) / total)
    out = union([(r[1], r[5]) for r in rows if not LOW <= r[2] <= HIGH])
    return mean, mkt - 273.15, out, seconds(union([(r[1], r[5]) for r in rows]))


def assert_buckets_hold_every_row(buckets: list[dict], rows: list[tuple]) -> None:
    """Each bucket is exactly the view's rows whose time falls in it; no row is left out."""
    placed = 0
    for b in buckets:
        start, end = datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"])
        inside = [r for r in rows if start <= r[1] < end]
        values = [r[2] for r in inside]
        assert b["count"] == len(inside), (start, inside)
        assert (b["min"], b["max"]) == (min(values), max(values))
        assert b["mean"] == pytest.approx(sum(values) / len(values))
        assert b["sensor_ids"] == sorted({r[0] for r in inside})
        placed += len(inside)
    assert placed == len(rows)


@pytest.mark.parametrize("max_hold_min", [15, 1.5, 60])
def test_the_lot_readings_view_and_the_history_api_agree_on_every_reading(
    api: StockApi, reader_db_url: str, story: dict[str, int], max_hold_min: float
) -> None:
    max_hold = timedelta(minutes=max_hold_min)
    rows = view_rows(reader_db_url, story["lot"], max_hold)
    name = {v: k for k, v in story.items() if k != "lot"}

    # The held values at arrival, as worked out by hand above.
    held = [(name[s], t, v, read, until) for s, t, v, h, read, until in rows if h]
    assert held == [
        (s, at(frm), v, at(read), at(until)) for s, frm, v, read, until in HELD[max_hold_min]
    ]
    # Each reading of a segment, and only those (20 °C was read elsewhere, before).
    taken = [(name[s], t) for s, t, _, h, _, _ in rows if not h]
    expected = sorted(
        [("pa", at(m)) for m in range(12, 70, 2)]
        + [("pa2", at(m)) for m in range(40, 70, 2)]
        + [("pd", at(m)) for m in range(76, 101, 2)]
        + [(s, at(m)) for s in ("pt", "pl") for m in range(102, 201, 2)]
        + [("pb", at(m)) for m in range(202, 360, 2)],
        key=lambda x: (x[1], story[x[0]]),
    )
    assert taken == expected
    assert all(read == t for _, t, _, h, read, _ in rows if not h)
    assert 20.0 not in {r[2] for r in rows}

    life = (NOW - at(11)).total_seconds()
    path = f"/api/lots/{story['lot']}/history?max_hold_minutes={max_hold_min}"
    fine = api.get("op", path + "&max_points=5000")
    assert fine["bucket_seconds"] == 5  # a 5-second chart: the SQL-built buckets
    coarse = api.get("op", path + "&max_points=4")
    assert coarse["bucket_seconds"] == 7200  # 2-hour buckets: built from the rollup
    for body in (fine, coarse):
        assert_buckets_hold_every_row(body["buckets"], rows)
        stats = body["stats"]
        assert stats["readings"] == len(taken)
        assert stats["min"] == min(r[2] for r in rows)
        assert stats["max"] == max(r[2] for r in rows) == 9.5  # held at arrival, out of range
        mean, mkt, out, covered = figures(rows)
        assert stats["mean"] == pytest.approx(mean)
        assert stats["mkt"] == pytest.approx(mkt)
        assert [
            (datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"]))
            for s in stats["out_of_range"]
        ] == out
        assert stats["tor_cumulative_seconds"] == seconds(out)
        assert stats["covered_seconds"] == pytest.approx(covered)
        assert stats["coverage_share"] == pytest.approx(covered / life)


def test_grafana_s_documented_query_gets_the_held_value_and_the_api_default(
    api: StockApi, db_url: str, reader_db_url: str, story: dict[str, int]
) -> None:
    """``erp.lot_readings($lot, $from, $to)`` (three arguments, docs/erp-stock.md) uses the
    API's and the release rules' max_hold; the version without held values is gone."""
    with psycopg.connect(reader_db_url) as conn:
        three = conn.execute(
            "SELECT * FROM erp.lot_readings(%s, %s, %s) ORDER BY time, sensor_id, held",
            (story["lot"], at(11), NOW),
        ).fetchall()
        old = conn.execute(
            "SELECT to_regprocedure('erp.lot_readings(bigint, timestamptz, timestamptz)')"
        ).fetchone()
    assert old == (None,)
    assert [r[4:9] for r in three] == [
        (t, v, h, read, until)
        for _, t, v, h, read, until in view_rows(
            reader_db_url, story["lot"], history.DEFAULT_MAX_HOLD
        )
    ]
    assert sum(1 for r in three if r[6]) == 3  # pa, pt, pb: the 15-minute default
    body = api.get("op", f"/api/lots/{story['lot']}/history")
    assert body["stats"]["max_hold_seconds"] == history.DEFAULT_MAX_HOLD.total_seconds()

    # The release rules' evidence is the same figures (the signed record carries them).
    _, mkt, out, covered = figures([(r[0], *r[4:9]) for r in three])
    with psycopg.connect(db_url) as conn:
        evidence = gather_evidence(conn, lot_id=story["lot"], now=NOW)
    assert evidence.mkt == pytest.approx(mkt)
    assert evidence.tor_cumulative_min == seconds(out) / 60
    assert evidence.coverage == pytest.approx(covered / (NOW - at(11)).total_seconds())
