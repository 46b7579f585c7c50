"""Lot history latency: GET /api/lots/{id}/history on a 50-million-row readings table.

Run from the repository root with the project's Python::

    .venv/bin/python bench/lot_history.py [--rows 50000000] [--requests 50] [--keep]
    .venv/bin/python bench/lot_history.py --reuse ct_bench_lot_1234abcd   # skip the build
    .venv/bin/python bench/lot_history.py --reuse … --cold --raw   # and the other paths

It creates a database of its own (dropped afterwards unless ``--keep``), migrates it, and
fills ``telemetry.readings`` server-side with ``generate_series`` (two connections in
parallel, the primary key dropped during the load and rebuilt after it):

* a lot that sat for a whole year in a cold room watched by three probes, one reading a
  minute each (3 x 525,600 rows, minus two-hour outages of one probe every ~28 days),
  with a 25-minute door-open excursion every 9 days;
* filler sensors (100 of them, one reading a minute) for the rest of ``--rows``.

Then it serves the real app (``erp_core.app.create_app``) through FastAPI's TestClient
and times ``--requests`` history requests after a warm-up, reporting p50/p95/max and
the build time. ``--cold`` first empties the rollup and times the request that rebuilds
it; ``--raw`` afterwards times the history in-process on the rollup and on every raw
reading (``use_rollup=False``), side by side, and checks that they agree. The load
average is printed before and after. Results and their reading: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import psycopg  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from db import migrate  # noqa: E402
from erp_core.app import create_app  # noqa: E402
from erp_core.audit import keys  # noqa: E402
from erp_core.audit.service import set_actor  # noqa: E402
from erp_core.audit.settings import RecordConfig  # noqa: E402
from erp_core.auth import service as auth_service  # noqa: E402
from erp_core.auth import tokens  # noqa: E402
from erp_core.auth.models import Role  # noqa: E402
from erp_core.lot_history.history import lot_history  # noqa: E402
from erp_core.lot_history.models import HistoryBucket  # noqa: E402
from erp_core.settings import ApiSettings  # noqa: E402

ADMIN_URL = os.environ.get(
    "COLDTRACE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_MINUTES = 525_600
NOW = YEAR_START + timedelta(minutes=YEAR_MINUTES)
LOT_SENSORS = 3
FILLER_SENSORS = 100
# A history read signs nothing, but the app starts only with a record key: one per run.
BENCH_KEYS = RecordConfig(keys.parse(f"bench-1 {secrets.token_hex(32)}", source="bench"), None)
SECRET = "bench-secret-0123456789abcdef0123"

# Readings are "received" 20 s after they were taken, as from a live gateway (the rollup
# treats readings received in its last 15 minutes as possibly new).
# One probe (the second) is silent for two hours every 40,000 minutes (~28 days).
_LOT_READINGS = """
INSERT INTO telemetry.readings (time, sensor_id, value, received_at)
SELECT %(start)s + m * interval '1 minute', %(sensor)s,
       CASE WHEN m %% 12960 < 25 THEN 9.5
            ELSE 5 + sin(m * 2 * pi() / 1440) + %(offset)s + random() * 0.2 END,
       %(start)s + m * interval '1 minute' + interval '20 seconds'
  FROM generate_series(0, %(minutes)s - 1) AS m
 WHERE NOT (%(gappy)s AND m %% 40000 < 120)
"""

_FILLER = """
INSERT INTO telemetry.readings (time, sensor_id, value, received_at)
SELECT %(start)s + m * interval '1 minute', s, 4 + random() * 3,
       %(start)s + m * interval '1 minute' + interval '20 seconds'
  FROM generate_series(%(first)s::int, %(last)s::int) AS s,
       generate_series(0, %(minutes)s - 1) AS m
"""


def url_of(dbname: str) -> str:
    """The admin URL pointing at ``dbname``."""
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{dbname}"


def lot_rows() -> int:
    """How many readings the three lot probes produce (computed like the SQL above)."""
    gaps = sum(1 for m in range(YEAR_MINUTES) if m % 40000 < 120)
    return LOT_SENSORS * YEAR_MINUTES - gaps


def build(dbname: str, rows: int) -> tuple[int, float]:
    """Create, migrate and fill the database; the lot's id and the build seconds."""
    url = url_of(dbname)
    t0 = time.perf_counter()
    migrate.upgrade(url, url.replace("postgresql://", "postgresql+psycopg://", 1))
    with psycopg.connect(url) as conn:
        set_actor(conn, user="bench")
        sensors = [
            conn.execute(
                "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id) "
                "VALUES (%s, 'temperature', 'Cel', 'bench-gw') RETURNING id",
                (f"probe-{i}",),
            ).fetchone()[0]
            for i in range(LOT_SENSORS + FILLER_SENSORS)
        ]
        lot_id = _master_data(conn, sensors[:LOT_SENSORS])
        auth_service.create_user(
            conn,
            username="viewer",
            full_name="Bench Viewer",
            password="Frost-Lantern-Quay-4711!",
            roles=[Role.OPERATOR],
            now=NOW,
            keyring=BENCH_KEYS.keyring,  # bearer tokens below: the binding is not read
        )
        conn.execute("ALTER TABLE telemetry.readings DROP CONSTRAINT readings_pkey")
    filler_total = max(0, rows - lot_rows())
    per_sensor = filler_total // FILLER_SENSORS
    jobs: list[tuple[str, dict[str, object]]] = [
        (
            _LOT_READINGS,
            {
                "start": YEAR_START,
                "sensor": sensor,
                "offset": i * 0.1,
                "minutes": YEAR_MINUTES,
                "gappy": i == 1,
            },
        )
        for i, sensor in enumerate(sensors[:LOT_SENSORS])
    ]
    fillers = sensors[LOT_SENSORS:]
    for k in range(0, FILLER_SENSORS, 5):
        first, last = fillers[k], fillers[min(k + 4, FILLER_SENSORS - 1)]
        jobs.append(
            (_FILLER, {"start": YEAR_START, "first": first, "last": last, "minutes": per_sensor})
        )
    _run_parallel(url, jobs, workers=2)
    print(f"  rows loaded in {time.perf_counter() - t0:.0f} s; building the primary key")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("ALTER TABLE telemetry.readings ADD PRIMARY KEY (sensor_id, time)")
        conn.execute("VACUUM ANALYZE telemetry.readings")
    return lot_id, time.perf_counter() - t0


def _master_data(conn: psycopg.Connection, probes: list[int]) -> int:
    site = conn.execute(
        "INSERT INTO erp.locations (code, name, kind) VALUES ('S', 'Site', 'site') RETURNING id"
    ).fetchone()[0]
    room = conn.execute(
        "INSERT INTO erp.locations (code, name, kind, parent_id) "
        "VALUES ('CR-1', 'Cold room 1', 'cold_room', %s) RETURNING id",
        (site,),
    ).fetchone()[0]
    for probe in probes:
        conn.execute(
            "INSERT INTO erp.sensor_assignments (sensor_id, location_id, valid_from) "
            "VALUES (%s, %s, %s)",
            (probe, room, YEAR_START - timedelta(days=30)),
        )
    item = conn.execute(
        "INSERT INTO erp.items (gtin, name, range_low, range_high, mkt_limit, "
        "tor_budget_minutes) VALUES ('04006381333931', 'Graft', 2, 8, 8, 1440) RETURNING id"
    ).fetchone()[0]
    lot = conn.execute(
        "INSERT INTO erp.lots (item_id, lot_number, expires_on, quantity) "
        "VALUES (%s, 'BENCH-1', '2027-01-01', 100) RETURNING id",
        (item,),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO erp.stock_movements (lot_id, quantity, to_location_id, moved_at, source) "
        "VALUES (%s, 100, %s, %s, 'manual')",
        (lot, room, YEAR_START),
    )
    return int(lot)


def _run_parallel(url: str, jobs: list[tuple[str, dict[str, object]]], *, workers: int) -> None:
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET synchronous_commit = off")
            while True:
                with lock:
                    if not jobs or errors:
                        return
                    query, params = jobs.pop(0)
                try:
                    conn.execute(query, params)
                except BaseException as err:
                    with lock:
                        errors.append(err)
                    return

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def measure(
    dbname: str, lot_id: int, *, requests: int, max_points: int, warmup: int = 3
) -> list[float]:
    """Seconds per history request, after ``warmup`` warm-up requests."""
    settings = ApiSettings(
        database_url=url_of(dbname),
        pool_min_size=1,
        pool_max_size=2,
        jwt_secret=SecretStr(SECRET),
        statement_timeout_ms=120_000,
    )
    token = tokens.issue(username="viewer", secret=SECRET, now=NOW, lifetime=timedelta(hours=4))
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/api/lots/{lot_id}/history?max_points={max_points}"
    timings = []
    with TestClient(create_app(settings, clock=lambda: NOW, records=BENCH_KEYS)) as client:
        for i in range(requests + warmup):
            t0 = time.perf_counter()
            r = client.get(path, headers=headers)
            elapsed = time.perf_counter() - t0
            r.raise_for_status()
            if i == 0:
                body = r.json()
                stats = body["stats"]
                print(
                    f"  history: {stats['readings']:,} readings (expected {lot_rows():,}), "
                    f"{len(body['buckets'])} buckets, MKT {stats['mkt']:.3f} °C, "
                    f"TOR {stats['tor_cumulative_seconds'] / 60:.0f} min, "
                    f"coverage {stats['coverage_share']:.5f}, {len(stats['gaps'])} gaps"
                )
                if stats["readings"] != lot_rows():
                    raise SystemExit("the history does not hold every reading of the lot")
            if i >= warmup:
                timings.append(elapsed)
    return timings


def cold_request(dbname: str, lot_id: int, *, max_points: int) -> float:
    """Seconds of the first history request after the rollup was emptied."""
    with psycopg.connect(url_of(dbname)) as conn:
        conn.execute("TRUNCATE erp.reading_hours, erp.reading_days, erp.reading_hours_state")
    return measure(dbname, lot_id, requests=1, max_points=max_points, warmup=0)[0]


def compare_paths(dbname: str, lot_id: int, *, max_points: int, runs: int = 10) -> None:
    """Time the history in-process on the rollup and on every raw reading; compare them."""
    with psycopg.connect(url_of(dbname)) as conn:
        fast_s = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fast = lot_history(conn, lot_id=lot_id, max_points=max_points, now=NOW)
            fast_s.append(time.perf_counter() - t0)
            conn.commit()
        t0 = time.perf_counter()
        slow = lot_history(conn, lot_id=lot_id, max_points=max_points, now=NOW, use_rollup=False)
        slow_s = time.perf_counter() - t0
        conn.rollback()
    a, b = fast.stats, slow.stats
    assert a is not None
    assert b is not None
    names = ("readings", "min", "max", "tor_cumulative_seconds", "out_of_range", "gaps")
    differ = [name for name in names if getattr(a, name) != getattr(b, name)]
    if [_bucket_key(k) for k in fast.buckets] != [_bucket_key(k) for k in slow.buckets]:
        differ.append("buckets")
    print(
        f"  in-process: rollup median {statistics.median(fast_s) * 1000:.0f} ms (of {runs}), "
        f"every raw reading {slow_s * 1000:.0f} ms; equal: {', '.join(names)} and buckets "
        f"unless listed here: {differ}; mean differs by {abs(a.mean - b.mean):.1e}, "
        f"MKT by {abs(a.mkt - b.mkt):.1e} °C"
    )
    if differ:
        raise SystemExit("the rollup path and the raw path disagree")


def _bucket_key(k: HistoryBucket) -> tuple[object, ...]:
    return (k.start, k.end, k.count, k.min, k.max, tuple(k.sensor_ids))


def load() -> str:
    """The load averages over 1, 5 and 15 minutes."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    """Build (or reuse) the database, time the endpoint, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--max-points", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", metavar="DBNAME", help="a database built by --keep")
    parser.add_argument("--cold", action="store_true", help="first time a rollup rebuild")
    parser.add_argument("--raw", action="store_true", help="then compare with the raw path")
    args = parser.parse_args()
    print(f"start: {load()}")
    dbname = args.reuse or f"ct_bench_lot_{uuid.uuid4().hex[:8]}"
    try:
        if args.reuse:
            with psycopg.connect(url_of(dbname)) as conn:
                lot_id = conn.execute("SELECT id FROM erp.lots WHERE lot_number = 'BENCH-1'")
                lot_id = int(lot_id.fetchone()[0])
                total = conn.execute(
                    "SELECT reltuples::bigint FROM pg_class "
                    "WHERE oid = 'telemetry.readings'::regclass"
                ).fetchone()[0]
            print(f"reusing {dbname}: about {total:,} readings")
        else:
            print(f"building {dbname} with {args.rows:,} readings …")
            lot_id, seconds = build(dbname, args.rows)
            print(f"  built in {seconds:.0f} s ({seconds / 60:.1f} min)")
        if args.cold:
            seconds = cold_request(dbname, lot_id, max_points=args.max_points)
            print(f"  first request after emptying the rollup: {seconds * 1000:.0f} ms")
        timings = measure(dbname, lot_id, requests=args.requests, max_points=args.max_points)
        print(f"  after the requests: {load()}")
        if args.raw:
            compare_paths(dbname, lot_id, max_points=args.max_points)
    finally:
        if not args.keep and not args.reuse:
            migrate.drop_database(url_of(dbname))
    ms = sorted(t * 1000 for t in timings)
    p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
    print(
        f"{len(ms)} requests: p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, "
        f"max {ms[-1]:.0f} ms  (target p95 < 150 ms)  "
        f"[{platform.python_version()}, {os.cpu_count()} CPUs]"
    )
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
