"""Bytes per stored reading, plain and compressed, for the storage model (docs/scaling-model.md).

Run from the repository root with the project's Python::

    .venv/bin/python bench/storage.py [--sensors 200] [--minutes 5040]
    COLDTRACE_BENCH_ADMIN_URL=postgresql://postgres@127.0.0.1:5433/postgres \\
        .venv/bin/python bench/storage.py          # TimescaleDB: also compressed

On a database of its own (dropped afterwards) it copies ``sensors`` x ``minutes``
readings of one-minute loggers into ``telemetry.readings`` through the migrations'
schema (primary key and indexes included), with values like a fridge's (5 °C plus a
slow swing and 0.1 °C noise, one decimal as probes report), and prints the table's
bytes per reading with its indexes. On TimescaleDB (the migrations make the table a
hypertable there) it then compresses every chunk the way the compression policy does
and prints the bytes per reading again.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from db import migrate
from db.settings import DatabaseSettings

ADMIN_URL = os.environ.get(
    "COLDTRACE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
COPY = (
    "COPY telemetry.readings (time, sensor_id, value, flags, gateway_seq) "
    "FROM STDIN (FORMAT BINARY)"
)
SIZE = "SELECT hypertable_size('telemetry.readings')"
PLAIN_SIZE = "SELECT pg_total_relation_size('telemetry.readings')"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sensors", type=int, default=200)
    p.add_argument("--minutes", type=int, default=5040, help="readings per sensor (3.5 days)")
    args = p.parse_args()
    name = f"ct_bench_storage_{uuid.uuid4().hex[:8]}"
    db = DatabaseSettings(url=f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    migrate.upgrade(db.url, db.sqlalchemy_url)
    try:
        with psycopg.connect(db.url, autocommit=True) as conn:
            ids = [
                int(r[0])
                for r in conn.execute(
                    "INSERT INTO telemetry.sensors (gateway_id, uid, quantity, unit) "
                    "SELECT 'gw-' || (i / 100), 'probe-' || i, 'temperature', 'Cel' "
                    "FROM generate_series(1, %s) AS i RETURNING id",
                    (args.sensors,),
                ).fetchall()
            ]
            timescale = bool(
                conn.execute(
                    "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
                ).fetchone()[0]  # type: ignore[index]
            )
            start = datetime(2026, 1, 5, tzinfo=UTC)
            rng = random.Random(13)
            t0 = time.monotonic()
            with conn.cursor().copy(COPY) as copy:
                copy.set_types(["timestamptz", "int4", "float8", "int4", "int8"])
                for k, sid in enumerate(ids):
                    for m in range(args.minutes):
                        swing = 1.5 * ((m + 37 * k) % 240 - 120) / 120
                        value = round(5.0 + swing + rng.gauss(0, 0.1), 1)
                        copy.write_row((start + timedelta(minutes=m), sid, value, 0, m + 1))
            n = args.sensors * args.minutes
            print(f"{n:,} readings copied in {time.monotonic() - t0:.1f} s")
            conn.execute("VACUUM ANALYZE telemetry.readings")
            plain = int(conn.execute(SIZE if timescale else PLAIN_SIZE).fetchone()[0])  # type: ignore[index]
            print(f"stored, uncompressed (table + indexes): {plain / n:.1f} bytes per reading")
            if timescale:
                conn.execute(
                    "SELECT count(compress_chunk(c)) FROM show_chunks('telemetry.readings') c"
                )
                packed = int(conn.execute(SIZE).fetchone()[0])  # type: ignore[index]
                print(
                    f"compressed (every chunk): {packed / n:.1f} bytes per reading, "
                    f"{plain / packed:.1f}x smaller"
                )
            print("load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        migrate.drop_database(db.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
