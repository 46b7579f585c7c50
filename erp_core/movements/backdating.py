"""Checks that keep a lot's recorded history consistent when a movement is back-dated.

A movement carries the device time of the move, not the time it was recorded: a scan
uploaded late by an offline gateway, or a manual correction, lands in the past. Before
it is stored, every later point of the lot's history must still hold:

* it is not after ``now`` beyond a small clock tolerance;
* nothing leaves a location before the lot was first received;
* the source never goes negative at any later time (a later, already recorded move
  out of it must still find its quantity);
* a receipt never puts more of the lot in our custody than the lot's quantity, at that
  time or any later one (a late scan of a lot already received elsewhere later is not a
  second receipt);
* the lot was not aboard a shipment under way at that time (other than the shipment
  making the move);
* the lot has no release decision in force whose evidence (its history up to the
  decision) the move would change (``erp_core.masterdata.evidence``, the rule that also
  guards sensor-assignment changes in the past). The way to correct such a lot is the
  existing workflow: QA puts it on hold, the correction is recorded, and a new signed
  decision is needed (see docs/master-data.md).

Functions take the caller's connection and only read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from erp_core.errors import InvalidArgumentError
from erp_core.masterdata.evidence import CLOCK_TOLERANCE, lot_evidence
from erp_core.movements.errors import (
    BackdatingError,
    InsufficientStockError,
    LotQuantityError,
    ShipmentInTransitError,
)
from erp_core.movements.models import MovementIn

Conn = psycopg.Connection[Any]


def check_movement(
    conn: Conn,
    *,
    movement: MovementIn,
    now: datetime,
    tolerance: timedelta = CLOCK_TOLERANCE,
    shipment_id: int | None = None,
) -> None:
    """Raise if storing ``movement`` would contradict the lot's recorded history."""
    if movement.moved_at > now + tolerance:
        raise InvalidArgumentError(
            "moved_at", movement.moved_at.isoformat(), f"is in the future (now {now.isoformat()})"
        )
    _not_in_transit(conn, movement, shipment_id)
    if movement.from_location_id is not None:
        _after_receipt(conn, movement)
        _source_never_negative(conn, movement)
    else:
        _within_lot_quantity(conn, movement)
    lot_evidence(conn, lot_id=movement.lot_id, since=movement.moved_at)


def _after_receipt(conn: Conn, movement: MovementIn) -> None:
    row = conn.execute(
        "SELECT min(moved_at) FROM erp.stock_movements "
        "WHERE lot_id = %s AND from_location_id IS NULL",
        (movement.lot_id,),
    ).fetchone()
    received = row[0] if row else None
    if received is not None and movement.moved_at < received:
        raise BackdatingError(
            f"lot {movement.lot_id} was first received at {received.isoformat()}; nothing of "
            f"it can leave a location at {movement.moved_at.isoformat()}"
        )


def _source_never_negative(conn: Conn, movement: MovementIn) -> None:
    """The source's running balance, from the move's time on, must cover the quantity."""
    row = conn.execute(
        """
        WITH ev AS (
            SELECT moved_at AS t,
                   sum(CASE WHEN to_location_id = %(loc)s THEN quantity ELSE -quantity END) AS d
              FROM erp.stock_movements
             WHERE lot_id = %(lot)s
               AND (to_location_id = %(loc)s OR from_location_id = %(loc)s)
             GROUP BY moved_at
        ), run AS (
            SELECT t, sum(d) OVER (ORDER BY t) AS bal FROM ev
        )
        SELECT coalesce((SELECT bal FROM run WHERE t <= %(t)s ORDER BY t DESC LIMIT 1), 0)::float8,
               (SELECT t FROM run WHERE t > %(t)s ORDER BY bal, t LIMIT 1),
               (SELECT min(bal) FROM run WHERE t > %(t)s)::float8
        """,
        {"lot": movement.lot_id, "loc": movement.from_location_id, "t": movement.moved_at},
    ).fetchone()
    assert row is not None
    held, low_at, low = row
    source = movement.from_location_id
    assert source is not None
    if held < movement.quantity:
        raise InsufficientStockError(movement.lot_id, source, held, movement.quantity)
    if low is not None and low < movement.quantity:
        raise BackdatingError(
            f"lot {movement.lot_id}: location {source} would hold "
            f"{low - movement.quantity:g} at {low_at.isoformat()}, where a later move out of "
            f"it is already recorded; so {movement.quantity:g} cannot have left it at "
            f"{movement.moved_at.isoformat()}"
        )


def _within_lot_quantity(conn: Conn, movement: MovementIn) -> None:
    """A receipt keeps the lot's quantity in our custody within its size, then and later."""
    row = conn.execute(
        """
        WITH ev AS (
            SELECT moved_at AS t,
                   sum(CASE WHEN from_location_id IS NULL THEN quantity ELSE -quantity END) AS d
              FROM erp.stock_movements
             WHERE lot_id = %(lot)s AND (from_location_id IS NULL OR to_location_id IS NULL)
             GROUP BY moved_at
        ), run AS (
            SELECT t, sum(d) OVER (ORDER BY t) AS bal FROM ev
        )
        SELECT (SELECT quantity FROM erp.lots WHERE id = %(lot)s)::float8,
               coalesce((SELECT bal FROM run WHERE t <= %(t)s ORDER BY t DESC LIMIT 1), 0)::float8,
               (SELECT t FROM run WHERE t > %(t)s ORDER BY bal DESC, t LIMIT 1),
               (SELECT max(bal) FROM run WHERE t > %(t)s)::float8
        """,
        {"lot": movement.lot_id, "t": movement.moved_at},
    ).fetchone()
    assert row is not None
    size, held, high_at, high = row
    if held + movement.quantity > size:
        raise LotQuantityError(
            f"lot {movement.lot_id} of {size:g} has {held:g} in our custody at "
            f"{movement.moved_at.isoformat()}; a receipt of {movement.quantity:g} would exceed it"
        )
    if high is not None and high + movement.quantity > size:
        raise LotQuantityError(
            f"lot {movement.lot_id} of {size:g} is recorded with {high:g} in our custody at "
            f"{high_at.isoformat()}; a receipt of {movement.quantity:g} at "
            f"{movement.moved_at.isoformat()} would exceed it (was it received at another "
            "place later? then this is a move, not a receipt)"
        )


def _not_in_transit(conn: Conn, movement: MovementIn, shipment_id: int | None) -> None:
    row = conn.execute(
        """
        SELECT s.reference, w.departed_at, w.arrived_at
          FROM erp.shipments s
          JOIN erp.shipment_lots sl ON sl.shipment_id = s.id AND sl.lot_id = %(lot)s
         CROSS JOIN LATERAL (
               SELECT s.departed_at, s.arrived_at WHERE s.departed_at IS NOT NULL
               UNION ALL
               SELECT g.departed_at, g.arrived_at FROM erp.shipment_legs g
                WHERE g.shipment_id = s.id) AS w
         WHERE s.id IS DISTINCT FROM %(own)s
           AND w.departed_at <= %(t)s AND (w.arrived_at IS NULL OR w.arrived_at > %(t)s)
         ORDER BY w.departed_at LIMIT 1
        """,
        {"lot": movement.lot_id, "own": shipment_id, "t": movement.moved_at},
    ).fetchone()
    if row is not None:
        reference, departed, arrived = row
        until = arrived.isoformat() if arrived is not None else "not arrived yet"
        raise ShipmentInTransitError(
            f"lot {movement.lot_id} was aboard shipment {reference} under way from "
            f"{departed.isoformat()} ({until}); a move at {movement.moved_at.isoformat()} "
            "would contradict it"
        )
