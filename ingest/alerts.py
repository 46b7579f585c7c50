"""Alert writes of the evaluation side: open and update alerts, append their events.

One alert per excursion episode (``alerts.episode_id`` is UNIQUE) and one live alert
per sensor condition (a partial unique index), so any number of workers may race and
still raise a single alert. Every change a person must hear about appends a row to
``telemetry.alert_events``, the notifier's transactional outbox; a mere refresh of
duration or peak updates the alert row silently. Functions take the caller's
connection and never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from coldchain.alert_kinds import RAISED_AT, AlertKind
from coldchain.alert_states import AlertState, Status, Told, escalation_due, meaningful_changes
from coldchain.episodes import Episode, budget_exceeded
from coldchain.profiles import AlarmProfile

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """What an alert message says about its sensor."""

    id: int
    uid: str
    quantity: str
    unit: str
    gateway_id: str | None
    site: str | None
    location: str | None


def ms_to_dt(ms: int) -> datetime:
    """Milliseconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def detail(  # noqa: PLR0913 - every field is part of the message
    sensor: SensorInfo,
    *,
    kind: str,
    started_at: datetime,
    ended_at: datetime | None,
    late: bool,
    profile: AlarmProfile | None,
    peak: float | None = None,
    duration_s: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON detail of an alert event: everything a notification needs to be read alone."""
    out: dict[str, Any] = {
        "kind": kind,
        "sensor": sensor.uid,
        "sensor_id": sensor.id,
        "quantity": sensor.quantity,
        "unit": sensor.unit,
        "gateway": sensor.gateway_id,
        "site": sensor.site,
        "location": sensor.location,
        "peak": peak,
        "duration_s": duration_s,
        "late": late,
        "started_at": _iso(started_at),
        "ended_at": _iso(ended_at),
        "profile": profile.name if profile else None,
        "limits": (
            {
                "low": profile.low,
                "high": profile.high,
                "abs_low": profile.abs_low,
                "abs_high": profile.abs_high,
                "alarm_delay_s": profile.alarm_delay_s,
            }
            if profile
            else None
        ),
    }
    if extra:
        out.update(extra)
    return out


def append_event(  # noqa: PLR0913 - keyword-only fields of one event row
    conn: Conn,
    *,
    alert_id: int,
    event: str,
    at: datetime,
    detail: dict[str, Any],
    actor: str | None = None,
) -> None:
    """Append one row to the alert's event log (at the alert's current escalation level).

    Through ``telemetry.alert_append_event`` (migration 0023), the one writer of
    evaluation events; acknowledging and closing append theirs in their own functions.
    """
    conn.execute(
        "SELECT telemetry.alert_append_event(%s, %s, %s, %s, %s::jsonb)",
        (alert_id, event, at, actor, json.dumps(detail)),
    )


def _summary(sensor: SensorInfo, ep: Episode, profile: AlarmProfile) -> str:
    where = sensor.location or sensor.uid
    limit = profile.high if ep.kind == "high" else profile.low
    word = "above" if ep.kind == "high" else "below"
    late = " (late data)" if ep.late else ""
    return f"{where}: temperature {word} {limit:g} °C, peak {ep.peak:.1f} °C{late}"


def sync_episode_alert(  # noqa: PLR0913 - keyword-only, each one needed
    conn: Conn,
    *,
    episode_id: int,
    episode: Episode,
    sensor: SensorInfo,
    profile: AlarmProfile,
    now: datetime,
) -> int | None:
    """Open or update the alert of an alarm-level episode; returns the alert id (None: none)."""
    ep = episode
    started, ended = ms_to_dt(ep.start), ms_to_dt(ep.end) if ep.end is not None else None
    duration_s = ep.duration_ms / 1000
    severity = RAISED_AT[AlertKind(f"excursion_{ep.kind}")]
    info = detail(
        sensor,
        kind=f"excursion_{ep.kind}",
        started_at=started,
        ended_at=ended,
        late=ep.late,
        profile=profile,
        peak=ep.peak,
        duration_s=duration_s,
        extra={
            "area_c_min": ep.area,
            "abs_breach": ep.abs_breach,
            "delay_reached": ep.delay_reached,
            "episode_id": episode_id,
            "budget_exceeded": budget_exceeded(ep, 0, profile),
        },
    )
    summary = _summary(sensor, ep, profile)
    info["summary"] = summary
    row = conn.execute(
        "SELECT id, notified_peak, ended_at, late, detail->>'abs_breach', "
        "coalesce(jsonb_array_length(detail->'budget_exceeded'), 0) "
        "FROM telemetry.alerts WHERE episode_id = %s FOR UPDATE",
        (episode_id,),
    ).fetchone()
    if row is None:
        if ep.level != "alarm":
            return None
        inserted = conn.execute(
            "INSERT INTO telemetry.alerts (kind, severity, sensor_id, gateway_id, site, late, "
            "started_at, ended_at, peak, duration_s, summary, opened_at, updated_at, "
            "episode_id, notified_peak, detail) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb) "
            "ON CONFLICT (episode_id) DO NOTHING RETURNING id",
            (
                f"excursion_{ep.kind}",
                severity,
                sensor.id,
                sensor.gateway_id,
                sensor.site,
                ep.late,
                started,
                ended,
                ep.peak,
                duration_s,
                summary,
                now,
                now,
                episode_id,
                ep.peak,
                json.dumps(info),
            ),
        ).fetchone()
        if inserted is None:  # cannot happen under the sensor lock; harmless if it does
            return None
        append_event(conn, alert_id=int(inserted[0]), event="opened", at=now, detail=info)
        return int(inserted[0])
    alert_id, notified_peak, old_end, old_late, old_abs, old_budget = row
    told = Told(
        notified_peak, ended=old_end is not None, late=old_late, abs_breach=old_abs == "true",
        budget=bool(old_budget),
    )  # fmt: skip
    now_told = Told(
        ep.peak, ended=ended is not None, late=ep.late, abs_breach=ep.abs_breach,
        budget=bool(info["budget_exceeded"]),
    )  # fmt: skip
    changes = list(meaningful_changes(told, now_told, side=ep.kind))
    conn.execute(
        "UPDATE telemetry.alerts SET late = late OR %s, started_at = %s, ended_at = %s, "
        "peak = %s, duration_s = %s, summary = %s, detail = %s::jsonb, updated_at = %s, "
        "notified_peak = CASE WHEN %s THEN %s ELSE notified_peak END WHERE id = %s",
        (
            ep.late,
            started,
            ended,
            ep.peak,
            duration_s,
            summary,
            json.dumps(info),
            now,
            "peak" in changes,
            ep.peak,
            alert_id,
        ),
    )
    if changes:
        append_event(
            conn, alert_id=alert_id, event="updated", at=now, detail={**info, "changes": changes}
        )
    return int(alert_id)


def merge_episode_alert(conn: Conn, *, gone: int, into: int | None, now: datetime) -> None:
    """Late data merged episode ``gone`` into ``into``: move or end its alert, with an event."""
    row = conn.execute(
        "SELECT id, detail FROM telemetry.alerts WHERE episode_id = %s FOR UPDATE", (gone,)
    ).fetchone()
    if row is None:
        return
    alert_id, info = row
    keeper = (
        conn.execute("SELECT id FROM telemetry.alerts WHERE episode_id = %s", (into,)).fetchone()
        if into is not None
        else None
    )
    if into is not None and keeper is None:
        conn.execute(
            "UPDATE telemetry.alerts SET episode_id = %s, updated_at = %s WHERE id = %s",
            (into, now, alert_id),
        )
        return
    conn.execute(
        "UPDATE telemetry.alerts SET episode_id = NULL, ended_at = coalesce(ended_at, %s), "
        "updated_at = %s WHERE id = %s",
        (now, now, alert_id),
    )
    merged = {**info, "changes": ["merged"], "merged_into_alert": keeper[0] if keeper else None}
    append_event(conn, alert_id=alert_id, event="updated", at=now, detail=merged)


def open_condition(  # noqa: PLR0913 - every field is part of the alert
    conn: Conn,
    *,
    sensor: SensorInfo,
    kind: AlertKind,
    started_at: datetime,
    summary: str,
    info: dict[str, Any],
    now: datetime,
) -> int | None:
    """Open the live alert of a sensor condition unless one is live; returns a new id or None."""
    info = {**info, "summary": summary}
    row = conn.execute(
        "INSERT INTO telemetry.alerts (kind, severity, sensor_id, gateway_id, site, late, "
        "started_at, summary, opened_at, updated_at, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb) "
        "ON CONFLICT (sensor_id, kind) "
        "WHERE episode_id IS NULL AND ended_at IS NULL AND status <> 'closed' DO NOTHING "
        "RETURNING id",
        (
            kind,
            RAISED_AT[kind],
            sensor.id,
            sensor.gateway_id,
            sensor.site,
            bool(info.get("late", False)),
            started_at,
            summary,
            now,
            now,
            json.dumps(info),
        ),
    ).fetchone()
    if row is None:
        return None
    append_event(conn, alert_id=int(row[0]), event="opened", at=now, detail=info)
    return int(row[0])


def end_condition(
    conn: Conn, *, sensor_id: int, kind: str, ended_at: datetime, now: datetime
) -> int | None:
    """Mark the live alert of a condition as ended (the condition cleared); returns its id."""
    row = conn.execute(
        "UPDATE telemetry.alerts SET ended_at = %s, updated_at = %s, "
        "duration_s = extract(epoch FROM %s - started_at) "
        "WHERE sensor_id = %s AND kind = %s AND episode_id IS NULL AND ended_at IS NULL "
        "AND status <> 'closed' RETURNING id, detail",
        (ended_at, now, ended_at, sensor_id, kind),
    ).fetchone()
    if row is None:
        return None
    info = {**row[1], "ended_at": ended_at.isoformat(), "changes": ["ended"]}
    append_event(conn, alert_id=int(row[0]), event="updated", at=now, detail=info)
    return int(row[0])


def refresh_condition(  # noqa: PLR0913 - keyword-only fields of the refresh
    conn: Conn,
    *,
    sensor_id: int,
    kind: str,
    peak: float,
    summary: str,
    info: dict[str, Any],
    now: datetime,
) -> int | None:
    """Update the figures of a live condition alert silently (no event); returns its id."""
    fresh = {k: v for k, v in info.items() if k not in ("started_at", "ended_at")}
    row = conn.execute(
        "UPDATE telemetry.alerts SET peak = greatest(peak, %s), summary = %s, "
        "detail = detail || %s::jsonb, updated_at = %s "
        "WHERE sensor_id = %s AND kind = %s AND episode_id IS NULL AND ended_at IS NULL "
        "AND status <> 'closed' RETURNING id",
        (peak, summary, json.dumps({**fresh, "summary": summary}), now, sensor_id, kind),
    ).fetchone()
    return int(row[0]) if row else None


def escalate_due(conn: Conn, *, now: datetime, after_minutes: float) -> list[int]:
    """Raise the level of open alerts unacknowledged for another ``after_minutes``; their ids.

    A pre-alarm that an alarm took over, or that was merged or withdrawn, does not
    escalate: the alarm (or the surviving pre-alarm) does.
    """
    # Decide on an unlocked snapshot; the UPDATE then raises only alerts unchanged since
    # (still open, same level, not updated), so a concurrent acknowledgement, take-over
    # or another notifier's escalation wins; a changed alert is decided again next run.
    candidates = conn.execute(
        "SELECT id, opened_at, escalation_level, detail, updated_at FROM telemetry.alerts "
        "WHERE status = 'open' ORDER BY id"
    ).fetchall()
    due = [
        (int(alert_id), int(level), updated_at)
        for alert_id, opened_at, level, info, updated_at in candidates
        if escalation_due(
            AlertState(
                Status.OPEN,
                ended=False,
                escalation_level=level,
                opened_at=opened_at,
                superseded=info.get("alarm_at") is not None
                or info.get("run_status", "active") != "active",
            ),
            now=now,
            after_minutes=after_minutes,
        )
    ]
    rows = conn.execute(
        "UPDATE telemetry.alerts a SET escalation_level = a.escalation_level + 1, "
        "updated_at = %s FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[]) "
        "AS d(id, level, updated_at) WHERE a.id = d.id AND a.escalation_level = d.level "
        "AND a.updated_at = d.updated_at AND a.status = 'open' RETURNING a.id, a.detail",
        (now, [i for i, _, _ in due], [lv for _, lv, _ in due], [u for _, _, u in due]),
    ).fetchall()
    for alert_id, info in rows:
        append_event(conn, alert_id=int(alert_id), event="escalated", at=now, detail=info)
    return sorted(int(r[0]) for r in rows)
