"""Alert lifecycle services: list, read, acknowledge and close (DB state only, no commit).

open → acknowledged (who, when, comment) → closed (who, when, disposition, comment).
Closing needs an acknowledgement first and an ended condition (an excursion still in
progress cannot be closed). Every transition appends an ``alert_events`` row, which is
also what the notifier reads; acknowledging stops escalation because escalation only
looks at open alerts.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from erp_core.alerts.models import AlertDetail, AlertEvent, AlertSummary, Disposition, Status
from erp_core.errors import ErpError, InvalidArgumentError, NotFoundError

Conn = psycopg.Connection[Any]
MAX_ALERTS = 1000

_SELECT = """
SELECT a.id, a.kind, a.severity, a.status, a.sensor_id, s.uid AS sensor, a.site, a.late,
       a.started_at, a.ended_at, a.peak, a.duration_s, a.summary, a.escalation_level,
       a.opened_at, a.acknowledged_at, a.acknowledged_by, a.ack_comment, a.closed_at,
       a.closed_by, a.disposition, a.close_comment
  FROM telemetry.alerts a
  LEFT JOIN telemetry.sensors s ON s.id = a.sensor_id
"""


class AlertTransitionError(ErpError):
    """A lifecycle step the alert's current state does not allow."""

    def __init__(self, alert_id: int, action: str, reason: str) -> None:
        super().__init__(f"alert {alert_id}: cannot {action}: {reason}")
        self.alert_id = alert_id
        self.action = action
        self.reason = reason


def list_alerts(
    conn: Conn,
    *,
    status: Status | None = None,
    site: str | None = None,
    sensor_id: int | None = None,
    limit: int = 200,
) -> list[AlertSummary]:
    """Alerts, newest first, filtered by status, site and sensor."""
    if not 1 <= limit <= MAX_ALERTS:
        raise InvalidArgumentError("limit", limit, f"must be between 1 and {MAX_ALERTS}")
    with conn.cursor(row_factory=class_row(AlertSummary)) as cur:
        cur.execute(
            _SELECT + "WHERE (%(status)s::text IS NULL OR a.status = %(status)s) "
            "AND (%(site)s::text IS NULL OR a.site = %(site)s) "
            "AND (%(sensor)s::int IS NULL OR a.sensor_id = %(sensor)s) "
            "ORDER BY a.opened_at DESC, a.id DESC LIMIT %(limit)s",
            {
                "status": status.value if status else None,
                "site": site,
                "sensor": sensor_id,
                "limit": limit,
            },
        )
        return cur.fetchall()


def get_alert(conn: Conn, *, alert_id: int) -> AlertDetail:
    """One alert with its events, oldest first."""
    with conn.cursor(row_factory=class_row(AlertSummary)) as cur:
        cur.execute(_SELECT + "WHERE a.id = %s", (alert_id,))
        alert = cur.fetchone()
    if alert is None:
        raise NotFoundError("alert", alert_id)
    with conn.cursor(row_factory=class_row(AlertEvent)) as cur:
        cur.execute(
            "SELECT id, event, level, at, actor, detail FROM telemetry.alert_events "
            "WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        )
        events = cur.fetchall()
    return AlertDetail(**alert.model_dump(), events=events)


def _lock(conn: Conn, alert_id: int) -> tuple[str, datetime | None, int | None, dict[str, Any]]:
    row = conn.execute(
        "SELECT status, ended_at, episode_id, detail FROM telemetry.alerts "
        "WHERE id = %s FOR UPDATE",
        (alert_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError("alert", alert_id)
    return row[0], row[1], row[2], row[3]


def _event(  # noqa: PLR0913 - keyword-only fields of one event row
    conn: Conn, *, alert_id: int, event: str, at: datetime, actor: str, detail: dict[str, Any]
) -> None:
    conn.execute(
        "INSERT INTO telemetry.alert_events (alert_id, event, level, at, actor, detail) "
        "SELECT id, %s, escalation_level, %s, %s, %s::jsonb FROM telemetry.alerts WHERE id = %s",
        (event, at, actor, json.dumps(detail), alert_id),
    )


def _need_text(name: str, value: str) -> None:
    if not value.strip():
        raise InvalidArgumentError(name, value, "must not be empty")


def acknowledge(conn: Conn, *, alert_id: int, user: str, comment: str, now: datetime) -> None:
    """Acknowledge an open alert: who, when and why; stops its escalation."""
    _need_text("user", user)
    _need_text("comment", comment)
    status, _ended, _episode, detail = _lock(conn, alert_id)
    if status != Status.OPEN:
        raise AlertTransitionError(alert_id, "acknowledge", f"it is {status}")
    conn.execute(
        "UPDATE telemetry.alerts SET status = 'acknowledged', acknowledged_at = %s, "
        "acknowledged_by = %s, ack_comment = %s, updated_at = %s WHERE id = %s",
        (now, user, comment, now, alert_id),
    )
    _event(
        conn,
        alert_id=alert_id,
        event="acknowledged",
        at=now,
        actor=user,
        detail={**detail, "comment": comment},
    )


def close(  # noqa: PLR0913 - keyword-only, each one part of the record
    conn: Conn,
    *,
    alert_id: int,
    user: str,
    disposition: Disposition,
    comment: str,
    now: datetime,
) -> None:
    """Close an acknowledged alert whose condition has ended, with a disposition."""
    _need_text("user", user)
    _need_text("comment", comment)
    status, ended, episode_id, detail = _lock(conn, alert_id)
    if status == Status.OPEN:
        raise AlertTransitionError(alert_id, "close", "it must be acknowledged first")
    if status == Status.CLOSED:
        raise AlertTransitionError(alert_id, "close", "it is already closed")
    if ended is None:
        what = "the excursion is still in progress" if episode_id else "the condition lasts"
        raise AlertTransitionError(alert_id, "close", what)
    conn.execute(
        "UPDATE telemetry.alerts SET status = 'closed', closed_at = %s, closed_by = %s, "
        "disposition = %s, close_comment = %s, updated_at = %s WHERE id = %s",
        (now, user, disposition.value, comment, now, alert_id),
    )
    _event(
        conn,
        alert_id=alert_id,
        event="closed",
        at=now,
        actor=user,
        detail={**detail, "disposition": disposition.value, "comment": comment},
    )
