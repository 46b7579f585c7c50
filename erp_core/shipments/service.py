"""Shipments: a truck (a location) carrying lots and loggers from an origin to a destination.

Departure moves every lot on board from the origin onto the truck and assigns the
shipment's loggers to the truck; arrival moves the lots to the destination and ends the
loggers' truck assignments. So a shipped lot's history runs through the one lot-history
definition like any other move: the truck's sensors stand for it while it is aboard.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from erp_core.errors import InvalidArgumentError, NotFoundError
from erp_core.lots.service import get_lot
from erp_core.masterdata.evidence import CLOCK_TOLERANCE, location_evidence
from erp_core.masterdata.models import AssignmentIn
from erp_core.masterdata.service import active_location, assign_sensor, translate_db_errors
from erp_core.movements.models import MovementIn
from erp_core.movements.service import record_movement
from erp_core.shipments.errors import ShipmentStateError
from erp_core.shipments.models import Leg, LegIn, Shipment, ShipmentIn, ShipmentLotIn

Conn = psycopg.Connection[Any]


def create_shipment(conn: Conn, *, shipment: ShipmentIn) -> Shipment:
    """Store a planned shipment with its lots and loggers; the truck must be a truck."""
    truck = active_location(conn, location_id=shipment.truck_location_id)
    if truck.kind != "truck":
        raise InvalidArgumentError("truck_location_id", truck.id, f"is a {truck.kind}")
    for location_id in (shipment.origin_location_id, shipment.destination_location_id):
        active_location(conn, location_id=location_id)
    for lot in shipment.lots:
        get_lot(conn, lot_id=lot.lot_id)
    if len({lot.lot_id for lot in shipment.lots}) != len(shipment.lots):
        raise InvalidArgumentError("lots", [lot.lot_id for lot in shipment.lots], "repeats a lot")
    with translate_db_errors("shipment", shipment.reference):
        row = conn.execute(
            "INSERT INTO erp.shipments (reference, truck_location_id, origin_location_id, "
            "destination_location_id) VALUES (%s, %s, %s, %s) RETURNING id",
            (
                shipment.reference,
                shipment.truck_location_id,
                shipment.origin_location_id,
                shipment.destination_location_id,
            ),
        ).fetchone()
        assert row is not None
        shipment_id = int(row[0])
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO erp.shipment_lots (shipment_id, lot_id, quantity) VALUES (%s, %s, %s)",
                [(shipment_id, lot.lot_id, lot.quantity) for lot in shipment.lots],
            )
            cur.executemany(
                "INSERT INTO erp.shipment_loggers (shipment_id, sensor_id) VALUES (%s, %s)",
                [(shipment_id, sensor) for sensor in sorted(set(shipment.logger_sensor_ids))],
            )
    return get_shipment(conn, shipment_id=shipment_id)


def get_shipment(conn: Conn, *, shipment_id: int) -> Shipment:
    """One shipment with lots, loggers and legs; NotFoundError if there is none."""
    row = conn.execute(
        "SELECT id, reference, truck_location_id, origin_location_id, destination_location_id, "
        "departed_at, arrived_at FROM erp.shipments WHERE id = %s",
        (shipment_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError("shipment", shipment_id)
    lots = conn.execute(
        "SELECT lot_id, quantity::float8 FROM erp.shipment_lots WHERE shipment_id = %s "
        "ORDER BY lot_id",
        (shipment_id,),
    ).fetchall()
    loggers = conn.execute(
        "SELECT sensor_id FROM erp.shipment_loggers WHERE shipment_id = %s ORDER BY sensor_id",
        (shipment_id,),
    ).fetchall()
    legs = conn.execute(
        "SELECT seq, from_location_id, to_location_id, departed_at, arrived_at "
        "FROM erp.shipment_legs WHERE shipment_id = %s ORDER BY seq",
        (shipment_id,),
    ).fetchall()
    return Shipment(
        id=row[0],
        reference=row[1],
        truck_location_id=row[2],
        origin_location_id=row[3],
        destination_location_id=row[4],
        departed_at=row[5],
        arrived_at=row[6],
        lots=[ShipmentLotIn(lot_id=a, quantity=b) for a, b in lots],
        logger_sensor_ids=[a for (a,) in loggers],
        legs=[
            Leg(seq=a, from_location_id=b, to_location_id=c, departed_at=d, arrived_at=e)
            for a, b, c, d, e in legs
        ],
    )


def shipments_of_lot(conn: Conn, *, lot_id: int) -> list[Shipment]:
    """The shipments that carried some of the lot, in the order they were created."""
    ids = conn.execute(
        "SELECT shipment_id FROM erp.shipment_lots WHERE lot_id = %s ORDER BY shipment_id",
        (lot_id,),
    ).fetchall()
    return [get_shipment(conn, shipment_id=i) for (i,) in ids]


def list_shipments(conn: Conn) -> list[Shipment]:
    """Every shipment, newest first."""
    ids = conn.execute("SELECT id FROM erp.shipments ORDER BY id DESC").fetchall()
    return [get_shipment(conn, shipment_id=i) for (i,) in ids]


def depart(
    conn: Conn, *, shipment_id: int, time: datetime, now: datetime | None = None
) -> Shipment:
    """Lots move origin → truck and loggers are assigned to the truck, at ``time``.

    A logger's open assignment elsewhere ends at ``time``: it travels with the truck now.
    A departure in the past is refused when that would change which sensors stood for a
    lot with a decision in force (as for any assignment change in the past).
    """
    shipment = _locked(conn, shipment_id)
    if shipment.departed_at is not None:
        raise ShipmentStateError(f"shipment {shipment_id} departed at {shipment.departed_at}")
    for lot in shipment.lots:
        _move(
            conn,
            shipment,
            lot,
            src=shipment.origin_location_id,
            dst=shipment.truck_location_id,
            time=time,
            now=now,
        )
    past = time < (now or datetime.now(UTC)) - CLOCK_TOLERANCE
    for sensor in shipment.logger_sensor_ids:
        ended = conn.execute(
            "UPDATE erp.sensor_assignments SET valid_to = %s "
            "WHERE sensor_id = %s AND valid_to IS NULL AND valid_from < %s RETURNING location_id",
            (time, sensor, time),
        ).fetchall()
        for location_id in {*(r[0] for r in ended), shipment.truck_location_id} if past else ():
            location_evidence(conn, location_id=location_id, since=time)
        assign_sensor(
            conn,
            assignment=AssignmentIn(
                sensor_id=sensor, location_id=shipment.truck_location_id, valid_from=time
            ),
        )
    conn.execute("UPDATE erp.shipments SET departed_at = %s WHERE id = %s", (time, shipment_id))
    return get_shipment(conn, shipment_id=shipment_id)


def arrive(
    conn: Conn, *, shipment_id: int, time: datetime, now: datetime | None = None
) -> Shipment:
    """Lots move truck → destination and the loggers' truck assignments end, at ``time``."""
    shipment = _locked(conn, shipment_id)
    if shipment.departed_at is None or shipment.arrived_at is not None:
        raise ShipmentStateError(f"shipment {shipment_id} is not under way")
    if time <= shipment.departed_at:
        raise InvalidArgumentError("time", time, "must be after the departure")
    for lot in shipment.lots:
        _move(
            conn,
            shipment,
            lot,
            src=shipment.truck_location_id,
            dst=shipment.destination_location_id,
            time=time,
            now=now,
        )
    conn.execute(
        "UPDATE erp.sensor_assignments SET valid_to = %s WHERE sensor_id = ANY(%s) "
        "AND location_id = %s AND valid_from = %s AND valid_to IS NULL",
        (time, shipment.logger_sensor_ids, shipment.truck_location_id, shipment.departed_at),
    )
    conn.execute("UPDATE erp.shipments SET arrived_at = %s WHERE id = %s", (time, shipment_id))
    return get_shipment(conn, shipment_id=shipment_id)


def add_leg(conn: Conn, *, shipment_id: int, leg: LegIn) -> Shipment:
    """Append a leg (numbered after the last one) to a shipment's route."""
    get_shipment(conn, shipment_id=shipment_id)
    if leg.arrived_at is not None and leg.arrived_at <= leg.departed_at:
        raise InvalidArgumentError("arrived_at", leg.arrived_at, "must be after departed_at")
    with translate_db_errors("shipment_leg", shipment_id):
        conn.execute(
            "INSERT INTO erp.shipment_legs (shipment_id, seq, from_location_id, to_location_id, "
            "departed_at, arrived_at) SELECT %s, coalesce(max(seq), 0) + 1, %s, %s, %s, %s "
            "FROM erp.shipment_legs WHERE shipment_id = %s",
            (
                shipment_id,
                leg.from_location_id,
                leg.to_location_id,
                leg.departed_at,
                leg.arrived_at,
                shipment_id,
            ),
        )
    return get_shipment(conn, shipment_id=shipment_id)


def _locked(conn: Conn, shipment_id: int) -> Shipment:
    """The shipment, its row locked: a second depart or arrive waits, then sees the first."""
    conn.execute("SELECT 1 FROM erp.shipments WHERE id = %s FOR UPDATE", (shipment_id,))
    return get_shipment(conn, shipment_id=shipment_id)


def _move(  # noqa: PLR0913 - one movement's fields
    conn: Conn,
    shipment: Shipment,
    lot: ShipmentLotIn,
    *,
    src: int,
    dst: int,
    time: datetime,
    now: datetime | None,
) -> None:
    record_movement(
        conn,
        movement=MovementIn(
            lot_id=lot.lot_id,
            quantity=lot.quantity,
            from_location_id=src,
            to_location_id=dst,
            moved_at=time,
            source="manual",
            reference=f"shipment {shipment.reference}",
        ),
        now=now,
        shipment_id=shipment.id,
    )
