"""The value a lot finds when it arrives: the probe's last reading before its segment.

A value holds until the next reading (up to ``max_hold``). A lot put into a fridge at
10:00:30, whose probe read 5.1 °C at 10:00:00 and reads again at 10:01:00, was at 5.1 °C
from 10:00:30: that is the held value, not a gap in the record. Without it every
segment would start with up to one recording interval uncovered, and a lot stored two
weeks under a 30-minute recording interval could never reach 99.9 % coverage.

The reading counts only if the probe was already assigned to that location when it was
taken (a logger moved in from elsewhere brings no history of this place) and if it is
less than ``max_hold`` old. The rule is SQL, written once: ``erp.lot_lead_ins``
(migration 0022), the held rows of ``erp.lot_readings`` that Grafana and reports read.
The lead-in is its own piece, [segment start, ``held_until``), the same in the all-raw
and the rollup path.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from coldchain.tor import Span, micros
from erp_core.lot_history.exposure import SegmentReadings

Conn = psycopg.Connection[Any]

_LEAD_INS = """
SELECT sensor_id, segment_start, held_until, value
  FROM erp.lot_lead_ins(%(lot)s, %(start)s, %(end)s, %(max_hold)s)
"""


def lead_ins(
    conn: Conn, *, lot_id: int, start: datetime, end: datetime, max_hold: timedelta
) -> list[SegmentReadings]:
    """One piece per segment in [start, end) whose start the probe's previous reading covers."""
    rows = conn.execute(
        _LEAD_INS, {"lot": lot_id, "start": start, "end": end, "max_hold": max_hold}
    ).fetchall()
    return pieces(rows)


def pieces(rows: Iterable[tuple[int, datetime, datetime, float]]) -> list[SegmentReadings]:
    """(sensor, segment start, held until, value) rows as pieces for ``exposure``."""
    return [
        SegmentReadings(
            sensor_id=int(sensor_id),
            span=Span(start, until),
            times=np.array([micros(start)], dtype=np.int64),
            values=np.array([float(value)], dtype=np.float64),
        )
        for sensor_id, start, until, value in rows
    ]
