"""Lot page server time on the demo data: GET /lots/{id} as a signed-in QA user.

Run from the repository root with the project's Python::

    .venv/bin/python bench/lot_page.py [--days 30] [--requests 50] [--keep]

It creates a database of its own the way ``coldtrace demo`` does (migrated by the owner
role, served as the application role, ``coldtrace.seed.seed_demo`` for the users, item,
fridges and the three demo lots), but ``--days`` earlier, and then gives the demo what
its simulated devices would have produced since: each lot received into its fridge, each
fridge probe read every minute (fridge 3, the failing one, warm for 40 minutes every
day), so the lot pages have a month of history instead of the demo's two minutes. Then
it serves the real app (``erp_core.app.create_app``) through FastAPI's TestClient, signs
in through the sign-in form as ``qa``, and times ``--requests`` lot page requests per lot
after a warm-up: p50/p95/max of the server time (the request's wall time in-process, no
network), with the load average before and after. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import psycopg  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from coldtrace.demo import DEMO_APP_URL, DEMO_OWNER_URL, GATEWAY  # noqa: E402
from coldtrace.seed import DEMO_PASSWORD, DemoLots, seed_demo  # noqa: E402
from db import migrate  # noqa: E402
from erp_core.app import create_app  # noqa: E402
from erp_core.audit import keys  # noqa: E402
from erp_core.audit.settings import RecordConfig  # noqa: E402
from erp_core.movements.models import MovementIn  # noqa: E402
from erp_core.movements.service import record_movement  # noqa: E402
from erp_core.settings import ApiSettings  # noqa: E402

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
BENCH_KEYS = RecordConfig(keys.parse(f"bench-1 {secrets.token_hex(32)}", source="bench"), None)
SECRET = "bench-secret-0123456789abcdef0123"
TARGET_MS = 1000

# One reading a minute per demo fridge probe since the lots arrived; fridge 3 (the failing
# one) is at 9.5 °C for 40 minutes every day, the others swing gently around 5 °C.
_READINGS = """
INSERT INTO telemetry.readings (time, sensor_id, value, received_at)
SELECT %(start)s + m * interval '1 minute', s.id,
       CASE WHEN s.uid = 'FRIDGE-3' AND m %% 1440 < 40 THEN 9.5
            ELSE 5 + sin(m * 2 * pi() / 1440) + random() * 0.2 END,
       %(start)s + m * interval '1 minute' + interval '20 seconds'
  FROM telemetry.sensors s, generate_series(0, %(minutes)s - 1) AS m
 WHERE s.uid IN ('FRIDGE-1', 'FRIDGE-2', 'FRIDGE-3')
"""


def urls(dbname: str) -> tuple[str, str]:
    """The bench database as the application role and as the owner (as the demo's)."""
    app = os.environ.get("COLDTRACE_DATABASE_URL", DEMO_APP_URL)
    owner = os.environ.get("COLDTRACE_DATABASE_OWNER_URL", DEMO_OWNER_URL)
    return f"{app.rsplit('/', 1)[0]}/{dbname}", f"{owner.rsplit('/', 1)[0]}/{dbname}"


def build(dbname: str, days: int) -> tuple[DemoLots, int]:
    """Migrate, seed the demo ``days`` before NOW, receive the lots, add the readings."""
    app_url, owner_url = urls(dbname)
    migrate.upgrade(owner_url)
    start = NOW - timedelta(days=days)
    with psycopg.connect(app_url) as conn:
        lots = seed_demo(conn, now=start, gateway=GATEWAY, keyring=BENCH_KEYS.keyring)
        arrived = start + timedelta(minutes=1)
        for lot_id, fridge in zip(
            (lots.clean, lots.shipped, lots.excursion), lots.fridges, strict=True
        ):
            move = MovementIn(lot_id=lot_id, quantity=100, to_location_id=fridge, moved_at=arrived)
            record_movement(conn, movement=move, now=arrived)
        conn.execute(_READINGS, {"start": start, "minutes": days * 1440})
        rows = conn.execute("SELECT count(*) FROM telemetry.readings").fetchone()
    return lots, int(rows[0]) if rows else 0


def measure(
    dbname: str, lot_ids: dict[str, int], *, requests: int, warmup: int = 3
) -> dict[str, list[float]]:
    """Seconds per lot page request, per lot, after ``warmup`` warm-up requests each."""
    settings = ApiSettings(
        database_url=urls(dbname)[0],
        pool_min_size=1,
        pool_max_size=2,
        jwt_secret=SecretStr(SECRET),
    )
    timings: dict[str, list[float]] = {name: [] for name in lot_ids}
    with TestClient(create_app(settings, clock=lambda: NOW, records=BENCH_KEYS)) as client:
        sign_in(client, "qa", DEMO_PASSWORD)
        for name, lot_id in lot_ids.items():
            for i in range(requests + warmup):
                t0 = time.perf_counter()
                r = client.get(f"/lots/{lot_id}")
                elapsed = time.perf_counter() - t0
                if r.status_code != 200 or "<svg" not in r.text:
                    raise SystemExit(f"lot page {lot_id}: {r.status_code}")
                if i >= warmup:
                    timings[name].append(elapsed)
    return timings


def sign_in(client: TestClient, username: str, password: str) -> None:
    """Sign in through the real sign-in form (its CSRF token), keeping the session cookie."""
    form = client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if token is None:
        raise SystemExit("no sign-in form")
    data = {"username": username, "password": password, "next": "/", "csrf_token": token[1]}
    answer = client.post("/sign-in", data=data, follow_redirects=False)
    if answer.status_code != 303:
        raise SystemExit(f"sign-in refused: {answer.status_code}")


def load() -> str:
    """The load averages over 1, 5 and 15 minutes."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    """Build the database, time the lot pages, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    print(f"start: {load()}")
    dbname = f"ct_bench_lotpage_{uuid.uuid4().hex[:8]}"
    try:
        t0 = time.perf_counter()
        lots, rows = build(dbname, args.days)
        print(
            f"built {dbname}: {rows:,} readings over {args.days} days in "
            f"{time.perf_counter() - t0:.0f} s"
        )
        names = dict(zip(lots.numbers, (lots.clean, lots.shipped, lots.excursion), strict=True))
        timings = measure(dbname, names, requests=args.requests)
        print(f"after the requests: {load()}")
    finally:
        if not args.keep:
            migrate.drop_database(urls(dbname)[1])
    every: list[float] = []
    for name, seconds in timings.items():
        every += seconds
        print(f"  {name}: {_figures(seconds)}")
    print(
        f"all {len(every)} requests: {_figures(every)}  (target < {TARGET_MS} ms)  "
        f"[{platform.python_version()}, {os.cpu_count()} CPUs]"
    )
    print(f"end: {load()}")


def _figures(seconds: list[float]) -> str:
    ms = sorted(t * 1000 for t in seconds)
    p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
    return f"p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms"


if __name__ == "__main__":
    main()
