"""Year-long dashboard panels on a 50-million-row readings table, as Grafana sends them.

Run from the repository root with the project's Python, on a database built by
``bench/lot_history.py --keep`` (a cold room with three probes for a whole year among
50 M readings; its history requests bring the rollup up to date)::

    .venv/bin/python bench/lot_history.py --keep --requests 3     # prints the database
    .venv/bin/python bench/dashboard_panels.py --reuse ct_bench_lot_XXXXXXXX [--runs 20]

Each panel query of the location and batch dashboards is expanded by
``dashboards.macros`` for the year (``$__interval`` ``1h``, ``12h`` and ``1d``: the hourly
and the daily rollup) and run ``--runs`` times as the read-only role Grafana logs in as,
after one warm-up; p50/p95/max per query and interval. Results: docs/benchmarks.md.

The batch figures panel reads the row ``coldtrace erp-jobs`` keeps in ``erp.lot_figures``
(``erp_core.lot_history.figures``). Before the panels, the script computes that row for
the lot as the job does, as of the end of the year, ``--figure-runs`` times (the last
one committed), and prints what it costs, with the time of the job's look for stale lots.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import psycopg  # noqa: E402

from dashboards import queries as q  # noqa: E402
from dashboards.macros import QueryContext, interpolate  # noqa: E402
from erp_core.lot_history import figures  # noqa: E402

ADMIN_URL = os.environ.get(
    "COLDTRACE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
READER_LOGIN = os.environ.get("COLDTRACE_BENCH_READER_LOGIN", "coldtrace_reader:coldtrace_reader")
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)  # as bench/lot_history.py
YEAR_END = YEAR_START + timedelta(days=365)
PANELS = (
    q.LOCATION_HISTORY,
    q.LOCATION_BAND,
    q.LOCATION_STATS,
    q.LOCATION_EVENTS,
    q.LOCATION_ALERTS,
    q.BATCH_HISTORY,
    q.BATCH_EXCURSIONS,
    q.BATCH_STATS,
)
INTERVALS = (timedelta(hours=1), timedelta(hours=12), timedelta(days=1))


def reader_url(dbname: str) -> str:
    """The reader role's login to ``dbname`` on the admin URL's server."""
    rest = ADMIN_URL.split("://", 1)[1].split("@", 1)[-1].rsplit("/", 1)[0]
    return f"postgresql://{READER_LOGIN}@{rest}/{dbname}"


def _summary(times: list[float]) -> str:
    times = sorted(times)
    p95 = times[max(0, round(0.95 * len(times)) - 1)]
    return f"p50 {statistics.median(times):7.1f} ms, p95 {p95:7.1f} ms, max {times[-1]:7.1f} ms"


def refresh_figures(dbname: str, runs: int) -> None:
    """Compute the lot's ``erp.lot_figures`` row as erp-jobs does, ``runs`` times; timings."""
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{dbname}"
    with psycopg.connect(url) as conn:
        lot = conn.execute("SELECT id FROM erp.lots WHERE lot_number = 'BENCH-1'").fetchone()[0]
        looks, computes = [], []
        for i in range(runs):
            t0 = time.perf_counter()
            figures.stale_lots(conn, now=YEAR_END)
            looks.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            figures.refresh(conn, lot_ids=[lot], now=YEAR_END)
            computes.append((time.perf_counter() - t0) * 1000)
            if i < runs - 1:
                conn.rollback()
        conn.commit()
    print(f"{'figures: stale look':28}: {_summary(looks)}")
    print(f"{'figures: compute one lot':28}: {_summary(computes)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", metavar="DBNAME", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--figure-runs", type=int, default=10)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}")
    refresh_figures(args.reuse, args.figure_runs)
    with psycopg.connect(reader_url(args.reuse)) as conn:
        location, lot = conn.execute(
            "SELECT (SELECT id FROM erp.locations WHERE code = 'CR-1'),"
            " (SELECT id FROM erp.lots WHERE lot_number = 'BENCH-1')"
        ).fetchone()
        readings = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = 'telemetry.readings'::regclass"
        ).fetchone()[0]
        print(f"{args.reuse}: ~{readings:,} readings; location {location}, lot {lot}")
        variables = {"location": str(location), "lot": str(lot)}
        for query in PANELS:
            for interval in INTERVALS:
                ctx = QueryContext(YEAR_START, YEAR_END, interval, variables)
                sql = interpolate(query.sql, ctx).encode()
                rows = len(conn.execute(sql).fetchall())  # warm-up
                times = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    conn.execute(sql).fetchall()
                    times.append((time.perf_counter() - t0) * 1000)
                times.sort()
                p95 = times[max(0, round(0.95 * len(times)) - 1)]
                print(
                    f"{query.key:20} {interval!s:>16}: {rows:5} rows, p50"
                    f" {statistics.median(times):7.1f} ms, p95 {p95:7.1f} ms,"
                    f" max {times[-1]:7.1f} ms"
                )
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
