"""Each lot's release figures, kept in ``erp.lot_figures`` for Grafana's batch dashboard.

The release decision (``erp_core.release.service.evidence_from``) takes MKT, time out of
range and coverage from the lot history's statistics (``history.lot_history``: the
rollup's clean hours and days plus the raw rest, through the pure ``exposure``). Grafana
cannot run that Python, and computing the same figures again in SQL was a second
definition that took seconds for a year-long lot. So ``coldtrace erp-jobs`` computes
each lot's history here, with the very same function, and writes its statistics to
``erp.lot_figures`` (migration 0031); the dashboard reads one row. A test checks the
row equals the release evidence on both back-ends.

A row is recomputed when it may have changed (``stale_lots``):

* the lot has no row yet (and has been somewhere);
* some of the lot is still held: its life grows with the clock;
* a movement of the lot was recorded since the row was computed (less ``MARGIN``, for
  transactions still open then);
* a reading of one of its sensors taken during its life (or ``MAX_HOLD`` before: a
  held value at arrival) was received since then (less ``MARGIN``), a late upload;
* the item's range, MKT limit or budget changed;
* the row is older than ``max_age`` (a day by default): what the rules above do not see,
  such as a sensor assignment corrected after the fact, is caught by then.

The service takes the connection and does not commit; ``erp_core.jobs`` owns the
transactions (a few lots per transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from erp_core.lot_history.history import DEFAULT_MAX_HOLD, lot_history
from erp_core.lot_history.models import LotHistory

Conn = psycopg.Connection[Any]

MARGIN = timedelta(minutes=15)
MAX_AGE = timedelta(days=1)
MAX_HOLD = DEFAULT_MAX_HOLD

# The readings check walks readings_sensor_received (sensor_id, received_at), migration
# 0008: per sensor, only what arrived since the row was computed.
_STALE = """
SELECT l.id
  FROM erp.lots l
  JOIN erp.items i ON i.id = l.item_id
  LEFT JOIN erp.lot_figures f ON f.lot_id = l.id
 WHERE EXISTS (SELECT 1 FROM erp.stock_movements m WHERE m.lot_id = l.id)
   AND (f.lot_id IS NULL
        OR f.life_open
        OR f.computed_at < %(now)s - %(max_age)s
        OR (f.range_low, f.range_high, f.mkt_limit, f.tor_budget_minutes)
           IS DISTINCT FROM (i.range_low, i.range_high, i.mkt_limit, i.tor_budget_minutes)
        OR EXISTS (SELECT 1 FROM erp.stock_movements m
                    WHERE m.lot_id = l.id AND m.recorded_at > f.computed_at - %(margin)s)
        OR EXISTS (SELECT 1 FROM unnest(f.sensor_ids) AS s(id)
                     JOIN LATERAL (
                          SELECT 1 FROM telemetry.readings r
                           WHERE r.sensor_id = s.id AND r.received_at > f.computed_at - %(margin)s
                             AND r.time >= f.life_start - %(max_hold)s AND r.time < f.life_end
                           LIMIT 1) AS late ON true))
 ORDER BY l.id
"""

_UPSERT = """
INSERT INTO erp.lot_figures AS f (lot_id, computed_at, life_start, life_end, life_open,
       readings, mkt, mkt_limit, mean, min, max, tor_minutes, tor_longest_minutes,
       tor_budget_minutes, coverage, range_low, range_high, sensor_ids)
VALUES (%(lot_id)s, %(computed_at)s, %(life_start)s, %(life_end)s, %(life_open)s,
        %(readings)s, %(mkt)s, %(mkt_limit)s, %(mean)s, %(min)s, %(max)s, %(tor_minutes)s,
        %(tor_longest_minutes)s, %(tor_budget_minutes)s, %(coverage)s, %(range_low)s,
        %(range_high)s, %(sensor_ids)s)
ON CONFLICT (lot_id) DO UPDATE SET
       computed_at = excluded.computed_at, life_start = excluded.life_start,
       life_end = excluded.life_end, life_open = excluded.life_open,
       readings = excluded.readings, mkt = excluded.mkt, mkt_limit = excluded.mkt_limit,
       mean = excluded.mean, min = excluded.min, max = excluded.max,
       tor_minutes = excluded.tor_minutes, tor_longest_minutes = excluded.tor_longest_minutes,
       tor_budget_minutes = excluded.tor_budget_minutes, coverage = excluded.coverage,
       range_low = excluded.range_low, range_high = excluded.range_high,
       sensor_ids = excluded.sensor_ids
"""


def stale_lots(
    conn: Conn, *, now: datetime, max_age: timedelta = MAX_AGE, margin: timedelta = MARGIN
) -> list[int]:
    """The lots whose figures are missing or may have changed (module docstring), by id."""
    params = {"now": now, "max_age": max_age, "margin": margin, "max_hold": MAX_HOLD}
    return [int(r[0]) for r in conn.execute(_STALE, params).fetchall()]


def row_of(history: LotHistory, *, now: datetime) -> dict[str, Any] | None:
    """The ``erp.lot_figures`` row of a lot history (None: the lot has no statistics).

    Every figure is the history's statistic that ``evidence_from`` hands to the release
    rules, in the rules' units (minutes, a share of the life).
    """
    stats = history.stats
    if stats is None:
        return None
    return {
        "lot_id": history.lot.id,
        "computed_at": now,
        "life_start": stats.life.start,
        "life_end": stats.life.end,
        "life_open": any(i.end is None for i in history.intervals),
        "readings": stats.readings,
        "mkt": stats.mkt,
        "mkt_limit": stats.mkt_limit,
        "mean": stats.mean,
        "min": stats.min,
        "max": stats.max,
        "tor_minutes": stats.tor_cumulative_seconds / 60,
        "tor_longest_minutes": stats.tor_longest_seconds / 60,
        "tor_budget_minutes": None
        if stats.tor_budget_seconds is None
        else stats.tor_budget_seconds / 60,
        "coverage": stats.coverage_share,
        "range_low": stats.range_low,
        "range_high": stats.range_high,
        "sensor_ids": sorted({s.sensor_id for s in history.segments}),
    }


def refresh(conn: Conn, *, lot_ids: Sequence[int], now: datetime) -> int:
    """Recompute the figures of ``lot_ids`` as of ``now``; how many rows were written.

    A lot without statistics (no location interval, or a life of no length yet) gets no
    row, and a row it had is removed: the dashboard then shows nothing, as the API does.
    """
    written = 0
    for lot_id in lot_ids:
        history = lot_history(conn, lot_id=lot_id, max_points=2, now=now)
        row = row_of(history, now=now)
        if row is None:
            conn.execute("DELETE FROM erp.lot_figures WHERE lot_id = %s", (lot_id,))
            continue
        conn.execute(_UPSERT, row)
        written += 1
    return written
