"""The hourly and daily reading rollup behind fast lot histories: split and read.

A history is split into pre-aggregated blocks and the raw readings still needed.

``erp.reading_hours`` keeps per sensor and hour: count, min, max, sum, first/last reading,
the sensor's next reading after the hour, the largest step between consecutive readings
and step-weighted sums (for the mean and MKT). An hour of a segment is *clean* when all
its readings and their holds lie inside the segment, no step exceeds ``max_hold`` and
every value is inside the item's range: then its contribution to the statistics is
exactly its sums, with no time out of range and no gap. Every other hour is read raw.
So the result equals the all-raw computation; only the work differs.

``erp.reading_days`` sums the same per UTC day (migration 0008). A day that is clean by
the same test is clean in every one of its hours, so it stands for all of them: a year
with an excursion every nine days is ~400 day rows and the hours of ~40 days, not 8,760
hours per sensor. The hours of every other day are read. Days serve chart buckets only
when the bucket width is a whole number of days.

The rollup is brought up to date before use by ``rollup_refresh.refresh``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from coldchain.tor import Span
from erp_core.lot_history.columns import fetch_columns
from erp_core.lot_history.exposure import Block, SegmentReadings

Conn = psycopg.Connection[Any]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Segment:
    """A sensor standing for the lot over [start, end)."""

    sensor_id: int
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Run:
    """Readings of ``segment`` in [start, end) to read raw; held values stop at ``held_end``."""

    segment: Segment
    start: datetime
    end: datetime
    held_end: datetime


def hour_of(t: datetime) -> datetime:
    """The start of the UTC hour holding ``t``."""
    return floor(t, HOUR)


def floor(t: datetime, width: timedelta) -> datetime:
    """The start of the epoch-aligned ``width`` (an hour, a day) holding ``t``."""
    return EPOCH + ((t - EPOCH) // width) * width


# The segments, numbered from 1 in the order given.
_SEGMENTS = """
WITH g AS (
    SELECT * FROM unnest(%(sensors)s::int[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
           WITH ORDINALITY AS g(sensor_id, s, e, i)
)"""

# A segment's rollup rows (h), each marked inside (all its readings in the segment) and
# clean (inside, holds inside, no step above max_hold, all values in range). With days:
# its clean days, and the hours of its other days. A clean day is inside, and since both
# tests are the same for days and hours, a clean day's hours are all clean.
_WITH_DAYS = """
, d AS MATERIALIZED (
    SELECT g.i, g.sensor_id, g.s, g.e, r.day, r.n, r.vmin, r.vmax, r.vsum, r.first_t,
           r.last_t, r.next_t, r.w_sum, r.wv_sum, r.wexp_sum,
           coalesce(r.day >= g.s AND r.next_t <= g.e AND r.max_step <= %(hold)s
                    AND r.vmin >= %(low)s AND r.vmax <= %(high)s, false) AS clean
      FROM g JOIN erp.reading_days r
        ON r.sensor_id = g.sensor_id
       AND r.day >= date_bin('1 day', g.s, timestamptz '1970-01-01 00:00+00')
       AND r.day < g.e
), h AS MATERIALIZED (
    SELECT i, sensor_id, s, e, day AS hour, n, vmin, vmax, vsum, first_t, last_t, next_t,
           w_sum, wv_sum, wexp_sum, true AS inside, true AS clean
      FROM d WHERE clean
    UNION ALL
    SELECT d.i, d.sensor_id, d.s, d.e, r.hour, r.n, r.vmin, r.vmax, r.vsum, r.first_t,
           r.last_t, r.next_t, r.w_sum, r.wv_sum, r.wexp_sum,
           r.hour >= d.s AND r.last_t < d.e,
           coalesce(r.hour >= d.s AND r.next_t <= d.e AND r.max_step <= %(hold)s
                    AND r.vmin >= %(low)s AND r.vmax <= %(high)s, false)
      FROM d JOIN erp.reading_hours r
        ON r.sensor_id = d.sensor_id
       AND r.hour >= greatest(d.day, date_bin('1 hour', d.s, timestamptz '1970-01-01 00:00+00'))
       AND r.hour < least(d.day + interval '24 hours', d.e)
     WHERE NOT d.clean
)"""
# Without days (chart buckets narrower than a day need every hour anyway): one range
# read of the hours per segment.
_HOURS_ONLY = """
, h AS MATERIALIZED (
    SELECT g.i, g.sensor_id, g.s, g.e, r.hour, r.n, r.vmin, r.vmax, r.vsum, r.first_t,
           r.last_t, r.next_t, r.w_sum, r.wv_sum, r.wexp_sum,
           r.hour >= g.s AND r.last_t < g.e AS inside,
           coalesce(r.hour >= g.s AND r.next_t <= g.e AND r.max_step <= %(hold)s
                    AND r.vmin >= %(low)s AND r.vmax <= %(high)s, false) AS clean
      FROM g JOIN erp.reading_hours r
        ON r.sensor_id = g.sensor_id
       AND r.hour >= date_bin('1 hour', g.s, timestamptz '1970-01-01 00:00+00')
       AND r.hour < g.e
)"""

# Every LATERAL read of telemetry.readings ends in OFFSET 0: without it the planner may
# flatten the subquery into a hash join over a parallel scan of the whole table.
# One round trip, no window function: the unclean hours (u), per segment the sums and
# bounds of its clean days and hours (s) and, given a width, chart buckets (k) whose
# inside days and hours come from the rollup and whose other hours are read raw.
_SPLIT = """
, parts AS (
    SELECT date_bin(%(width)s, hour, %(origin)s) AS b, sensor_id, n AS cnt, vmin AS lo,
           vmax AS hi, vsum AS total
      FROM h WHERE inside AND %(width)s::interval IS NOT NULL
    UNION ALL
    SELECT date_bin(%(width)s, x.time, %(origin)s), h.sensor_id, 1, x.value, x.value, x.value
      FROM h CROSS JOIN LATERAL (
           SELECT time, value FROM telemetry.readings r
            WHERE r.sensor_id = h.sensor_id AND r.time >= greatest(h.hour, h.s)
              AND r.time < least(h.hour + interval '1 hour', h.e)
           OFFSET 0) AS x
     WHERE NOT h.inside AND %(width)s::interval IS NOT NULL
)
SELECT 'u', i, hour, first_t, next_t, NULL::timestamptz, NULL::bigint, NULL::float8,
       NULL::float8,
       NULL::float8, NULL::float8, NULL::float8, NULL::int[]
  FROM h WHERE NOT clean
UNION ALL
SELECT 's', i, min(hour), min(first_t), max(next_t), max(hour), sum(n)::bigint, min(vmin),
       max(vmax), sum(w_sum), sum(wv_sum), sum(wexp_sum), NULL
  FROM h WHERE clean GROUP BY i
UNION ALL
SELECT 'k', NULL, b, NULL, NULL, NULL, sum(cnt)::bigint, min(lo), max(hi), sum(total), NULL,
       NULL,
       array_agg(DISTINCT sensor_id)
  FROM parts GROUP BY b
"""


@dataclass(frozen=True, slots=True)
class _Hour:
    hour: datetime
    first_t: datetime
    next_t: datetime | None


@dataclass(frozen=True, slots=True)
class Limits:
    """What makes an hour clean: the item's range and the longest hold of one reading."""

    low: float
    high: float
    max_hold: timedelta


def _params(segments: Sequence[Segment], limits: Limits) -> dict[str, Any]:
    return {
        "sensors": [g.sensor_id for g in segments],
        "starts": [g.start for g in segments],
        "ends": [g.end for g in segments],
        "hold": limits.max_hold.total_seconds(),
        "low": limits.low,
        "high": limits.high,
    }


BucketRow = tuple[datetime, int, float, float, float, list[int]]


def split(
    conn: Conn,
    *,
    segments: Sequence[Segment],
    limits: Limits,
    width: timedelta | None = None,
    origin: datetime | None = None,
) -> tuple[list[Block], list[Run], list[BucketRow]]:
    """Clean days and hours summed per segment, runs of unclean hours to read raw, buckets.

    Chart buckets (start, count, min, max, sum, sensors) come only with a whole-hour
    ``width`` (aligned to ``origin``); days are used unless ``width`` is shorter than a
    whole number of days.
    """
    days = width is None or width % DAY == timedelta(0)
    query = _SEGMENTS + (_WITH_DAYS if days else _HOURS_ONLY) + _SPLIT
    params = {**_params(segments, limits), "width": width, "origin": origin}
    unclean: list[list[_Hour]] = [[] for _ in segments]
    sums: dict[int, tuple[Any, ...]] = {}
    buckets: list[BucketRow] = []
    for kind, i, t1, t2, t3, t4, n, lo, hi, a, b, c, extra in conn.execute(query, params):
        if kind == "u":
            unclean[i - 1].append(_Hour(t1, t2, t3))
        elif kind == "s":
            sums[i - 1] = (t1, t2, t3, t4, n, lo, hi, a, b, c)
        else:
            buckets.append((t1, n, lo, hi, a, sorted(extra)))
    blocks: list[Block] = []
    runs: list[Run] = []
    for index, seg in enumerate(segments):
        seg_runs, spans = _runs_and_spans(
            seg, sorted(unclean[index], key=lambda u: u.hour), sums.get(index)
        )
        runs.extend(seg_runs)
        if index in sums:
            _, _, _, _, n, lo, hi, a, b, c = sums[index]
            blocks.append(
                Block(
                    sensor_id=seg.sensor_id,
                    spans=tuple(spans),
                    n=n,
                    minimum=lo,
                    maximum=hi,
                    weight_s=a,
                    weighted_sum=b,
                    arrhenius_sum=c,
                )
            )
    buckets.sort(key=lambda row: row[0])
    return blocks, runs, buckets


def _runs_and_spans(
    seg: Segment, unclean: list[_Hour], clean: tuple[Any, ...] | None
) -> tuple[list[Run], list[Span]]:
    """Group unclean hours into runs; the clean hours between them cover whole spans.

    Consecutive rollup rows of one sensor join up (a row's next_t is the next row's
    first_t), so two unclean rows are neighbours exactly when one's next_t is the other's
    first_t, and the clean rows between two runs cover [end of one, start of the next).
    """
    groups: list[list[_Hour]] = []
    for u in unclean:
        if groups and groups[-1][-1].next_t == u.first_t:
            groups[-1].append(u)
        else:
            groups.append([u])
    runs = []
    for group in groups:
        nxt = group[-1].next_t
        if nxt is None or hour_of(nxt) >= seg.end:
            end, held_end = seg.end, seg.end
        else:
            end, held_end = hour_of(nxt), nxt
        runs.append(
            Run(segment=seg, start=max(group[0].hour, seg.start), end=end, held_end=held_end)
        )
    spans: list[Span] = []
    if clean is None:
        return runs, spans
    first_hour, first_t, last_next, last_hour = clean[0], clean[1], clean[2], clean[3]
    cursor: datetime | None = first_t if not groups or first_hour < groups[0][0].hour else None
    for group in groups:
        if cursor is not None:
            spans.append(Span(cursor, group[0].first_t))
        cursor = group[-1].next_t
    if cursor is not None and (not groups or last_hour > groups[-1][-1].hour):
        spans.append(Span(cursor, last_next))
    return runs, spans


_RUNS = """
SELECT u.i, r.time, r.value
  FROM unnest(%(sensors)s::int[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
       WITH ORDINALITY AS u(sensor_id, f, t, i)
 CROSS JOIN LATERAL (
       SELECT time, value FROM telemetry.readings x
        WHERE x.sensor_id = u.sensor_id AND x.time >= u.f AND x.time < u.t
       OFFSET 0) AS r
"""


def read_runs(conn: Conn, *, runs: Sequence[Run]) -> list[SegmentReadings]:
    """The raw readings of every run, as segments whose held values stop at the run's end."""
    if not runs:
        return []
    index, times, values = fetch_columns(
        conn,
        _RUNS,
        {
            "sensors": [r.segment.sensor_id for r in runs],
            "starts": [r.start for r in runs],
            "ends": [r.end for r in runs],
        },
        ("int8", "timestamptz", "float8"),
    )
    order = np.lexsort((times, index))  # by run, then time
    bounds = np.searchsorted(index[order], np.arange(1, len(runs) + 2))
    return [
        SegmentReadings(
            sensor_id=run.segment.sensor_id,
            span=Span(run.start, run.held_end),
            times=times[order[lo:hi]],
            values=values[order[lo:hi]],
        )
        for run, lo, hi in zip(runs, bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)
    ]
