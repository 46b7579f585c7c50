"""A signed release decision freezes its evidence: the recorded history it was based on.

A decision in force (the lot is released, rejected or recalled) was taken on the lot's
history up to the decision: where it was, and which sensors stood for those places. A
change that would alter that history is refused (``ReleaseEvidenceError``, 409): a
back-dated movement of the lot (``lot_evidence``, checked by ``erp_core.movements``) and
a change, in the past, of the sensors that stood for a location (``location_evidence``,
checked by sensor-assignment changes here and by shipments). The way to correct such a
lot is the existing workflow: QA puts it on hold, the correction is recorded, and a new
signed decision is needed (see docs/master-data.md). Functions take the caller's
connection; they only read and lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from erp_core.masterdata.errors import ReleaseEvidenceError

Conn = psycopg.Connection[Any]

CLOCK_TOLERANCE = timedelta(minutes=5)
"""How far a movement may lie in the future: device clocks drift, and demo scripts step."""

DECIDED = ("released", "rejected", "recalled")
"""Lot statuses in which a release decision is in force."""


def lot_evidence(conn: Conn, *, lot_id: int, since: datetime) -> None:
    """Raise if the lot has a decision in force taken after ``since`` (its evidence)."""
    row = conn.execute(
        "SELECT d.id, d.action, d.decided_at, l.status FROM erp.release_decisions d "
        "JOIN erp.lots l ON l.id = d.lot_id "
        "WHERE d.lot_id = %s AND l.status = ANY(%s) ORDER BY d.decided_at DESC LIMIT 1",
        (lot_id, list(DECIDED)),
    ).fetchone()
    if row is None or since >= row[2]:
        return
    decision, action, decided_at, status = row
    raise ReleaseEvidenceError(
        f"lot {lot_id} is {status} by signed {action} decision {decision} of "
        f"{decided_at.isoformat()}, whose evidence is the lot's history up to then; a change "
        f"at {since.isoformat()} would alter it. "
        + (
            "A rejected or recalled lot's record is closed."
            if status != "released"
            else "To correct it, QA puts the lot on hold, the correction is recorded, "
            "and the lot needs a new signed decision."
        )
    )


def location_evidence(conn: Conn, *, location_id: int, since: datetime) -> None:
    """Raise if a lot with a decision in force was at the location after ``since``.

    Used before changing which sensors stood for the location from ``since`` on. Every
    lot at the location since then is locked first (in id order), as a release locks its
    lot before reading the evidence: a release being signed meanwhile is waited for and
    then seen, and one signed afterwards reads the changed assignments.
    """
    conn.execute(
        """
        SELECT l.id
          FROM erp.lots l
         WHERE l.id IN (SELECT lot_id FROM erp.stock_movements WHERE to_location_id = %(loc)s)
           AND EXISTS (
                 SELECT 1 FROM erp.lot_intervals(l.id) i
                  WHERE i.location_id = %(loc)s AND coalesce(i.valid_to, 'infinity') > %(t)s)
         ORDER BY l.id
           FOR NO KEY UPDATE OF l
        """,
        {"loc": location_id, "t": since},
    )
    rows = conn.execute(
        """
        SELECT DISTINCT l.id
          FROM erp.lots l
         WHERE l.status = ANY(%(decided)s)
           AND l.id IN (SELECT lot_id FROM erp.stock_movements WHERE to_location_id = %(loc)s)
           AND EXISTS (
                 SELECT 1 FROM erp.release_decisions d, erp.lot_intervals(l.id) i
                  WHERE d.lot_id = l.id AND d.decided_at > %(t)s AND i.location_id = %(loc)s
                    AND i.valid_from < d.decided_at
                    AND coalesce(i.valid_to, 'infinity') > %(t)s)
         ORDER BY l.id
        """,
        {"decided": list(DECIDED), "loc": location_id, "t": since},
    ).fetchall()
    for (lot_id,) in rows:
        lot_evidence(conn, lot_id=lot_id, since=since)
