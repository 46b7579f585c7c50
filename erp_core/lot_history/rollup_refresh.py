"""Keeping the hourly and daily reading rollup current, on read (see ``rollup``).

Before use, hours holding readings *received* after the sensor's watermark (minus
``MARGIN``, for ingest transactions still open when the watermark was taken) are
recomputed, together with the hour of the reading before each of them (whose step
changed), and then the days holding those hours. Every hour written has its day
rewritten in the same transaction, so each hour row has its day row. A read that finds
nothing new leaves the watermark alone unless it is older than ``STALE``: not moving it
is always safe (the next read looks further back), and it keeps plain reads free of
writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from erp_core.lot_history.rollup import DAY, EPOCH, HOUR, floor, hour_of

Conn = psycopg.Connection[Any]

MARGIN = timedelta(minutes=15)
STALE = timedelta(hours=1)

# Takes the sensors' rollup locks in one statement, in sensor order (no deadlock).
_LOCK = """
SELECT now(), count(pg_advisory_xact_lock(hashtext('erp.reading_hours'), s))
  FROM (SELECT s FROM unnest(%(sensors)s::int[]) AS s ORDER BY s) AS sorted
"""

# Per sensor: its watermark (NULL: never rolled up) and the hours to recompute: those
# holding readings received since the watermark minus the margin, and for each of them
# the hour of the reading just before its earliest new reading (that reading's step to
# the next one changed; it lies in an earlier hour only for the first reading of an
# hour, so one probe per changed hour finds every such step, however many holes were
# filled). The index on (sensor_id, received_at) of migration 0008 finds the new
# readings; OFFSET 0 keeps the planner from walking the sensor's primary key instead.
_CHANGED = """
SELECT g.sensor_id, st.received_until, c.h
  FROM unnest(%(sensors)s::int[]) AS g(sensor_id)
  LEFT JOIN erp.reading_hours_state st USING (sensor_id)
  LEFT JOIN LATERAL (
        SELECT DISTINCT x.h
          FROM (SELECT date_bin('1 hour', r.time, timestamptz '1970-01-01 00:00+00') AS h,
                       min(r.time) AS t
                  FROM telemetry.readings r
                 WHERE r.sensor_id = g.sensor_id AND r.received_at > st.received_until - %(margin)s
                 GROUP BY 1
                OFFSET 0) AS n
          LEFT JOIN LATERAL (
                SELECT time FROM telemetry.readings
                 WHERE sensor_id = g.sensor_id AND time < n.t
                 ORDER BY time DESC LIMIT 1) AS p ON true
         CROSS JOIN LATERAL (
                VALUES (n.h),
                       (date_bin('1 hour', p.time, timestamptz '1970-01-01 00:00+00'))) AS x(h)
         WHERE x.h IS NOT NULL
  ) AS c ON true
"""


def refresh(conn: Conn, *, sensor_ids: Sequence[int]) -> None:
    """Bring the rollup of ``sensor_ids`` up to date with every reading received so far.

    A watermark moves only when hours were recomputed or it is older than ``STALE``, so
    most history reads write nothing (and their commit waits for no disk).
    """
    sensors = sorted(set(sensor_ids))
    if not sensors:
        return
    row = conn.execute(_LOCK, {"sensors": sensors}).fetchone()
    assert row is not None  # an aggregate always returns a row
    now: datetime = row[0]
    marks: dict[int, datetime | None] = {}
    changed: dict[int, list[datetime]] = {s: [] for s in sensors}
    for sensor, mark, hour in conn.execute(_CHANGED, {"sensors": sensors, "margin": MARGIN}):
        marks[sensor] = mark
        if hour is not None:
            changed[sensor].append(hour)
    moved = []
    for sensor in sensors:
        mark = marks[sensor]
        hours = _all_hours(conn, sensor) if mark is None else hour_ranges(changed[sensor])
        for start, end in hours:
            conn.execute("SELECT erp.refresh_reading_hours(%s, %s, %s)", (sensor, start, end))
        for start, end in widen(hours, DAY):
            conn.execute("SELECT erp.refresh_reading_days(%s, %s, %s)", (sensor, start, end))
        if mark is None or hours or mark < now - STALE:
            moved.append(sensor)
    if moved:
        conn.execute(
            "INSERT INTO erp.reading_hours_state (sensor_id, received_until) "
            "SELECT unnest(%s::int[]), %s "
            "ON CONFLICT (sensor_id) DO UPDATE SET received_until = excluded.received_until",
            (moved, now),
        )


def _all_hours(conn: Conn, sensor: int) -> list[tuple[datetime, datetime]]:
    """The hours from the sensor's first reading to its last, for a first rollup."""
    span = conn.execute(
        "SELECT min(time), max(time) FROM telemetry.readings WHERE sensor_id = %s", (sensor,)
    ).fetchone()
    if span is None or span[0] is None:
        return []
    return [(hour_of(span[0]), hour_of(span[1]) + HOUR)]


def hour_ranges(hours: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hour starts joined into [start, end) ranges of consecutive hours (pure)."""
    ranges: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if ranges and ranges[-1][1] == hour:
            ranges[-1] = (ranges[-1][0], hour + HOUR)
        else:
            ranges.append((hour, hour + HOUR))
    return ranges


def widen(
    ranges: Sequence[tuple[datetime, datetime]], width: timedelta
) -> list[tuple[datetime, datetime]]:
    """Sorted [start, end) ranges widened to whole epoch-aligned ``width`` and joined (pure)."""
    wide: list[tuple[datetime, datetime]] = []
    for start, end in sorted(ranges):
        lo, hi = floor(start, width), EPOCH - ((EPOCH - end) // width) * width
        if wide and wide[-1][1] >= lo:
            wide[-1] = (wide[-1][0], max(wide[-1][1], hi))
        else:
            wide.append((lo, hi))
    return wide
