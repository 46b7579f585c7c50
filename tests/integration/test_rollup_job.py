"""The job runner keeps the reading rollup current for Grafana, on both back-ends.

Long-range panels read ``erp.reading_hours``/``reading_days`` as the read-only role,
which cannot refresh them; ``coldtrace erp-jobs`` does (docs/timescaledb.md). On
TimescaleDB the late readings land in a compressed chunk.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg

from erp_core.jobs import Every, refresh_rollup, run

DAY = datetime(2026, 3, 2, tzinfo=UTC)

HOURS = """
SELECT h.sensor_id, h.hour, h.n, h.vmax FROM erp.reading_hours h ORDER BY 1, 2
"""
RAW = """
SELECT sensor_id, date_bin('1 hour', time, timestamptz '1970-01-01 00:00+00'), count(*)::int,
       max(value)
  FROM telemetry.readings GROUP BY 1, 2 ORDER BY 1, 2
"""


def sensors_with_readings(db_url: str) -> list[int]:
    with psycopg.connect(db_url) as conn:
        ids = [
            conn.execute(
                "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
                " VALUES (%s, 'temperature', 'Cel', 'gw-1') RETURNING id",
                (f"T-{n}",),
            ).fetchone()[0]
            for n in range(3)
        ]
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value)"
            " SELECT %s + m * interval '1 minute', s, 4 + (m %% 7) * 0.5"
            " FROM unnest(%s::int[]) s, generate_series(0, 6 * 60 - 1) m",
            (DAY, ids),
        )
    return ids


def test_refresh_rollup_follows_late_readings(db_url: str, owner_db_url: str) -> None:
    ids = sensors_with_readings(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert refresh_rollup(conn, batch=2) == len(ids)
        assert conn.execute(HOURS).fetchall() == conn.execute(RAW).fetchall()
    with psycopg.connect(owner_db_url, autocommit=True) as owner:
        if owner.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
            owner.execute("SELECT compress_chunk(c) FROM show_chunks('telemetry.readings') c")
    with psycopg.connect(db_url, autocommit=True) as conn:
        # A backlog arrives late: seconds between minutes, hotter, in an hour already rolled up.
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value)"
            " SELECT %s + m * interval '1 minute' + interval '30 seconds', %s, 12.5"
            " FROM generate_series(60, 89) m ON CONFLICT DO NOTHING",
            (DAY, ids[1]),
        )
        refresh_rollup(conn)
        hours = conn.execute(HOURS).fetchall()
        assert hours == conn.execute(RAW).fetchall()
    assert (ids[1], DAY + timedelta(hours=1), 90, 12.5) in hours


def test_the_job_runner_refreshes_the_rollup_on_its_own(db_url: str) -> None:
    ids = sensors_with_readings(db_url)
    stop = threading.Event()
    runner = threading.Thread(
        target=run, args=(db_url, stop), kwargs={"interval_s": 0.2, "every": Every(rollup_s=0.2)}
    )
    runner.start()
    try:
        deadline = time.monotonic() + 30
        with psycopg.connect(db_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                (rolled,) = conn.execute(
                    "SELECT count(DISTINCT sensor_id) FROM erp.reading_hours"
                ).fetchone()
                if rolled == len(ids):
                    break
                time.sleep(0.2)
    finally:
        stop.set()
        runner.join(timeout=30)
    assert rolled == len(ids)
