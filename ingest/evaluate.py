"""Evaluation driven by stored data: touched ranges → excursion episodes → alerts.

The store records the (sensor, min time, max time) each batch touched in
``telemetry.eval_pending`` in the same transaction as the readings, so no range is
forgotten. After the commit (and the MQTT ack) ``evaluate_pending`` claims pending
ranges (``SKIP LOCKED``, so workers share them), skips with one vectorised query the
sensors whose new readings are all in range with no stored episode nearby, and for
the others, serialised per sensor by ``pg_advisory_xact_lock``, re-reads the affected
window of stored readings, recomputes its episodes with ``coldchain.episodes`` and
reconciles them with the stored ones. A sensor whose evaluation fails has its ranges
put back with the error, so it is retried later and never blocks the others.
``sweep`` is the periodic part: offline sensors, overdue calibration, left-over ranges.
Every function takes the caller's connection and never commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from coldchain.episodes import Episode, StoredEpisode, detect, reconcile
from coldchain.errors import ProfileError
from coldchain.profiles import AlarmProfile, profile_from_dict
from ingest import alerts
from ingest.alerts import SensorInfo, ms_to_dt

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]
LOCK_NAMESPACE = 7231  # first key of pg_advisory_xact_lock(int, int): "sensor evaluation"
LATE_AFTER = timedelta(minutes=10)
CONDITION_QUANTITIES = ("power", "battery")

_PROFILE_SQL = """
SELECT s.id, s.uid, s.quantity, s.unit, s.gateway_id, g.site,
       coalesce(a.spec, d.spec), coalesce(a.id, d.id)
  FROM telemetry.sensors s
  LEFT JOIN telemetry.gateways g ON g.id = s.gateway_id
  LEFT JOIN telemetry.sensor_profiles sp ON sp.sensor_id = s.id
  LEFT JOIN telemetry.alarm_profiles a ON a.id = sp.profile_id
  LEFT JOIN telemetry.alarm_profiles d ON d.default_for_quantity = s.quantity
 WHERE s.id = ANY(%s)
"""

# Which touched ranges need a full evaluation: an out-of-range or faulty value among the
# new readings, a stored episode overlapping the range or still open, or a live alert.
_PRECHECK_SQL = """
SELECT k.sensor_id
  FROM unnest(%s::int[], %s::timestamptz[], %s::timestamptz[]) AS k(sensor_id, lo, hi)
  JOIN telemetry.sensors s ON s.id = k.sensor_id
  LEFT JOIN telemetry.sensor_profiles sp ON sp.sensor_id = s.id
  LEFT JOIN telemetry.alarm_profiles a ON a.id = sp.profile_id
  LEFT JOIN telemetry.alarm_profiles d ON d.default_for_quantity = s.quantity
  CROSS JOIN LATERAL (SELECT coalesce(a.spec, d.spec) AS spec) p
 WHERE s.quantity = ANY(%s)
    OR (p.spec IS NOT NULL AND EXISTS (
          SELECT 1 FROM telemetry.readings r
           WHERE r.sensor_id = k.sensor_id AND r.time BETWEEN k.lo AND k.hi
             AND NOT r.value BETWEEN (p.spec->>'low')::float8 AND (p.spec->>'high')::float8))
    OR EXISTS (SELECT 1 FROM telemetry.excursion_episodes e
                WHERE e.sensor_id = k.sensor_id AND e.status = 'active'
                  AND (e.end_t IS NULL OR e.end_t >= k.lo))
    OR EXISTS (SELECT 1 FROM telemetry.alerts al
                WHERE al.sensor_id = k.sensor_id AND al.episode_id IS NULL
                  AND al.ended_at IS NULL AND al.status <> 'closed')
"""


@dataclass
class EvalSummary:
    """What one evaluation pass did."""

    ranges: int = 0
    sensors: int = 0
    skipped: int = 0
    failed: list[int] = field(default_factory=list)
    alerts: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Target:
    sensor: SensorInfo
    profile: AlarmProfile | None
    profile_id: int | None
    profile_error: ProfileError | None = None


def _targets(conn: Conn, sensor_ids: list[int]) -> dict[int, _Target]:
    out: dict[int, _Target] = {}
    location = _locations(conn, sensor_ids)
    for sid, uid, qty, unit, gw, site, spec, pid in conn.execute(_PROFILE_SQL, (sensor_ids,)):
        info = SensorInfo(sid, uid, qty, unit, gw, site, location.get(sid))
        try:
            out[sid] = _Target(info, profile_from_dict(spec) if spec else None, pid)
        except ProfileError as err:  # one bad profile must not stop the other sensors
            out[sid] = _Target(info, None, pid, err)
    return out


def _locations(conn: Conn, sensor_ids: list[int]) -> dict[int, str]:
    """Current ERP location names of the sensors, when the ERP schema is there."""
    (exists,) = conn.execute("SELECT to_regclass('erp.sensor_assignments') IS NOT NULL").fetchone()  # type: ignore[misc]
    if not exists:
        return {}
    rows = conn.execute(
        "SELECT sa.sensor_id, l.name FROM erp.sensor_assignments sa "
        "JOIN erp.locations l ON l.id = sa.location_id "
        "WHERE sa.sensor_id = ANY(%s) AND sa.valid_to IS NULL",
        (sensor_ids,),
    ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}


def evaluate_pending(
    conn: Conn, *, now: datetime, limit: int = 5000, retry_after_s: float = 30.0
) -> EvalSummary:
    """Claim up to ``limit`` pending ranges and evaluate their sensors (caller commits).

    A range that failed n times waits n × ``retry_after_s`` (at most 20×) before the next try.
    """
    rows = conn.execute(
        "WITH c AS (SELECT id FROM telemetry.eval_pending "
        "WHERE attempts = 0 OR enqueued_at + least(attempts, 20) * %s * interval '1 second' "
        "<= now() ORDER BY id FOR UPDATE SKIP LOCKED LIMIT %s) "
        "DELETE FROM telemetry.eval_pending p USING c WHERE p.id = c.id "
        "RETURNING p.sensor_id, p.min_t, p.max_t, p.attempts",
        (retry_after_s, limit),
    ).fetchall()
    summary = EvalSummary(ranges=len(rows))
    if not rows:
        return summary
    spans: dict[int, tuple[datetime, datetime, int]] = {}
    for sid, lo, hi, attempts in rows:
        old = spans.get(sid)
        spans[sid] = (
            (min(old[0], lo), max(old[1], hi), max(old[2], attempts)) if old else (lo, hi, attempts)
        )
    ids = sorted(spans)
    # lock first (in id order: no deadlock between workers), so the pre-check below sees
    # what another worker's evaluation of the same sensors committed
    conn.execute(
        "SELECT count(pg_advisory_xact_lock(%s, s)) FROM "
        "(SELECT s FROM unnest(%s::int[]) AS s ORDER BY s) AS q",
        (LOCK_NAMESPACE, ids),
    )
    hot = {
        int(r[0])
        for r in conn.execute(
            _PRECHECK_SQL,
            (
                ids,
                [spans[i][0] for i in ids],
                [spans[i][1] for i in ids],
                list(CONDITION_QUANTITIES),
            ),
        )
    }
    summary.skipped = len(ids) - len(hot)
    targets = _targets(conn, sorted(hot)) if hot else {}
    for sid in sorted(hot):
        lo, hi, attempts = spans[sid]
        target = targets.get(sid)
        if target is None:
            continue
        try:
            with conn.transaction():  # a savepoint: one sensor's failure spares the others
                summary.alerts |= evaluate_sensor(conn, target=target, lo=lo, hi=hi, now=now)
        except psycopg.OperationalError:
            raise  # the connection is gone: the whole claim rolls back and is retried
        except Exception as err:
            log.exception("evaluating sensor %s failed; will retry", sid)
            summary.failed.append(sid)
            conn.execute(
                "INSERT INTO telemetry.eval_pending (sensor_id, min_t, max_t, attempts, "
                "last_error) VALUES (%s, %s, %s, %s, %s)",
                (sid, lo, hi, attempts + 1, str(err)[:2000]),
            )
        summary.sensors += 1
    return summary


def evaluate_sensor(
    conn: Conn, *, target: _Target, lo: datetime, hi: datetime, now: datetime
) -> set[int]:
    """Re-evaluate one sensor for readings touched in [lo, hi]; returns the alerts touched."""
    if target.profile_error is not None:
        raise target.profile_error
    sensor = target.sensor
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, sensor.id))
    touched: set[int] = set()
    if sensor.quantity in CONDITION_QUANTITIES:
        touched |= _conditions(conn, target=target, now=now)
    elif target.profile is not None:
        touched |= _episodes(conn, target=target, lo=lo, hi=hi, now=now)
        touched |= _fault(conn, target=target, now=now)
        touched |= _stuck(conn, target=target, now=now)
    touched |= _back_online(conn, target=target, now=now)
    return touched


def _episodes(
    conn: Conn, *, target: _Target, lo: datetime, hi: datetime, now: datetime
) -> set[int]:
    p, sensor = target.profile, target.sensor
    assert p is not None  # checked by the caller
    # widen the range to the stored episodes it overlaps, then to in-range readings
    row = conn.execute(
        "SELECT least(%s, min(start_t)), "
        "CASE WHEN bool_or(end_t IS NULL) THEN NULL ELSE greatest(%s, max(end_t)) END "
        "FROM telemetry.excursion_episodes WHERE sensor_id = %s AND status = 'active' "
        "AND start_t <= %s AND (end_t IS NULL OR end_t >= %s)",
        (lo, hi, sensor.id, hi, lo),
    ).fetchone()
    lo0, hi0 = row or (lo, hi)
    ok = "value BETWEEN %s AND %s AND value BETWEEN %s AND %s"
    ok_args = (p.low, p.high, p.fault_low, p.fault_high)
    w = conn.execute(
        f"SELECT (SELECT max(time) FROM telemetry.readings WHERE sensor_id = %s "  # noqa: S608
        f"AND time < %s AND {ok}), (SELECT min(time) FROM telemetry.readings "
        f"WHERE sensor_id = %s AND time > %s AND {ok})",
        (sensor.id, lo0, *ok_args, sensor.id, hi0, *ok_args),
    ).fetchone()
    w_lo, w_hi = w or (None, None)
    readings = conn.execute(
        "SELECT (extract(epoch FROM time) * 1000)::bigint, value, received_at - time > %s "
        "FROM telemetry.readings WHERE sensor_id = %s "
        "AND time >= coalesce(%s::timestamptz, '-infinity') "
        "AND time <= coalesce(%s::timestamptz, 'infinity') "
        "AND value BETWEEN %s AND %s ORDER BY time",
        (LATE_AFTER, sensor.id, w_lo, w_hi, p.fault_low, p.fault_high),
    ).fetchall()
    if readings:
        t = np.array([r[0] for r in readings], dtype=np.int64)
        v = np.array([r[1] for r in readings], dtype=np.float64)
        late = np.array([r[2] for r in readings], dtype=bool)
        fresh = detect(t, v, p, late=late)
    else:
        fresh = []
    stored = [
        StoredEpisode(int(r[0]), r[1], int(r[2]), None if r[3] is None else int(r[3]))
        for r in conn.execute(
            "SELECT id, kind, (extract(epoch FROM start_t) * 1000)::bigint, "
            "(extract(epoch FROM end_t) * 1000)::bigint FROM telemetry.excursion_episodes "
            "WHERE sensor_id = %s AND status = 'active' "
            "AND (end_t IS NULL OR end_t > coalesce(%s::timestamptz, '-infinity')) "
            "AND start_t < coalesce(%s::timestamptz, 'infinity') ORDER BY start_t, id",
            (sensor.id, w_lo, w_hi),
        )
    ]
    plan = reconcile(stored, fresh)
    touched: set[int] = set()
    kept: list[tuple[int, Episode]] = []
    for sid, ep in plan.upserts:
        values = (
            ep.kind,
            ep.level,
            ms_to_dt(ep.start),
            ms_to_dt(ep.end) if ep.end is not None else None,
            ms_to_dt(ep.last),
            ep.peak,
            ep.area,
            ep.readings,
            ep.delay_reached,
            ep.abs_breach,
            ep.late,
            now,
        )
        episode_id = sid
        if episode_id is None:
            new = conn.execute(
                "INSERT INTO telemetry.excursion_episodes (kind, level, start_t, end_t, last_t, "
                "peak, area_c_min, readings, delay_reached, abs_breach, late, updated_at, "
                "sensor_id, profile_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (*values, sensor.id, target.profile_id),
            ).fetchone()
            episode_id = int(new[0]) if new else 0
        else:
            conn.execute(
                "UPDATE telemetry.excursion_episodes SET kind = %s, level = %s, start_t = %s, "
                "end_t = %s, last_t = %s, peak = %s, area_c_min = %s, readings = %s, "
                "delay_reached = %s, abs_breach = %s, late = late OR %s, updated_at = %s "
                "WHERE id = %s",
                (*values, episode_id),
            )
        kept.append((episode_id, ep))
    for gone, into in plan.superseded.items():
        conn.execute(
            "UPDATE telemetry.excursion_episodes SET status = 'superseded', superseded_by = %s, "
            "updated_at = %s WHERE id = %s",
            (into, now, gone),
        )
        alerts.merge_episode_alert(conn, gone=gone, into=into, now=now)
    for sid, ep in kept:
        alert_id = alerts.sync_episode_alert(
            conn,
            episode_id=sid,
            episode=ep,
            sensor=sensor,
            profile=p,
            now=now,
        )
        if alert_id is not None:
            touched.add(alert_id)
    return touched


def _bad_run(
    conn: Conn, *, sensor_id: int, bad_sql: str, args: tuple[Any, ...]
) -> tuple[datetime | None, datetime | None, bool]:
    """(start of the trailing bad run, first good reading after the last bad one, late).

    By device time, so the answer does not depend on arrival order.
    """
    row = conn.execute(
        f"WITH last_bad AS (SELECT max(time) AS t FROM telemetry.readings "  # noqa: S608
        f"WHERE sensor_id = %s AND {bad_sql}), "
        f"last_good AS (SELECT max(time) AS t FROM telemetry.readings "
        f"WHERE sensor_id = %s AND NOT ({bad_sql})) "
        "SELECT (SELECT min(time) FROM telemetry.readings WHERE sensor_id = %s "
        "        AND time > coalesce((SELECT t FROM last_good), '-infinity')), "
        "       (SELECT min(time) FROM telemetry.readings WHERE sensor_id = %s "
        "        AND time > (SELECT t FROM last_bad)), "
        "       (SELECT t FROM last_bad) > coalesce((SELECT t FROM last_good), '-infinity'), "
        "       (SELECT received_at - time > %s FROM telemetry.readings WHERE sensor_id = %s "
        "        AND time = (SELECT t FROM last_bad))",
        (sensor_id, *args, sensor_id, *args, sensor_id, sensor_id, LATE_AFTER, sensor_id),
    ).fetchone()
    if row is None or row[2] is None:
        return None, None, False
    bad_start, good_after, bad_now, late = row
    return (bad_start if bad_now else None), (None if bad_now else good_after), bool(late)


_CONDITIONS: dict[str, tuple[str, str, str]] = {
    # quantity -> (alert kind, severity, what the message says)
    "power": ("power_loss", "critical", "mains power lost"),
    "battery": ("low_battery", "warning", "battery low"),
}


def _conditions(conn: Conn, *, target: _Target, now: datetime) -> set[int]:
    sensor = target.sensor
    kind, severity, text = _CONDITIONS[sensor.quantity]
    args: tuple[Any, ...] = ()
    if sensor.quantity == "power":
        bad_sql = "value = 0"
    else:
        pct = target.profile.low_battery_pct if target.profile else 15.0
        bad_sql, args = "value < %s", (pct,)
    return _condition(
        conn, target=target, kind=kind, severity=severity, text=text, bad=(bad_sql, args), now=now
    )


def _condition(  # noqa: PLR0913 - the condition is described by its fields
    conn: Conn,
    *,
    target: _Target,
    kind: str,
    severity: str,
    text: str,
    bad: tuple[str, tuple[Any, ...]],
    now: datetime,
) -> set[int]:
    sensor = target.sensor
    started, cleared, late = _bad_run(conn, sensor_id=sensor.id, bad_sql=bad[0], args=bad[1])
    if started is not None:
        info = alerts.detail(
            sensor, kind=kind, started_at=started, ended_at=None, late=late, profile=target.profile
        )
        where = sensor.location or sensor.uid
        opened = alerts.open_condition(
            conn,
            sensor=sensor,
            kind=kind,
            severity=severity,
            started_at=started,
            summary=f"{where}: {text}" + (" (late data)" if late else ""),
            info=info,
            now=now,
        )
        return {opened} if opened is not None else set()
    if cleared is not None:
        ended = alerts.end_condition(
            conn, sensor_id=sensor.id, kind=kind, ended_at=cleared, now=now
        )
        return {ended} if ended is not None else set()
    return set()


def _fault(conn: Conn, *, target: _Target, now: datetime) -> set[int]:
    """A physically impossible value opens a sensor-fault alert; a valid one after it ends it."""
    p = target.profile
    assert p is not None  # checked by the caller
    return _condition(
        conn,
        target=target,
        kind="sensor_fault",
        severity="warning",
        text="sensor fault (impossible value)",
        bad=("NOT value BETWEEN %s AND %s", (p.fault_low, p.fault_high)),
        now=now,
    )


def _stuck(conn: Conn, *, target: _Target, now: datetime) -> set[int]:
    """The same value for ``stuck_after_s`` from a reporting probe: a stuck sensor."""
    p, sensor = target.profile, target.sensor
    if p is None or p.stuck_after_s is None:
        return set()
    row = conn.execute(
        "WITH last AS (SELECT time, value FROM telemetry.readings WHERE sensor_id = %s "
        "ORDER BY time DESC LIMIT 1), "
        "changed AS (SELECT max(r.time) AS t FROM telemetry.readings r, last "
        "WHERE r.sensor_id = %s AND r.value <> last.value) "
        "SELECT (SELECT time FROM last), (SELECT min(r.time) FROM telemetry.readings r "
        "WHERE r.sensor_id = %s AND r.time > coalesce((SELECT t FROM changed), '-infinity')), "
        "(SELECT value FROM last)",
        (sensor.id, sensor.id, sensor.id),
    ).fetchone()
    if row is None or row[0] is None:
        return set()
    last_t, run_start, value = row
    if last_t - run_start >= timedelta(seconds=p.stuck_after_s):
        info = alerts.detail(
            sensor,
            kind="sensor_stuck",
            started_at=run_start,
            ended_at=None,
            late=False,
            profile=p,
            extra={"value": value, "stuck_after_s": p.stuck_after_s},
        )
        opened = alerts.open_condition(
            conn,
            sensor=sensor,
            kind="sensor_stuck",
            severity="warning",
            started_at=run_start,
            summary=f"{sensor.location or sensor.uid}: value stuck at {value:g}",
            info=info,
            now=now,
        )
        return {opened} if opened is not None else set()
    ended = alerts.end_condition(
        conn, sensor_id=sensor.id, kind="sensor_stuck", ended_at=run_start, now=now
    )
    return {ended} if ended is not None else set()


def _back_online(conn: Conn, *, target: _Target, now: datetime) -> set[int]:
    """End a live offline alert once a reading newer than the offline threshold is stored."""
    offline_s = target.profile.offline_after_s if target.profile else None
    if offline_s is None:
        return set()
    row = conn.execute(
        "SELECT max(time) FROM telemetry.readings WHERE sensor_id = %s", (target.sensor.id,)
    ).fetchone()
    last = row[0] if row else None
    if last is None or now - last > timedelta(seconds=offline_s):
        return set()
    ended = alerts.end_condition(
        conn, sensor_id=target.sensor.id, kind="offline", ended_at=last, now=now
    )
    return {ended} if ended is not None else set()


def sweep(conn: Conn, *, now: datetime) -> EvalSummary:
    """The periodic job: left-over ranges, then offline, calibration and stuck-value checks."""
    summary = evaluate_pending(conn, now=now, retry_after_s=0)
    rows = conn.execute(
        "SELECT s.id FROM telemetry.sensors s "
        "LEFT JOIN telemetry.sensor_profiles sp ON sp.sensor_id = s.id "
        "LEFT JOIN telemetry.alarm_profiles d ON d.default_for_quantity = s.quantity "
        "WHERE sp.sensor_id IS NOT NULL OR d.id IS NOT NULL "
        "   OR s.calibration_due IS NOT NULL ORDER BY s.id"
    ).fetchall()
    targets = _targets(conn, [int(r[0]) for r in rows]) if rows else {}
    for target in targets.values():
        if target.profile_error is not None:
            log.error("sensor %s: %s", target.sensor.uid, target.profile_error)
            continue
        summary.alerts |= _offline(conn, target=target, now=now)
        summary.alerts |= _calibration(conn, target=target, now=now)
        if target.sensor.quantity not in CONDITION_QUANTITIES:
            # in-range readings skip evaluation, so a stuck probe is found here
            summary.alerts |= _stuck(conn, target=target, now=now)
    return summary


def _offline(conn: Conn, *, target: _Target, now: datetime) -> set[int]:
    if target.profile is None:
        return set()
    sensor = target.sensor
    row = conn.execute(
        "SELECT max(time) FROM telemetry.readings WHERE sensor_id = %s", (sensor.id,)
    ).fetchone()
    last = row[0] if row else None
    if last is None:
        return set()
    limit = timedelta(seconds=target.profile.offline_after_s)
    if now - last <= limit:
        return _back_online(conn, target=target, now=now)
    info = alerts.detail(
        sensor,
        kind="offline",
        started_at=last,
        ended_at=None,
        late=False,
        profile=target.profile,
        extra={"last_reading_at": last.isoformat(), "offline_after_s": limit.total_seconds()},
    )
    where = sensor.location or sensor.uid
    opened = alerts.open_condition(
        conn,
        sensor=sensor,
        kind="offline",
        severity="warning",
        started_at=last,
        summary=f"{where}: no data since {last:%Y-%m-%d %H:%M} UTC",
        info=info,
        now=now,
    )
    return {opened} if opened is not None else set()


def _calibration(conn: Conn, *, target: _Target, now: datetime) -> set[int]:
    sensor = target.sensor
    row = conn.execute(
        "SELECT calibration_due FROM telemetry.sensors WHERE id = %s", (sensor.id,)
    ).fetchone()
    due = row[0] if row else None
    if due is None or due >= now.date():
        ended = alerts.end_condition(
            conn, sensor_id=sensor.id, kind="calibration_overdue", ended_at=now, now=now
        )
        return {ended} if ended is not None else set()
    started = datetime.combine(due, datetime.min.time(), tzinfo=now.tzinfo)
    info = alerts.detail(
        sensor,
        kind="calibration_overdue",
        started_at=started,
        ended_at=None,
        late=False,
        profile=target.profile,
        extra={"calibration_due": due.isoformat()},
    )
    opened = alerts.open_condition(
        conn,
        sensor=sensor,
        kind="calibration_overdue",
        severity="warning",
        started_at=started,
        summary=f"{sensor.location or sensor.uid}: calibration overdue since {due.isoformat()}",
        info=info,
        now=now,
    )
    return {opened} if opened is not None else set()
