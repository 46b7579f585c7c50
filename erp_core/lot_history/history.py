"""A lot's temperature history, read through the one SQL definition (``erp.lot_readings``).

``erp.lot_readings`` (migration 0022) is the lot's readings *and* the value it arrived
into at each segment's start (``erp.lot_lead_ins``); Grafana and reports read the same
function, so their figures and the API's cannot disagree. The chart series is
downsampled in SQL (``date_bin`` buckets, every sensor merged, each bucket's min and max
kept), a held value counting at its segment's start; the statistics are computed in
Python by the pure ``exposure`` over all readings of the lot's life, so no statistic
comes from a downsampled series. Both paths take the held values from
``erp.lot_lead_ins`` (the held rows of ``erp.lot_readings``); the raw path reads the
other rows, the fast path (``use_rollup``) sums clean hours and days ahead and reads
the rest raw, and is tested equal to the raw path.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from coldchain.tor import Span, from_micros
from erp_core.lot_history import lead_in, rollup, rollup_refresh
from erp_core.lot_history.columns import fetch_columns
from erp_core.lot_history.exposure import Exposure, SegmentReadings, exposure
from erp_core.lot_history.models import (
    ExcursionRef,
    HistoryBucket,
    HistoryStats,
    LotHistory,
    SensorSegment,
    TimeSpan,
)
from erp_core.lots.service import get_lot
from erp_core.masterdata.models import Item
from erp_core.masterdata.service import get_item
from erp_core.monitoring.buckets import BucketPlan, plan_buckets
from erp_core.movements.models import LocationInterval
from erp_core.movements.service import lot_intervals

Conn = psycopg.Connection[Any]

DEFAULT_MAX_HOLD = timedelta(minutes=15)
DEFAULT_MIN_GAP = timedelta(minutes=5)

_BUCKETS = """
SELECT date_bin(%(width)s, time, %(origin)s) AS bucket, count(*), min(value), max(value),
       avg(value), array_agg(DISTINCT sensor_id ORDER BY sensor_id)
  FROM erp.lot_readings(%(lot)s, %(start)s, %(end)s, %(max_hold)s)
 GROUP BY bucket
 ORDER BY bucket
"""

# The segment readings; the held values at arrival, the other rows of erp.lot_readings,
# are erp.lot_lead_ins (``lead_in``). Read apart, so neither computes held_until for the
# readings (a window over every reading, which ``exposure`` does itself in numpy).
_READINGS = """
SELECT sensor_id, segment_start, segment_end, time, value
  FROM erp.lot_readings(%(lot)s, %(start)s, %(end)s, %(max_hold)s)
 WHERE NOT held
"""

# Excursion episodes (migration 0002) of the lot's sensors, overlapping their segments.
_EXCURSIONS = """
SELECT DISTINCT e.id, e.sensor_id, e.kind, e.level, e.start_t, e.end_t, e.peak, e.late
  FROM telemetry.excursion_episodes e
  JOIN erp.lot_segments(%(lot)s, %(start)s, %(end)s) g
    ON g.sensor_id = e.sensor_id
   AND e.start_t < g.segment_end
   AND coalesce(e.end_t, 'infinity') > g.segment_start
 WHERE e.status = 'active'
 ORDER BY e.start_t, e.id
"""


def life_span(intervals: list[LocationInterval], *, now: datetime) -> Span | None:
    """From the lot's first arrival to its last departure, or to ``now`` while it is held."""
    if not intervals:
        return None
    start = min(i.start for i in intervals)
    end = max(now if i.end is None else i.end for i in intervals)
    return Span(start, end) if end > start else None


def lot_history(  # noqa: PLR0913 - keyword-only, each documented
    conn: Conn,
    *,
    lot_id: int,
    max_points: int,
    now: datetime,
    max_hold: timedelta = DEFAULT_MAX_HOLD,
    min_gap: timedelta = DEFAULT_MIN_GAP,
    use_rollup: bool = True,
) -> LotHistory:
    """The lot's history: intervals, sensor segments, ≤ max_points buckets and statistics.

    ``use_rollup`` False reads every reading (the reference the rollup path must equal).
    """
    lot = get_lot(conn, lot_id=lot_id)
    item = get_item(conn, item_id=lot.item_id)
    intervals = lot_intervals(conn, lot_id=lot_id)
    life = life_span(intervals, now=now)
    if life is None:
        return LotHistory(
            lot=lot,
            intervals=intervals,
            segments=[],
            max_points=max_points,
            bucket_seconds=None,
            buckets=[],
            stats=None,
            excursions=[],
            notes=["the lot has no location interval yet: no temperature history"],
        )
    # These queries walk indexes and return quickly, but their cost estimates on a big
    # readings table trigger JIT compilation, which alone takes seconds: off, for this
    # transaction only.
    conn.execute("SET LOCAL jit = off")
    params = {"lot": lot_id, "start": life.start, "end": life.end, "max_hold": max_hold}
    plan = plan_buckets(start=life.start, end=life.end, max_points=max_points)
    segments = _segments(conn, params)
    # Whole-hour buckets come from the rollup; narrower ones (short lives) from SQL.
    whole_hours = use_rollup and plan.width % rollup.HOUR == timedelta(0)
    if use_rollup:
        segs = [rollup.Segment(s.sensor_id, s.start, s.end) for s in segments]
        rollup_refresh.refresh(conn, sensor_ids=[s.sensor_id for s in segs])
        limits = rollup.Limits(low=item.range_low, high=item.range_high, max_hold=max_hold)
        blocks, runs, rows = rollup.split(
            conn,
            segments=segs,
            limits=limits,
            width=plan.width if whole_hours else None,
            origin=plan.origin,
        )
        raw = rollup.read_runs(conn, runs=runs)
    else:
        blocks, rows = [], []
        raw = _segment_readings(conn, params)
    held = lead_in.lead_ins(conn, lot_id=lot_id, start=life.start, end=life.end, max_hold=max_hold)
    buckets = (
        _buckets_from_rollup(plan, rows, held)
        if whole_hours
        else _buckets_from_sql(conn, plan, params)
    )
    stats = exposure(
        raw,
        life=life,
        low=item.range_low,
        high=item.range_high,
        max_hold=max_hold,
        min_gap=min_gap,
        blocks=blocks,
        lead_ins=held,
    )
    excursions = _excursions(conn, params)
    return LotHistory(
        lot=lot,
        intervals=intervals,
        segments=segments,
        max_points=max_points,
        bucket_seconds=plan.width.total_seconds(),
        buckets=buckets,
        stats=_stats(stats, item=item, max_hold=max_hold, min_gap=min_gap),
        excursions=excursions,
        notes=[],
    )


def _buckets_from_sql(conn: Conn, plan: BucketPlan, params: dict[str, Any]) -> list[HistoryBucket]:
    """Chart buckets straight from ``erp.lot_readings`` (``date_bin``)."""
    buckets = []
    for bucket, count, low, high, mean, sensors in conn.execute(
        _BUCKETS, {**params, "width": plan.width, "origin": plan.origin}
    ).fetchall():
        start, end = plan.bounds(bucket)
        buckets.append(
            HistoryBucket(
                start=start,
                end=end,
                count=count,
                min=low,
                max=high,
                mean=mean,
                sensor_ids=sensors,
            )
        )
    return buckets


def _buckets_from_rollup(
    plan: BucketPlan, rows: list[rollup.BucketRow], held: list[SegmentReadings]
) -> list[HistoryBucket]:
    """Chart buckets of whole hours: rollup rows where exact, raw readings elsewhere.

    Each held value at arrival goes into the bucket of its segment's start, as in SQL.
    """
    buckets = []
    for key, n, low, high, total, sensors in _with_held(plan, rows, held) if held else rows:
        start, end = plan.bounds(key)
        buckets.append(
            HistoryBucket(
                start=start,
                end=end,
                count=n,
                min=low,
                max=high,
                mean=total / n,
                sensor_ids=sensors,
            )
        )
    return buckets


def _with_held(
    plan: BucketPlan, rows: list[rollup.BucketRow], held: list[SegmentReadings]
) -> list[rollup.BucketRow]:
    """The bucket rows with each held value added to the bucket of its segment's start."""
    merged = {row[0]: row for row in rows}
    for piece in held:
        key = plan.origin + (piece.span.start - plan.origin) // plan.width * plan.width
        value = float(piece.values[0])
        _, n, low, high, total, sensors = merged.get(key, (key, 0, value, value, 0.0, []))
        merged[key] = (
            key,
            n + 1,
            min(low, value),
            max(high, value),
            total + value,
            sorted({*sensors, piece.sensor_id}),
        )
    return sorted(merged.values(), key=lambda row: row[0])


def _segments(conn: Conn, params: dict[str, Any]) -> list[SensorSegment]:
    rows = conn.execute(
        "SELECT sensor_id, location_id, segment_start, segment_end "
        "FROM erp.lot_segments(%(lot)s, %(start)s, %(end)s)",
        params,
    ).fetchall()
    return [SensorSegment(sensor_id=a, location_id=b, start=c, end=d) for a, b, c, d in rows]


def _segment_readings(conn: Conn, params: dict[str, Any]) -> list[SegmentReadings]:
    """The segment readings of ``erp.lot_readings``, per (sensor, segment) in time order."""
    sensor, seg_start, seg_end, times, values = fetch_columns(
        conn, _READINGS, params, ("int4", "timestamptz", "timestamptz", "timestamptz", "float8")
    )
    if not times.size:
        return []
    order = np.lexsort((times, seg_end, seg_start, sensor))  # by segment, then time
    sensor, seg_start, seg_end = sensor[order], seg_start[order], seg_end[order]
    times, values = times[order], values[order]
    changed = (np.diff(sensor) != 0) | (np.diff(seg_start) != 0) | (np.diff(seg_end) != 0)
    starts = [0, *(np.flatnonzero(changed) + 1).tolist()]
    ends = [*starts[1:], int(times.size)]
    return [
        SegmentReadings(
            sensor_id=int(sensor[lo]),
            span=Span(from_micros(int(seg_start[lo])), from_micros(int(seg_end[lo]))),
            times=times[lo:hi],
            values=values[lo:hi],
        )
        for lo, hi in zip(starts, ends, strict=True)
    ]


def _excursions(conn: Conn, params: dict[str, Any]) -> list[ExcursionRef]:
    return [
        ExcursionRef(
            id=row[0],
            sensor_id=row[1],
            kind=row[2],
            level=row[3],
            start=row[4],
            end=row[5],
            peak=row[6],
            late=row[7],
        )
        for row in conn.execute(_EXCURSIONS, params).fetchall()
    ]


def _span(span: Span) -> TimeSpan:
    return TimeSpan(start=span.start, end=span.end, seconds=span.duration.total_seconds())


def _stats(e: Exposure, *, item: Item, max_hold: timedelta, min_gap: timedelta) -> HistoryStats:
    budget = None if item.tor_budget_minutes is None else timedelta(minutes=item.tor_budget_minutes)
    cov = e.coverage
    return HistoryStats(
        readings=e.readings,
        min=e.minimum,
        max=e.maximum,
        mean=e.mean,
        mkt=e.mkt,
        mkt_limit=item.mkt_limit,
        mkt_over_limit=None if e.mkt is None or item.mkt_limit is None else e.mkt > item.mkt_limit,
        range_low=item.range_low,
        range_high=item.range_high,
        tor_longest_seconds=e.tor.longest.total_seconds(),
        tor_cumulative_seconds=e.tor.cumulative.total_seconds(),
        out_of_range=[_span(s) for s in e.tor.spans],
        tor_budget_seconds=None if budget is None else budget.total_seconds(),
        tor_remaining_seconds=None
        if budget is None
        else (budget - e.tor.cumulative).total_seconds(),
        coverage_share=cov.share,
        covered_seconds=cov.covered.total_seconds(),
        life=_span(cov.life),
        gaps=[_span(g) for g in cov.gaps],
        min_gap_seconds=min_gap.total_seconds(),
        short_gaps=cov.short_gaps,
        short_gaps_seconds=cov.short_gap_total.total_seconds(),
        max_hold_seconds=max_hold.total_seconds(),
    )
