"""Genealogy latency: a lot's backward and forward genealogy among 100,000 lots, 5 levels deep.

Run from the repository root with the project's Python::

    .venv/bin/python bench/genealogy.py [--lots 100000] [--queries 200] [--keep]

On a database of its own (migrated, dropped afterwards unless ``--keep``) it builds, with
server-side SQL (triggers set aside for the build by the superuser: it is the bench's own
database), six levels of lots: raw component lots (level 0) and five levels of
assemblies, each lot of level k made by one work order that consumed three lots of level
k-1 picked at random. Then it times ``erp_core.production.genealogy.genealogy`` — the
service the API calls, on the one SQL definition ``erp.lot_genealogy`` — backward from
random top-level lots (every lot below, five levels) and forward from random raw lots
(every lot above), and prints p50/p95/max with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import psycopg  # noqa: E402

from db import migrate  # noqa: E402
from erp_core.production.genealogy import genealogy  # noqa: E402
from identifiers.gtin import check_digit  # noqa: E402

ADMIN_URL = os.environ.get(
    "COLDTRACE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SHARES = (0.48, 0.24, 0.12, 0.08, 0.05, 0.03)  # of all lots, level 0 (raw) to level 5
PER_ORDER = 3  # lots of the level below consumed by each work order

BUILD = """
INSERT INTO erp.locations (code, name, kind) VALUES ('S', 'Site', 'site');
INSERT INTO erp.locations (code, name, kind, parent_id)
    SELECT 'WC', 'Line', 'work_center', id FROM erp.locations WHERE code = 'S';
INSERT INTO erp.boms (item_id, version, status, effective_from, approved_signature_id)
    SELECT id, 1, 'effective', now(), 0 FROM erp.items WHERE name <> 'level 0';
INSERT INTO erp.bom_lines (bom_id, line, component_item_id, quantity_per)
    SELECT b.id, 1, c.id, %(per)s FROM erp.boms b JOIN erp.items p ON p.id = b.item_id
      JOIN erp.items c ON c.name = 'level ' || (substr(p.name, 7)::int - 1);
CREATE TEMP TABLE plan (level int, n int);
"""

LOTS = """
INSERT INTO erp.lots (item_id, lot_number, expires_on, quantity, status)
SELECT i.id, 'L' || p.level || '-' || g, DATE '2030-01-01', 10, 'released'
  FROM plan p JOIN erp.items i ON i.name = 'level ' || p.level, generate_series(1, p.n) g
"""

ORDERS = """
INSERT INTO erp.work_orders (number, bom_id, work_center_id, quantity_planned, status,
                             output_lot_id, created_at, completed_at)
SELECT 'WO-' || l.lot_number, b.id, (SELECT id FROM erp.locations WHERE code = 'WC'), 10,
       'completed', l.id, now(), now()
  FROM erp.lots l JOIN erp.boms b ON b.item_id = l.item_id
"""

# every order takes PER_ORDER random lots of the level below (a movement each)
ISSUES = """
WITH drawn AS (
    SELECT w.id AS wo, w.bom_id, substr(oi.name, 7)::int - 1 AS below, s,
           1 + floor(random() * pl.n)::int AS pick
      FROM erp.work_orders w
      JOIN erp.lots o ON o.id = w.output_lot_id
      JOIN erp.items oi ON oi.id = o.item_id
      JOIN plan pl ON pl.level = substr(oi.name, 7)::int - 1
      CROSS JOIN generate_series(1, %(per)s) s
), picks AS MATERIALIZED (
    SELECT d.wo, d.bom_id, l.id AS lot, row_number() OVER (ORDER BY d.wo, d.s) AS k
      FROM drawn d
      JOIN erp.items li ON li.name = 'level ' || d.below
      JOIN erp.lots l ON l.item_id = li.id AND l.lot_number = 'L' || d.below || '-' || d.pick
), moves AS (
    INSERT INTO erp.stock_movements (lot_id, quantity, from_location_id, to_location_id,
                                     moved_at, source)
    SELECT lot, 1, (SELECT id FROM erp.locations WHERE code = 'WC'), NULL, now(), 'scan'
      FROM picks ORDER BY k
    RETURNING id, lot_id
), numbered AS (
    SELECT id, lot_id, row_number() OVER (ORDER BY id) AS k FROM moves
)
INSERT INTO erp.material_issues (work_order_id, lot_id, bom_id, bom_line, quantity,
                                 movement_id, issued_at, issued_by)
SELECT p.wo, p.lot, p.bom_id, 1, 1, n.id, now(), 'bench'
  FROM picks p JOIN numbered n ON n.k = p.k
"""


def build(url: str, lots: int) -> float:
    t0 = time.monotonic()
    with psycopg.connect(url) as conn:
        conn.execute("SET session_replication_role = replica")  # the bench's own: no triggers
        for k in range(6):
            body = f"0950600000{k:03d}"
            conn.execute(
                "INSERT INTO erp.items (gtin, name, range_low, range_high) VALUES (%s, %s, 15, 25)",
                (body + str(check_digit(body)), f"level {k}"),
            )
        for statement in BUILD.split(";\n"):
            if statement.strip():
                params = {"per": PER_ORDER} if "%(per)s" in statement else None
                conn.execute(statement, params)
        sizes = [max(1, round(lots * s)) for s in SHARES]
        for level, n in enumerate(sizes):
            conn.execute("INSERT INTO plan VALUES (%s, %s)", (level, n))
        conn.execute(LOTS)
        conn.execute(ORDERS)
        conn.execute(ISSUES, {"per": PER_ORDER})
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - t0


def ids(conn: psycopg.Connection, level: int) -> list[int]:
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT l.id FROM erp.lots l JOIN erp.items i ON i.id = l.item_id WHERE i.name = %s",
            (f"level {level}",),
        )
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lots", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/ct_bench_genealogy_{uuid.uuid4().hex[:8]}"
    migrate.upgrade(url)
    try:
        print(f"load before: {os.getloadavg()[0]:.1f}")
        print(f"built {args.lots:,} lots in 6 levels in {build(url, args.lots):.0f} s")
        rng = random.Random(7)
        with psycopg.connect(url) as conn:
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM erp.lots), (SELECT count(*) FROM erp.material_issues)"
            ).fetchone()
            print(f"{counts[0]:,} lots, {counts[1]:,} material issues")  # type: ignore[index]
            for direction, level in (("backward", 5), ("forward", 0)):
                pool = ids(conn, level)
                ms, sizes, depths = [], [], []
                for _ in range(10):  # warm the cache
                    genealogy(conn, lot_id=rng.choice(pool), direction=direction)  # type: ignore[arg-type]
                for _ in range(args.queries):
                    lot = rng.choice(pool)
                    t = time.perf_counter()
                    nodes = genealogy(conn, lot_id=lot, direction=direction)  # type: ignore[arg-type]
                    ms.append((time.perf_counter() - t) * 1000)
                    sizes.append(len(nodes))
                    depths.append(max((n.depth for n in nodes), default=0))
                print(
                    f"{direction} from level {level}: p50 {percentile(ms, 0.5):.1f} ms, "
                    f"p95 {percentile(ms, 0.95):.1f} ms, max {max(ms):.1f} ms over {len(ms)}; "
                    f"{statistics.fmean(sizes):.0f} lots found on average, deepest {max(depths)}"
                )
        print(f"load after: {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            migrate.drop_database(url)


if __name__ == "__main__":
    main()
