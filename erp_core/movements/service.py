"""Stock movements, and turning a scan or tag read at a fixed reader into a movement.

A movement says that some quantity of a lot went from one location (None: received)
to another (None: left our custody) at a device time. The lot's location intervals, and
so its temperature history, are derived from movements by ``erp.lot_intervals``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from erp_core.deviations.service import open_missed_deviations
from erp_core.errors import InvalidArgumentError
from erp_core.lots.service import find_lot, get_lot
from erp_core.masterdata.service import (
    active_item,
    active_location,
    get_reader,
    translate_db_errors,
)
from erp_core.movements.backdating import check_movement
from erp_core.movements.models import LocationInterval, Movement, MovementIn

Conn = psycopg.Connection[Any]

_COLS = (
    "id, lot_id, quantity::float8 AS quantity, from_location_id, to_location_id, moved_at, "
    "source, reference, reader_id"
)


def balance_at(conn: Conn, *, lot_id: int, location_id: int, time: datetime) -> float:
    """How much of the lot the location holds at ``time`` (moves at ``time`` included)."""
    row = conn.execute(
        """
        SELECT coalesce(sum(CASE WHEN to_location_id = %(loc)s THEN quantity
                                 ELSE -quantity END), 0)::float8
          FROM erp.stock_movements
         WHERE lot_id = %(lot)s AND moved_at <= %(t)s
           AND (to_location_id = %(loc)s OR from_location_id = %(loc)s)
        """,
        {"lot": lot_id, "loc": location_id, "t": time},
    ).fetchone()
    return float(row[0]) if row is not None else 0.0


def lock_lot(conn: Conn, *, lot_id: int) -> None:
    """One writer per lot: history checks after this see every other movement of it."""
    conn.execute("SELECT 1 FROM erp.lots WHERE id = %s FOR NO KEY UPDATE", (lot_id,))


def record_movement(
    conn: Conn,
    *,
    movement: MovementIn,
    reader_id: str | None = None,
    now: datetime | None = None,
    shipment_id: int | None = None,
) -> Movement:
    """Store a movement after checking the lot, both locations and the lot's history.

    The checks of ``erp_core.movements.backdating`` apply to every movement, back-dated or
    not: the source's stock at that time and at every later time, the lot's receipt,
    shipments under way (``shipment_id``: the shipment making this move) and a release
    decision in force. ``now`` defaults to the wall clock; pass the app's clock.
    Afterwards every alarm excursion the lot's history now touches has a deviation.
    """
    lot = get_lot(conn, lot_id=movement.lot_id)
    lock_lot(conn, lot_id=lot.id)
    if movement.from_location_id is None and movement.to_location_id is None:
        raise InvalidArgumentError("to_location_id", None, "a movement needs a from or a to")
    if movement.from_location_id == movement.to_location_id:
        raise InvalidArgumentError(
            "to_location_id", movement.to_location_id, "is the same as from_location_id"
        )
    active_item(conn, item_id=lot.item_id)
    for location_id in (movement.from_location_id, movement.to_location_id):
        if location_id is not None:
            active_location(conn, location_id=location_id)
    check_movement(conn, movement=movement, now=now or datetime.now(UTC), shipment_id=shipment_id)
    fields = {**movement.model_dump(), "reader_id": reader_id}
    with (
        translate_db_errors("movement", movement.lot_id),
        conn.cursor(row_factory=class_row(Movement)) as cur,
    ):
        cur.execute(
            "INSERT INTO erp.stock_movements (lot_id, quantity, from_location_id, "  # noqa: S608
            "to_location_id, moved_at, source, reference, reader_id) VALUES (%(lot_id)s, "
            "%(quantity)s, %(from_location_id)s, %(to_location_id)s, %(moved_at)s, %(source)s, "
            f"%(reference)s, %(reader_id)s) RETURNING {_COLS}",
            fields,
        )
        row = cur.fetchone()
    assert row is not None
    open_missed_deviations(conn, lot_id=movement.lot_id)
    return row


def list_movements(conn: Conn, *, lot_id: int) -> list[Movement]:
    """A lot's movements in time order."""
    with conn.cursor(row_factory=class_row(Movement)) as cur:
        cur.execute(
            f"SELECT {_COLS} FROM erp.stock_movements WHERE lot_id = %s "  # noqa: S608
            "ORDER BY moved_at, id",
            (lot_id,),
        )
        return cur.fetchall()


def lot_intervals(conn: Conn, *, lot_id: int) -> list[LocationInterval]:
    """Where the lot was over time, from ``erp.lot_intervals`` (end None: still there)."""
    rows = conn.execute(
        "SELECT location_id, valid_from, valid_to FROM erp.lot_intervals(%s)", (lot_id,)
    ).fetchall()
    return [LocationInterval(location_id=a, start=b, end=c) for a, b, c in rows]


def current_locations(conn: Conn, *, lot_id: int, time: datetime) -> list[tuple[int, float]]:
    """Locations holding some of the lot at ``time``, with the quantity each holds."""
    rows = conn.execute(
        "SELECT location_id FROM erp.lot_intervals(%s) "
        "WHERE valid_from <= %s AND (valid_to IS NULL OR valid_to > %s)",
        (lot_id, time, time),
    ).fetchall()
    return [(loc, balance_at(conn, lot_id=lot_id, location_id=loc, time=time)) for (loc,) in rows]


def movement_from_scan(  # noqa: PLR0913 - keyword-only, one per scan field
    conn: Conn,
    *,
    reader_id: str,
    time: datetime,
    lot_id: int | None = None,
    gtin: str | None = None,
    lot_number: str | None = None,
    quantity: float | None = None,
    reference: str | None = None,
    now: datetime | None = None,
) -> Movement | None:
    """Turn a scan/tag read at a mapped reader into a movement to the reader's location.

    The lot is named by id or by GTIN + lot number. It moves from where it is at ``time``
    (it must be in one place; with none it is a receipt of the lot's quantity). Without
    ``quantity`` the whole quantity at the source moves. Returns None when the lot is
    already entirely at the reader's location (a repeated read is not a movement).
    """
    reader = get_reader(conn, reader_id=reader_id)
    if lot_id is not None:
        lot = get_lot(conn, lot_id=lot_id)
    elif gtin is not None and lot_number is not None:
        lot = find_lot(conn, gtin=gtin, lot_number=lot_number)
    else:
        raise InvalidArgumentError("lot_id", None, "give lot_id, or gtin and lot_number")
    # Where the lot is must be read under the lock the movement will take, or a move of
    # the lot committed meanwhile makes this one start from where the lot no longer is.
    lock_lot(conn, lot_id=lot.id)
    here = current_locations(conn, lot_id=lot.id, time=time)
    elsewhere = [(loc, qty) for loc, qty in here if loc != reader.location_id]
    if here and not elsewhere:
        return None
    if len(elsewhere) > 1:
        raise InvalidArgumentError(
            "reader_id",
            reader_id,
            f"lot {lot.id} is split over locations {[loc for loc, _ in elsewhere]}; "
            "record this move manually with its source location",
        )
    source, held = elsewhere[0] if elsewhere else (None, lot.quantity)
    movement = MovementIn(
        lot_id=lot.id,
        quantity=quantity if quantity is not None else held,
        from_location_id=source,
        to_location_id=reader.location_id,
        moved_at=time,
        source=reader.kind,
        reference=reference,
    )
    return record_movement(conn, movement=movement, reader_id=reader_id, now=now)
