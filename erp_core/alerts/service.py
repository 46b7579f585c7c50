"""Alert lifecycle services: list, read, acknowledge and close (DB state only, no commit).

open → acknowledged (who, when, comment) → closed (who, when, disposition, comment).
The rules are ``coldchain.alert_states``: closing needs an acknowledgement first and an
ended condition (an excursion still in progress cannot be closed). The alerts are
ingest's: the step and its ``alert_events`` row (what the notifier reads) are written
by the owner's functions ``telemetry.alert_acknowledge`` / ``telemetry.alert_close``
(migration 0023). Acknowledging stops escalation because only open alerts escalate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from coldchain.alert_states import Action, AlertState, Disposition, Status, refusal
from erp_core.alerts.models import AlertDetail, AlertEvent, AlertSummary, InboxRow
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


# The inbox's order: open first, then acknowledged (each oldest first: the longest
# waiting on top), then closed (the latest closed first).
_INBOX = (
    _SELECT.replace("a.close_comment\n", "a.close_comment, a.detail->>'unit' AS unit\n", 1)
    + "ORDER BY CASE a.status WHEN 'open' THEN 0 WHEN 'acknowledged' THEN 1 ELSE 2 END,"
    " CASE WHEN a.status <> 'closed' THEN a.started_at END,"
    " a.closed_at DESC NULLS LAST, a.id DESC LIMIT %(limit)s OFFSET %(offset)s"
)


def inbox(conn: Conn, *, limit: int, offset: int) -> list[InboxRow]:
    """One page of the inbox: open alerts first, then acknowledged, then closed ones."""
    with conn.cursor(row_factory=class_row(InboxRow)) as cur:
        cur.execute(_INBOX, {"limit": limit, "offset": offset})
        return cur.fetchall()


def count_waiting(conn: Conn) -> tuple[int, int]:
    """How many alerts are open and how many acknowledged (not yet closed)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'open'),"
        " count(*) FILTER (WHERE status = 'acknowledged') FROM telemetry.alerts"
        " WHERE status <> 'closed'"
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


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


def _lock(conn: Conn, alert_id: int) -> AlertState:
    row = conn.execute(
        "SELECT status, ended_at, episode_id FROM telemetry.alerts WHERE id = %s FOR UPDATE",
        (alert_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError("alert", alert_id)
    return AlertState(Status(row[0]), ended=row[1] is not None, episode=row[2] is not None)


def _need_text(name: str, value: str) -> None:
    if not value.strip():
        raise InvalidArgumentError(name, value, "must not be empty")


def _allowed(conn: Conn, alert_id: int, action: Action, *, user: str, comment: str) -> None:
    _need_text("user", user)
    _need_text("comment", comment)
    reason = refusal(_lock(conn, alert_id), action, actor=user, comment=comment)
    if reason is not None:
        raise AlertTransitionError(alert_id, action.value, reason)


def acknowledge(conn: Conn, *, alert_id: int, user: str, comment: str, now: datetime) -> None:
    """Acknowledge an open alert: who, when and why; stops its escalation."""
    _allowed(conn, alert_id, Action.ACKNOWLEDGE, user=user, comment=comment)
    conn.execute(
        "SELECT telemetry.alert_acknowledge(%s, %s, %s, %s)", (alert_id, user, comment, now)
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
    _allowed(conn, alert_id, Action.CLOSE, user=user, comment=comment)
    conn.execute(
        "SELECT telemetry.alert_close(%s, %s, %s, %s, %s)",
        (alert_id, user, disposition.value, comment, now),
    )
