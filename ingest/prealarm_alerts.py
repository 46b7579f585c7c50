"""Alert writes for pre-alarms: one warning alert per pre-alarm run, kept in step with it.

A pre-alarm has no row in ``telemetry.excursion_episodes`` (those open deviations and
block lots); its alert is its record. The alert's ``started_at`` is the run's start and
``detail.run_ended_at`` the run's end, so the evaluation can find and reconcile the
stored runs the way it does excursion episodes. When an alarm takes over, the
pre-alarm ends with an ``updated`` event naming the alarm's alert (``alarm_alert_id``)
and stops escalating: people hear about the alarm, not twice. Functions take the
caller's connection and never commit.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg

from coldchain.alert_kinds import RAISED_AT, AlertKind
from coldchain.alert_states import Told, meaningful_changes
from coldchain.episodes import PreAlarm
from coldchain.profiles import AlarmProfile
from ingest.alerts import SensorInfo, append_event, detail, ms_to_dt

Conn = psycopg.Connection[Any]
PRE_ALARM_KINDS = (AlertKind.PRE_ALARM_HIGH, AlertKind.PRE_ALARM_LOW)

# The stored runs (live pre-alarm alerts) of a sensor, as (alert id, kind, start, run end).
RUN_END_SQL = "(detail->>'run_ended_at')::timestamptz"
ACTIVE_SQL = "kind = ANY(%s) AND episode_id IS NULL AND detail->>'run_status' = 'active'"


def _summary(sensor: SensorInfo, run: PreAlarm, profile: AlarmProfile) -> str:
    where = sensor.location or sensor.uid
    high = run.kind == "high"
    threshold = profile.warn_high if high else profile.warn_low
    limit = profile.high if high else profile.low
    word = "above" if high else "below"
    late = " (late data)" if run.late else ""
    return (
        f"{where}: pre-alarm, temperature {word} {threshold:g} °C (limit {limit:g} °C), "
        f"peak {run.peak:.1f} °C{late}"
    )


def _end(run: PreAlarm) -> datetime | None:
    return ms_to_dt(run.ended_at) if run.ended_at is not None else None


def sync_pre_alarm_alert(  # noqa: PLR0913 - keyword-only, each one needed
    conn: Conn,
    *,
    alert_id: int | None,
    run: PreAlarm,
    sensor: SensorInfo,
    profile: AlarmProfile,
    alarm_alert_id: int | None,
    now: datetime,
) -> int | None:
    """Open, update or withdraw the alert of one pre-alarm run; returns the alert touched."""
    kind = AlertKind(f"pre_alarm_{run.kind}")
    started, ended = ms_to_dt(run.start), _end(run)
    duration_s = ((run.ended_at if run.ended_at is not None else run.last) - run.start) / 1000
    summary = _summary(sensor, run, profile)
    info = detail(
        sensor,
        kind=kind,
        started_at=started,
        ended_at=ended,
        late=run.late,
        profile=profile,
        peak=run.peak,
        duration_s=duration_s,
        extra={
            "summary": summary,
            "run_status": "active",
            "run_ended_at": ms_to_dt(run.end).isoformat() if run.end is not None else None,
            "warn_low": profile.warn_low,
            "warn_high": profile.warn_high,
            "pre_alarm_delay_s": profile.pre_alarm_delay_s,
            "alarm_at": ms_to_dt(run.alarm_at).isoformat() if run.alarm_at is not None else None,
            "alarm_alert_id": alarm_alert_id,
        },
    )
    if alert_id is None:
        if not run.raised:
            return None
        row = conn.execute(
            "INSERT INTO telemetry.alerts (kind, severity, sensor_id, gateway_id, site, late, "
            "started_at, ended_at, peak, duration_s, summary, opened_at, updated_at, "
            "notified_peak, detail) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb) "
            "ON CONFLICT (sensor_id, kind) "
            "WHERE episode_id IS NULL AND ended_at IS NULL AND status <> 'closed' DO NOTHING "
            "RETURNING id",
            (
                kind,
                RAISED_AT[kind],
                sensor.id,
                sensor.gateway_id,
                sensor.site,
                run.late,
                started,
                ended,
                run.peak,
                duration_s,
                summary,
                now,
                now,
                run.peak,
                json.dumps(info),
            ),
        ).fetchone()
        if row is None:  # another live pre-alarm of this kind: cannot happen under the lock
            return None
        append_event(conn, alert_id=int(row[0]), event="opened", at=now, detail=info)
        return int(row[0])
    if not run.raised:  # late data showed the alarm came first: the warning is withdrawn
        end_run(conn, alert_id=alert_id, status="withdrawn", into=None, now=now)
        return alert_id
    old = conn.execute(
        "SELECT ended_at, late FROM telemetry.alerts WHERE id = %s FOR UPDATE", (alert_id,)
    ).fetchone()
    old_end, old_late = old or (None, False)
    changes = list(
        meaningful_changes(
            Told(None, ended=old_end is not None, late=old_late),
            Told(None, ended=ended is not None, late=run.late),
            side=run.kind,
            ended_as="alarm" if run.alarm_at is not None else "ended",
        )
    )
    conn.execute(
        "UPDATE telemetry.alerts SET late = late OR %s, started_at = %s, ended_at = %s, "
        "peak = %s, duration_s = %s, summary = %s, detail = %s::jsonb, updated_at = %s "
        "WHERE id = %s",
        (run.late, started, ended, run.peak, duration_s, summary, json.dumps(info), now, alert_id),
    )
    if changes:
        append_event(
            conn, alert_id=alert_id, event="updated", at=now, detail={**info, "changes": changes}
        )
    return alert_id


def end_run(conn: Conn, *, alert_id: int, status: str, into: int | None, now: datetime) -> None:
    """A stored run merged into another (``into``) or withdrawn: end its alert, tell why."""
    row = conn.execute(
        "UPDATE telemetry.alerts SET ended_at = coalesce(ended_at, %s), updated_at = %s, "
        "detail = detail || jsonb_build_object('run_status', %s::text, "
        "'merged_into_alert', %s::bigint) WHERE id = %s RETURNING detail",
        (now, now, status, into, alert_id),
    ).fetchone()
    if row is not None:
        append_event(
            conn, alert_id=alert_id, event="updated", at=now, detail={**row[0], "changes": [status]}
        )
