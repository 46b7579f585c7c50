"""Web sessions in the database: opened at sign-in, ended at sign-out; the caller commits.

The cookie (``erp_core.auth.session``) proves who and until when; these rows let the
server refuse a cookie whose session was ended, which a signed token alone cannot do.
Both tables are append-only (migration 0011). A password change or reset ends the
user's other sessions (``end_all``, reason ``password_changed``, migration 0017).
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from erp_core.auth.models import User
from erp_core.auth.session import WebSession

Conn = psycopg.Connection[TupleRow]


def record_start(conn: Conn, *, session: WebSession, user: User, source: str | None) -> None:
    """Record a session just opened by ``user``'s password entry."""
    conn.execute(
        "INSERT INTO erp.web_sessions (sid, user_id, username, started_at, source)"
        " VALUES (%s, %s, %s, %s, %s)",
        (session.sid, user.id, user.username, session.started_at, source),
    )


def record_end(conn: Conn, *, sid: str, at: datetime, reason: str = "signed_out") -> None:
    """Record that session ``sid`` has ended (a second end of it is ignored)."""
    conn.execute(
        "INSERT INTO erp.web_session_ends (sid, ended_at, reason) VALUES (%s, %s, %s)"
        " ON CONFLICT (sid) DO NOTHING",
        (sid, at, reason),
    )


def is_live(conn: Conn, *, session: WebSession) -> bool:
    """True if ``session`` was opened here for its user and has not been ended."""
    row = conn.execute(
        "SELECT s.username, e.sid IS NOT NULL FROM erp.web_sessions AS s"
        " LEFT JOIN erp.web_session_ends AS e ON e.sid = s.sid WHERE s.sid = %s",
        (session.sid,),
    ).fetchone()
    return row is not None and row[0] == session.username and not row[1]


def end_all(
    conn: Conn, *, user: User, at: datetime, reason: str, keep_sid: str | None = None
) -> int:
    """End every live session of ``user`` but ``keep_sid``; the number ended.

    A password change or an administrator's reset ends the user's other sessions.
    """
    cur = conn.execute(
        "INSERT INTO erp.web_session_ends (sid, ended_at, reason)"
        " SELECT s.sid, %s, %s FROM erp.web_sessions AS s"
        " LEFT JOIN erp.web_session_ends AS e ON e.sid = s.sid"
        " WHERE s.user_id = %s AND e.sid IS NULL AND s.sid IS DISTINCT FROM %s"
        " ON CONFLICT (sid) DO NOTHING",
        (at, reason, user.id, keep_sid),
    )
    return cur.rowcount
