"""Lot services: create, read, and change status along the release workflow.

The workflow is checked here (a clear error before any SQL) and again by the trigger
of migration 0005, so a direct UPDATE cannot skip it either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from erp_core.errors import InvalidArgumentError, NotFoundError
from erp_core.lots.errors import StatusTransitionError
from erp_core.lots.models import Lot, LotIn
from erp_core.lots.search import LotSearch
from erp_core.lots.status import may_change
from erp_core.masterdata.service import active_item, gtin14, translate_db_errors

Conn = psycopg.Connection[Any]

_LOT = """
SELECT l.id, l.item_id, i.gtin, l.lot_number, l.expires_on, l.manufactured_on,
       l.quantity::float8 AS quantity, l.status, l.status_changed_at
  FROM erp.lots l JOIN erp.items i ON i.id = l.item_id
"""


def create_lot(conn: Conn, *, lot: LotIn, now: datetime) -> Lot:
    """Store a new lot in quarantine; DuplicateError if the item already has that lot number."""
    active_item(conn, item_id=lot.item_id)
    if lot.manufactured_on is not None and lot.manufactured_on > lot.expires_on:
        raise InvalidArgumentError("manufactured_on", lot.manufactured_on, "after expires_on")
    with translate_db_errors("lot", lot.lot_number):
        row = conn.execute(
            "INSERT INTO erp.lots (item_id, lot_number, expires_on, manufactured_on, quantity, "
            "status_changed_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                lot.item_id,
                lot.lot_number,
                lot.expires_on,
                lot.manufactured_on,
                lot.quantity,
                now,
                now,
            ),
        ).fetchone()
    assert row is not None
    return get_lot(conn, lot_id=row[0])


def get_lot(conn: Conn, *, lot_id: int) -> Lot:
    """One lot with its item's GTIN; NotFoundError if there is none."""
    with conn.cursor(row_factory=class_row(Lot)) as cur:
        cur.execute(_LOT + " WHERE l.id = %s", (lot_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFoundError("lot", lot_id)
    return row


def find_lot(conn: Conn, *, gtin: str, lot_number: str) -> Lot:
    """The lot with this GTIN and lot number (what a GS1 barcode carries).

    Any form of the GTIN (8, 12, 13 or 14 digits) finds it: the GTIN is brought to its
    stored GTIN-14 form first (InvalidGtinError if it is none), and a GTIN-14 is one
    item's (unique), so at most one lot matches.
    """
    stored = gtin14(gtin)
    with conn.cursor(row_factory=class_row(Lot)) as cur:
        cur.execute(_LOT + " WHERE i.gtin = %s AND l.lot_number = %s", (stored, lot_number))
        row = cur.fetchone()
    if row is None:
        raise NotFoundError("lot", f"{stored}/{lot_number}")
    return row


def list_lots(
    conn: Conn, *, status: str | None = None, search: LotSearch | None = None
) -> list[Lot]:
    """Lots, all or in one status, matching ``search`` (``erp_core.lots.search``), newest first."""
    find = search or LotSearch()
    with conn.cursor(row_factory=class_row(Lot)) as cur:
        cur.execute(
            _LOT + " WHERE (%(s)s::text IS NULL OR l.status = %(s)s)"
            " AND (%(part)s::text IS NULL OR strpos(lower(l.lot_number), lower(%(part)s)) > 0)"
            " AND (%(number)s::text IS NULL OR l.lot_number = %(number)s)"
            " AND (%(gtin)s::text IS NULL OR i.gtin = %(gtin)s)"
            " ORDER BY l.id DESC",
            {"s": status, "part": find.number_part, "number": find.number, "gtin": find.gtin},
        )
        return cur.fetchall()


def change_status(conn: Conn, *, lot_id: int, status: str, now: datetime) -> Lot:
    """Move a lot to ``status``; StatusTransitionError if the workflow forbids it."""
    row = conn.execute("SELECT status FROM erp.lots WHERE id = %s FOR UPDATE", (lot_id,)).fetchone()
    if row is None:
        raise NotFoundError("lot", lot_id)
    old = str(row[0])
    if old == status:
        return get_lot(conn, lot_id=lot_id)
    if not may_change(old, status):
        raise StatusTransitionError(lot_id, old, status)
    conn.execute(
        "UPDATE erp.lots SET status = %s, status_changed_at = %s WHERE id = %s",
        (status, now, lot_id),
    )
    return get_lot(conn, lot_id=lot_id)
