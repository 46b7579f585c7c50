"""Excursion episodes and pre-alarms of one sensor around a touched time range.

The window to re-read is the touched range widened to the stored episodes and
pre-alarm runs it overlaps, then to the nearest readings inside the pre-alarm
thresholds on each side (``coldchain.episodes.affected_window`` of the warning
profile): runs outside it are bounded by such readings and cannot change. The
window's episodes and pre-alarm runs are recomputed and reconciled with the stored
ones, so ids are stable and late data gives the same result as in-order data.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from coldchain.episodes import Episode, PreAlarm, StoredEpisode, detect, pre_alarms, reconcile
from ingest import alerts, prealarm_alerts
from ingest.alerts import ms_to_dt
from ingest.eval_target import LATE_AFTER, Conn, Target
from ingest.prealarm_alerts import ACTIVE_SQL, PRE_ALARM_KINDS, RUN_END_SQL


def episodes(conn: Conn, *, target: Target, lo: datetime, hi: datetime, now: datetime) -> set[int]:
    """Recompute the excursion episodes and pre-alarms around [lo, hi]; the alerts touched."""
    p, sensor = target.profile, target.sensor
    assert p is not None  # checked by the caller
    # widen the range to the stored episodes and pre-alarm runs it overlaps, then to
    # readings inside the pre-alarm thresholds (in range when there is no band)
    row = conn.execute(
        "SELECT least(%s, min(s)), CASE WHEN bool_or(e IS NULL) THEN NULL "  # noqa: S608
        "ELSE greatest(%s, max(e)) END FROM ("
        "SELECT start_t AS s, end_t AS e FROM telemetry.excursion_episodes "
        "WHERE sensor_id = %s AND status = 'active' "
        f"UNION ALL SELECT started_at, {RUN_END_SQL} FROM telemetry.alerts "
        f"WHERE sensor_id = %s AND {ACTIVE_SQL}) AS runs "
        "WHERE s <= %s AND (e IS NULL OR e >= %s)",
        (lo, hi, sensor.id, sensor.id, list(PRE_ALARM_KINDS), hi, lo),
    ).fetchone()
    lo0, hi0 = row or (lo, hi)
    ok = "value BETWEEN %s AND %s AND value BETWEEN %s AND %s"
    ok_args = (p.warn_low, p.warn_high, p.fault_low, p.fault_high)
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
        runs = pre_alarms(t, v, p, late=late)
    else:
        fresh, runs = [], []
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
    return touched | _pre_alarms(conn, target=target, runs=runs, window=(w_lo, w_hi), now=now)


def _pre_alarms(
    conn: Conn,
    *,
    target: Target,
    runs: list[PreAlarm],
    window: tuple[datetime | None, datetime | None],
    now: datetime,
) -> set[int]:
    """Reconcile the window's pre-alarm runs with the stored ones (their alerts)."""
    p, sensor = target.profile, target.sensor
    assert p is not None  # checked by the caller
    stored = [
        StoredEpisode(int(r[0]), r[1].removeprefix("pre_alarm_"), int(r[2]), r[3])
        for r in conn.execute(
            "SELECT id, kind, (extract(epoch FROM started_at) * 1000)::bigint, "  # noqa: S608
            f"(extract(epoch FROM {RUN_END_SQL}) * 1000)::bigint FROM telemetry.alerts "
            f"WHERE sensor_id = %s AND {ACTIVE_SQL} "
            f"AND ({RUN_END_SQL} IS NULL "
            f"OR {RUN_END_SQL} > coalesce(%s::timestamptz, '-infinity')) "
            "AND started_at < coalesce(%s::timestamptz, 'infinity') ORDER BY started_at, id",
            (sensor.id, list(PRE_ALARM_KINDS), window[0], window[1]),
        )
    ]
    if not stored and not any(r.raised for r in runs):
        return set()
    plan = reconcile(stored, runs)
    touched: set[int] = set()
    for gone, into in plan.superseded.items():
        status = "merged" if into is not None else "withdrawn"
        prealarm_alerts.end_run(conn, alert_id=gone, status=status, into=into, now=now)
        touched.add(gone)
    for alert_id, run in plan.upserts:
        alarm_alert = None
        if run.alarm_at is not None:
            row = conn.execute(
                "SELECT a.id FROM telemetry.alerts a "
                "JOIN telemetry.excursion_episodes e ON e.id = a.episode_id "
                "WHERE e.sensor_id = %s AND e.status = 'active' AND e.start_t >= %s "
                "AND e.start_t < coalesce(%s::timestamptz, 'infinity') ORDER BY e.start_t LIMIT 1",
                (
                    sensor.id,
                    ms_to_dt(run.start),
                    ms_to_dt(run.end) if run.end is not None else None,
                ),
            ).fetchone()
            alarm_alert = int(row[0]) if row else None
        touched_id = prealarm_alerts.sync_pre_alarm_alert(
            conn,
            alert_id=alert_id,
            run=run,
            sensor=sensor,
            profile=p,
            alarm_alert_id=alarm_alert,
            now=now,
        )
        if touched_id is not None:
            touched.add(touched_id)
    return touched
