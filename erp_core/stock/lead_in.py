"""The value a lot finds when it arrives: the probe's last reading before its segment.

A value holds until the next reading (up to ``max_hold``). A lot put into a fridge at
10:00:30, whose probe read 5.1 °C at 10:00:00 and reads again at 10:01:00, was at 5.1 °C
from 10:00:30: that is the held value, not a gap in the record. Without it every
segment would start with up to one recording interval uncovered, and a lot stored two
weeks under a 30-minute recording interval could never reach 99.9 % coverage.

The reading counts only if the probe was already assigned to that location when it was
taken (a logger moved in from elsewhere brings no history of this place) and if it is
at most ``max_hold`` old. The lead-in is its own piece, [segment start, first reading of
the segment), the same in the all-raw and the rollup path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import psycopg

from coldchain.tor import Span, micros
from erp_core.stock.exposure import SegmentReadings
from erp_core.stock.history_models import SensorSegment

Conn = psycopg.Connection[Any]

_LEAD_INS = """
SELECT g.sensor_id, g.s, g.e, p.time, p.value, f.time
  FROM unnest(%(sensors)s::int[], %(locations)s::int[], %(starts)s::timestamptz[],
              %(ends)s::timestamptz[]) AS g(sensor_id, location_id, s, e)
  JOIN erp.sensor_assignments a
    ON a.sensor_id = g.sensor_id AND a.location_id = g.location_id
   AND a.valid_from <= g.s AND (a.valid_to IS NULL OR a.valid_to > g.s)
 CROSS JOIN LATERAL (
       SELECT x.time, x.value FROM telemetry.readings x
        WHERE x.sensor_id = g.sensor_id AND x.time < g.s
          AND x.time >= greatest(a.valid_from, g.s - %(max_hold)s)
        ORDER BY x.time DESC LIMIT 1) AS p
  LEFT JOIN LATERAL (
       SELECT y.time FROM telemetry.readings y
        WHERE y.sensor_id = g.sensor_id AND y.time >= g.s AND y.time < g.e
        ORDER BY y.time LIMIT 1) AS f ON true
"""


def lead_ins(
    conn: Conn, *, segments: Sequence[SensorSegment], max_hold: timedelta
) -> list[SegmentReadings]:
    """One piece per segment whose start is covered by the probe's previous reading."""
    if not segments:
        return []
    rows = conn.execute(
        _LEAD_INS,
        {
            "sensors": [s.sensor_id for s in segments],
            "locations": [s.location_id for s in segments],
            "starts": [s.start for s in segments],
            "ends": [s.end for s in segments],
            "max_hold": max_hold,
        },
    ).fetchall()
    pieces = []
    for sensor_id, start, end, prev_t, prev_v, first_t in rows:
        stop = min(end, prev_t + max_hold, first_t or end)
        if stop > start:
            pieces.append(
                SegmentReadings(
                    sensor_id=int(sensor_id),
                    span=Span(start, stop),
                    times=np.array([micros(start)], dtype=np.int64),
                    values=np.array([float(prev_v)], dtype=np.float64),
                )
            )
    return pieces
