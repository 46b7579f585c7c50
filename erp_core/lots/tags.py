"""RFID tags holding a lot: a pallet's SSCC, or a case's GTIN + serial (``erp.lot_tags``).

Registered by a warehouse user; read by scan/tag-read processing (``erp_core.edge_events``)
to find the lot a tag names. Plain functions on the caller's connection; they never commit.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import class_row

from erp_core.lots.models import LotTag, LotTagIn
from erp_core.masterdata.service import gtin14, translate_db_errors

Conn = psycopg.Connection[Any]


def register_tag(conn: Conn, *, tag: LotTagIn) -> LotTag:
    """Register an RFID-tagged pallet (SSCC) or case (GTIN + serial) as holding a lot."""
    with (
        translate_db_errors("lot tag", tag.sscc or f"{tag.gtin}/{tag.serial}"),
        conn.cursor(row_factory=class_row(LotTag)) as cur,
    ):
        cur.execute(
            "INSERT INTO erp.lot_tags (lot_id, sscc, gtin, serial) VALUES (%s, %s, %s, %s)"
            " RETURNING id, lot_id, sscc, gtin, serial",
            (tag.lot_id, tag.sscc, tag.gtin, tag.serial),
        )
        row = cur.fetchone()
    assert row is not None
    return row


def pallet_lot(conn: Conn, *, sscc: str) -> int | None:
    """The lot a pallet's SSCC is registered to, or None."""
    row = conn.execute("SELECT lot_id FROM erp.lot_tags WHERE sscc = %s", (sscc,)).fetchone()
    return None if row is None else int(row[0])


def case_lot(conn: Conn, *, gtin: str, serial: str) -> int | None:
    """The lot a case (GTIN in any of its forms + serial) is registered to, or None."""
    row = conn.execute(
        "SELECT lot_id FROM erp.lot_tags WHERE gtin = %s AND serial = %s", (gtin14(gtin), serial)
    ).fetchone()
    return None if row is None else int(row[0])
