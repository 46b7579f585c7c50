"""Lot, movement, scan and shipment endpoints, and the lot temperature history.

Roles: lot status changes need qa or qa_manager; creating lots, movements, scans and
shipments need warehouse; reads need any signed-in user. Writes name their user for
the audit trail.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from erp_core.audit.service import set_actor
from erp_core.auth.models import User
from erp_core.deps import Connection, CurrentUser, Now, require_roles
from erp_core.monitoring.buckets import MAX_POINTS, MIN_POINTS
from erp_core.stock import history, lots, movements, shipments
from erp_core.stock.history_models import LotHistory
from erp_core.stock.models import (
    LegIn,
    Lot,
    LotIn,
    Movement,
    MovementIn,
    MovementRequest,
    ScanIn,
    Shipment,
    ShipmentIn,
    StatusChangeIn,
    TimeIn,
)
from erp_core.stock.status import LotStatus

Responses = dict[int | str, dict[str, Any]]
router = APIRouter(prefix="/api", tags=["stock: lots"])

Warehouse = Annotated[User, Depends(require_roles("warehouse"))]
Quality = Annotated[User, Depends(require_roles("qa", "qa_manager"))]
LotId = Annotated[int, Path(description="The lot's id")]
ShipmentId = Annotated[int, Path(description="The shipment's id")]
NOT_FOUND: Responses = {404: {"description": "No such record"}}
CONFLICT: Responses = {409: {"description": "Clashes with stored records or the workflow"}}
BOTH: Responses = {**NOT_FOUND, **CONFLICT}


@router.post("/lots", status_code=201, responses=CONFLICT)
def create_lot(conn: Connection, user: Warehouse, now: Now, body: LotIn) -> Lot:
    """A new lot of an item, in quarantine."""
    set_actor(conn, user=user.username)
    return lots.create_lot(conn, lot=body, now=now)


@router.get("/lots")
def list_lots(
    conn: Connection, _user: CurrentUser, status: Annotated[LotStatus | None, Query()] = None
) -> list[Lot]:
    """Lots, newest first, optionally of one status."""
    return lots.list_lots(conn, status=status)


@router.get("/lots/{lot_id}", responses=NOT_FOUND)
def get_lot(conn: Connection, _user: CurrentUser, lot_id: LotId) -> Lot:
    """One lot."""
    return lots.get_lot(conn, lot_id=lot_id)


@router.post("/lots/{lot_id}/status", responses=BOTH)
def change_status(
    conn: Connection, user: Quality, now: Now, lot_id: LotId, body: StatusChangeIn
) -> Lot:
    """Move a lot along the workflow; 409 for a change the workflow does not allow."""
    set_actor(conn, user=user.username, reason=body.reason)
    return lots.change_status(conn, lot_id=lot_id, status=body.status, now=now)


@router.get("/lots/{lot_id}/history", responses=NOT_FOUND)
def lot_history(  # noqa: PLR0913 - one parameter per query-string field
    *,
    conn: Connection,
    _user: CurrentUser,
    now: Now,
    lot_id: LotId,
    max_points: Annotated[
        int, Query(ge=MIN_POINTS, le=MAX_POINTS, description="Most buckets to return")
    ] = 500,
    max_hold_minutes: Annotated[
        float, Query(gt=0, le=24 * 60, description="Longest time one reading is taken to hold")
    ] = 15,
    min_gap_minutes: Annotated[
        float, Query(gt=0, le=24 * 60, description="Shortest gap listed on its own")
    ] = 5,
) -> LotHistory:
    """The lot's temperature history: where, which sensors, buckets and statistics."""
    return history.lot_history(
        conn,
        lot_id=lot_id,
        max_points=max_points,
        now=now,
        max_hold=timedelta(minutes=max_hold_minutes),
        min_gap=timedelta(minutes=min_gap_minutes),
    )


@router.post("/movements", status_code=201, responses=BOTH)
def record_movement(conn: Connection, user: Warehouse, now: Now, body: MovementRequest) -> Movement:
    """Record a movement, back-dated or not; 409 if it contradicts the lot's history."""
    set_actor(conn, user=user.username, reason=body.reason)
    movement = MovementIn(**body.model_dump(exclude={"reason"}))
    return movements.record_movement(conn, movement=movement, now=now)


@router.get("/lots/{lot_id}/movements", responses=NOT_FOUND)
def list_movements(conn: Connection, _user: CurrentUser, lot_id: LotId) -> list[Movement]:
    """A lot's movements in time order."""
    lots.get_lot(conn, lot_id=lot_id)
    return movements.list_movements(conn, lot_id=lot_id)


@router.post("/scans", responses=BOTH)
def scan(conn: Connection, user: Warehouse, now: Now, body: ScanIn) -> Movement | None:
    """A scan or tag read at a mapped reader; the movement it made, or null if none."""
    set_actor(conn, user=user.username)
    return movements.movement_from_scan(
        conn,
        reader_id=body.reader_id,
        time=body.time,
        lot_id=body.lot_id,
        gtin=body.gtin,
        lot_number=body.lot_number,
        quantity=body.quantity,
        reference=body.reference,
        now=now,
    )


@router.post("/shipments", status_code=201, responses=BOTH)
def create_shipment(conn: Connection, user: Warehouse, body: ShipmentIn) -> Shipment:
    """A planned shipment: truck, origin, destination, lots and loggers on board."""
    set_actor(conn, user=user.username)
    return shipments.create_shipment(conn, shipment=body)


@router.get("/shipments")
def list_shipments(conn: Connection, _user: CurrentUser) -> list[Shipment]:
    """Every shipment, newest first."""
    return shipments.list_shipments(conn)


@router.get("/shipments/{shipment_id}", responses=NOT_FOUND)
def get_shipment(conn: Connection, _user: CurrentUser, shipment_id: ShipmentId) -> Shipment:
    """One shipment."""
    return shipments.get_shipment(conn, shipment_id=shipment_id)


@router.post("/shipments/{shipment_id}/depart", responses=BOTH)
def depart(
    conn: Connection, user: Warehouse, now: Now, shipment_id: ShipmentId, body: TimeIn
) -> Shipment:
    """The truck leaves: lots onto the truck, loggers assigned to it."""
    set_actor(conn, user=user.username)
    return shipments.depart(conn, shipment_id=shipment_id, time=body.time, now=now)


@router.post("/shipments/{shipment_id}/arrive", responses=BOTH)
def arrive(
    conn: Connection, user: Warehouse, now: Now, shipment_id: ShipmentId, body: TimeIn
) -> Shipment:
    """The truck arrives: lots to the destination, loggers' truck assignments end."""
    set_actor(conn, user=user.username)
    return shipments.arrive(conn, shipment_id=shipment_id, time=body.time, now=now)


@router.post("/shipments/{shipment_id}/legs", responses=BOTH)
def add_leg(conn: Connection, user: Warehouse, shipment_id: ShipmentId, body: LegIn) -> Shipment:
    """Append a leg to the shipment's route."""
    set_actor(conn, user=user.username)
    return shipments.add_leg(conn, shipment_id=shipment_id, leg=body)
