"""A lot's genealogy, read from the one SQL definition (``erp.lot_genealogy``, 0030).

Backward: every component, supplier and sub-assembly lot that went into a lot, through
any number of levels. Forward: every lot a lot went into. Pages, the API and the recall
scope all call this; none walks the tree itself.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import class_row

from erp_core.production.models import Direction, GenealogyNode

Conn = psycopg.Connection[Any]


def genealogy(conn: Conn, *, lot_id: int, direction: Direction) -> list[GenealogyNode]:
    """The lots ``direction`` of ``lot_id``, nearest first (none for a lot without any).

    The caller checks that the lot exists (the API's ``KnownLotId``).
    """
    with conn.cursor(row_factory=class_row(GenealogyNode)) as cur:
        cur.execute(
            "SELECT g.lot_id, l.lot_number, i.gtin, i.name AS item_name, l.status,"
            " g.via_lot_id, g.work_order_id, w.number AS work_order_number, g.depth"
            " FROM erp.lot_genealogy(%s, %s) g"
            " JOIN erp.lots l ON l.id = g.lot_id JOIN erp.items i ON i.id = l.item_id"
            " JOIN erp.work_orders w ON w.id = g.work_order_id"
            " ORDER BY g.depth, l.lot_number",
            (lot_id, direction),
        )
        return cur.fetchall()
