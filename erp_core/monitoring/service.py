"""Queries behind the monitoring pages and API; the caller passes the connection.

Plain functions with keyword-only arguments. They read only, never commit, and use
SQL both PostgreSQL and TimescaleDB run (``date_bin``), so no query is written twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from coldchain.profiles import AlarmProfile, profile_from_dict
from erp_core.errors import InvalidArgumentError, NotFoundError
from erp_core.monitoring.buckets import plan_buckets
from erp_core.monitoring.models import (
    DeadLetter,
    DeadLetterCounts,
    GatewaySummary,
    OpenMatters,
    ReadingBucket,
    ReadingSeries,
    SensorSummary,
    SourceHealth,
    StreamWatermark,
)
from erp_core.monitoring.payload import PREVIEW_BYTES, preview_payload

MAX_DEAD_LETTERS = 1000

# Newest reading and 24 h count per sensor: both walk the (sensor_id, time) primary key.
_SENSORS = """
SELECT s.id, s.uid, s.quantity, s.unit, s.gateway_id,
       latest.time AS latest_time, latest.value AS latest_value,
       recent.n AS readings_24h
  FROM telemetry.sensors s
  LEFT JOIN LATERAL (
        SELECT r.time, r.value FROM telemetry.readings r
         WHERE r.sensor_id = s.id
         ORDER BY r.time DESC LIMIT 1) latest ON true
 CROSS JOIN LATERAL (
        SELECT count(*) AS n FROM telemetry.readings r
         WHERE r.sensor_id = s.id
           AND r.time > %(now)s - interval '24 hours' AND r.time <= %(now)s) recent
"""

_BUCKETS = """
SELECT date_bin(%(width)s, time, %(origin)s) AS bucket,
       count(*) AS n, min(value), max(value), avg(value)
  FROM telemetry.readings
 WHERE sensor_id = %(sensor_id)s AND time >= %(start)s AND time < %(end)s
 GROUP BY bucket
 ORDER BY bucket
"""


def list_sensors(conn: psycopg.Connection[Any], *, now: datetime) -> list[SensorSummary]:
    """Every sensor with its newest reading, by gateway and device id."""
    with conn.cursor(row_factory=class_row(SensorSummary)) as cur:
        # Temperature first within a device: it is what the cold chain is about.
        order = " ORDER BY s.gateway_id NULLS LAST, s.uid, s.quantity <> 'temperature', s.quantity"
        cur.execute(_SENSORS + order, {"now": now})
        return cur.fetchall()


def get_sensor(conn: psycopg.Connection[Any], *, sensor_id: int, now: datetime) -> SensorSummary:
    """One sensor with its newest reading; NotFoundError if there is no such sensor."""
    with conn.cursor(row_factory=class_row(SensorSummary)) as cur:
        cur.execute(_SENSORS + " WHERE s.id = %(id)s", {"now": now, "id": sensor_id})
        sensor = cur.fetchone()
    if sensor is None:
        raise NotFoundError("sensor", sensor_id)
    return sensor


def sensor_readings(  # noqa: PLR0913 - keyword-only, one per query field
    conn: psycopg.Connection[Any],
    *,
    sensor_id: int,
    start: datetime,
    end: datetime,
    max_points: int,
    now: datetime,
) -> ReadingSeries:
    """Readings of one sensor in [start, end) as at most ``max_points`` min/max/mean buckets."""
    plan = plan_buckets(start=start, end=end, max_points=max_points)
    sensor = get_sensor(conn, sensor_id=sensor_id, now=now)
    rows = conn.execute(
        _BUCKETS,
        {
            "width": plan.width,
            "origin": plan.origin,
            "sensor_id": sensor_id,
            "start": start,
            "end": end,
        },
    ).fetchall()
    buckets = []
    for bucket, count, low, high, mean in rows:
        bucket_start, bucket_end = plan.bounds(bucket)
        buckets.append(
            ReadingBucket(
                start=bucket_start, end=bucket_end, count=count, min=low, max=high, mean=mean
            )
        )
    return ReadingSeries(
        sensor=sensor,
        start=start,
        end=end,
        max_points=max_points,
        bucket_seconds=plan.width.total_seconds(),
        buckets=buckets,
    )


def first_reading(
    conn: psycopg.Connection[Any], *, sensor_id: int, since: datetime
) -> datetime | None:
    """The device time of the sensor's oldest reading at or after ``since``, if any."""
    row = conn.execute(
        "SELECT min(time) FROM telemetry.readings WHERE sensor_id = %s AND time >= %s",
        (sensor_id, since),
    ).fetchone()
    return None if row is None else row[0]


def sensor_profile(conn: psycopg.Connection[Any], *, sensor_id: int) -> AlarmProfile | None:
    """The sensor's effective alarm profile (its own, else its quantity's default), if any."""
    row = conn.execute(
        "SELECT spec FROM telemetry.sensor_effective_profiles WHERE sensor_id = %s", (sensor_id,)
    ).fetchone()
    return None if row is None else profile_from_dict(row[0])


def sensor_profiles(conn: psycopg.Connection[Any]) -> dict[int, AlarmProfile]:
    """Every sensor's effective alarm profile (sensors without one are left out)."""
    rows = conn.execute(
        "SELECT sensor_id, spec FROM telemetry.sensor_effective_profiles"
    ).fetchall()
    return {sensor_id: profile_from_dict(spec) for sensor_id, spec in rows}


def open_matters(conn: psycopg.Connection[Any]) -> OpenMatters:
    """How many alerts are not closed and how many lots have an open deviation."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM telemetry.alerts WHERE status <> 'closed'),"
        " (SELECT count(DISTINCT lot_id) FROM erp.deviations WHERE status = 'open')"
    ).fetchone()
    alerts, lots = row if row is not None else (0, 0)
    return OpenMatters(alerts=alerts, lots_with_deviation=lots)


def list_gateways(conn: psycopg.Connection[Any]) -> list[GatewaySummary]:
    """Every gateway with its liveness and the committed watermark of each stream."""
    streams: dict[str, list[StreamWatermark]] = {}
    rows = conn.execute(
        """
        SELECT w.gateway_id, w.stream, w.committed_seq, w.updated_at,
               (SELECT count(*) FROM telemetry.seq_ranges r
                 WHERE r.gateway_id = w.gateway_id AND r.stream = w.stream)
          FROM telemetry.gateway_streams w
         ORDER BY w.gateway_id, w.stream
        """
    ).fetchall()
    for gateway_id, stream, committed, updated_at, pending in rows:
        streams.setdefault(gateway_id, []).append(
            StreamWatermark(
                stream=stream,
                committed_seq=committed,
                updated_at=updated_at,
                pending_ranges=pending,
            )
        )
    gateways = conn.execute(
        "SELECT id, site, status, first_seen, last_seen, state "
        "FROM telemetry.gateways ORDER BY site, id"
    ).fetchall()
    return [
        GatewaySummary(
            id=gateway_id,
            site=site,
            status=status,
            first_seen=first_seen,
            last_seen=last_seen,
            outbox_depth=_outbox_depth(state),
            sources=_sources(state),
            streams=streams.get(gateway_id, []),
        )
        for gateway_id, site, status, first_seen, last_seen, state in gateways
    ]


def list_dead_letters(
    conn: psycopg.Connection[Any], *, limit: int, offset: int = 0
) -> list[DeadLetter]:
    """``limit`` dead letters from ``offset``, newest first, payloads cut to a preview."""
    if not 1 <= limit <= MAX_DEAD_LETTERS:
        raise InvalidArgumentError("limit", limit, f"must be between 1 and {MAX_DEAD_LETTERS}")
    rows = conn.execute(
        """
        SELECT id, received_at, last_received_at, topic, gateway_id, stream, seq, item_index,
               reason,
               substring(payload FROM 1 FOR %(preview)s), payload_size,
               encode(payload_sha256, 'hex'), times_received
          FROM telemetry.dead_letters
         ORDER BY received_at DESC, id DESC
         LIMIT %(limit)s OFFSET %(offset)s
        """,
        {"preview": PREVIEW_BYTES, "limit": limit, "offset": offset},
    ).fetchall()
    letters = []
    for row in rows:
        letter_id, received_at, last_at, topic, gateway_id, stream, seq, item_index = row[:8]
        reason = row[8]
        preview = preview_payload(bytes(row[9]), size=row[10])
        letters.append(
            DeadLetter(
                id=letter_id,
                received_at=received_at,
                last_received_at=last_at,
                topic=topic,
                gateway_id=gateway_id,
                stream=stream,
                seq=seq,
                item_index=item_index,
                reason=reason,
                payload=preview.text,
                payload_encoding=preview.encoding,
                payload_bytes=row[10],
                payload_truncated=preview.truncated,
                payload_sha256=row[11],
                times_received=row[12],
            )
        )
    return letters


def count_dead_letters(conn: psycopg.Connection[Any], *, since: datetime) -> DeadLetterCounts:
    """How many dead letters there are in all and how many arrived since ``since``."""
    row = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE received_at >= %s) FROM telemetry.dead_letters",
        (since,),
    ).fetchone()
    total, recent = row if row is not None else (0, 0)
    return DeadLetterCounts(total=total, recent=recent, since=since)


def _outbox_depth(state: object) -> int | None:
    # The state is whatever the gateway last sent; read it leniently, never fail on it.
    depth = state.get("outbox_depth") if isinstance(state, dict) else None
    return depth if isinstance(depth, int) and not isinstance(depth, bool) else None


def _sources(state: object) -> list[SourceHealth]:
    items = state.get("sources") if isinstance(state, dict) else None
    if not isinstance(items, list):
        return []
    sources = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            error = item.get("error")
            sources.append(
                SourceHealth(
                    name=item["name"],
                    ok=item.get("ok") is True,
                    error=error if isinstance(error, str) else None,
                )
            )
    return sources
