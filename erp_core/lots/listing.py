"""The lots list as people read it: product name, where the lot is, an open-deviation flag.

``list_lots`` (``erp_core.lots.service``) is the API's plain list; this one serves the
lots page, with its filters: status, item, the expiry window (expired, or expiring
within N days) and the search box (``erp_core.lots.search``). The caller passes the
connection and the day ``today`` the expiry window counts from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel, ConfigDict

from erp_core.lots.search import LotSearch

Conn = psycopg.Connection[Any]
# expiry windows the page offers: already expired, or expiring within N days (not yet)
EXPIRY_DAYS: tuple[int, ...] = (30, 90, 180)


class LotRow(BaseModel):
    """One row of the lots page."""

    model_config = ConfigDict(frozen=True)

    id: int
    item_id: int
    item_name: str
    gtin: str
    lot_number: str
    expires_on: date
    quantity: float
    status: str
    status_changed_at: datetime
    location_code: str | None
    location_name: str | None
    open_deviations: int


@dataclass(frozen=True, slots=True)
class Expiry:
    """An expiry window: ``expired`` (before today) or ``within`` ``days`` from today."""

    kind: Literal["expired", "within"]
    days: int = 0


def parse_expiry(text: str) -> Expiry | None:
    """``expired`` or ``30``/``90``/``180`` (days) from the page's select; else no filter."""
    if text == "expired":
        return Expiry("expired")
    if text.isdigit() and int(text) in EXPIRY_DAYS:
        return Expiry("within", int(text))
    return None


# The lot's place is where its last movement took it (none once it has left the site).
_ROWS = """
SELECT l.id, l.item_id, i.name AS item_name, i.gtin, l.lot_number, l.expires_on,
       l.quantity::float8 AS quantity, l.status, l.status_changed_at,
       loc.code AS location_code, loc.name AS location_name,
       (SELECT count(*) FROM erp.deviations d
         WHERE d.lot_id = l.id AND d.status = 'open') AS open_deviations
  FROM erp.lots l
  JOIN erp.items i ON i.id = l.item_id
  LEFT JOIN LATERAL (
        SELECT m.to_location_id FROM erp.stock_movements m
         WHERE m.lot_id = l.id
         ORDER BY m.moved_at DESC, m.id DESC LIMIT 1) last ON true
  LEFT JOIN erp.locations loc ON loc.id = last.to_location_id
 WHERE (%(s)s::text IS NULL OR l.status = %(s)s)
   AND (%(item)s::int IS NULL OR l.item_id = %(item)s)
   AND (%(part)s::text IS NULL OR strpos(lower(l.lot_number), lower(%(part)s)) > 0)
   AND (%(number)s::text IS NULL OR l.lot_number = %(number)s)
   AND (%(gtin)s::text IS NULL OR i.gtin = %(gtin)s)
   AND (%(expired)s::date IS NULL OR l.expires_on < %(expired)s)
   AND (%(from)s::date IS NULL OR l.expires_on >= %(from)s)
   AND (%(until)s::date IS NULL OR l.expires_on <= %(until)s)
 ORDER BY l.id DESC LIMIT %(limit)s OFFSET %(offset)s
"""


def list_lot_rows(  # noqa: PLR0913 - keyword-only filters and the page
    conn: Conn,
    *,
    today: date,
    status: str | None = None,
    item_id: int | None = None,
    expiry: Expiry | None = None,
    search: LotSearch | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[LotRow]:
    """Lots matching every filter given, newest first, ``limit`` from ``offset``."""
    find = search or LotSearch()
    expired = today if expiry is not None and expiry.kind == "expired" else None
    within = expiry is not None and expiry.kind == "within"
    with conn.cursor(row_factory=class_row(LotRow)) as cur:
        cur.execute(
            _ROWS,
            {
                "s": status,
                "item": item_id,
                "part": find.number_part,
                "number": find.number,
                "gtin": find.gtin,
                "expired": expired,
                "from": today if within else None,
                "until": date.fromordinal(today.toordinal() + expiry.days)
                if within and expiry is not None
                else None,
                "limit": limit,
                "offset": offset,
            },
        )
        return cur.fetchall()
