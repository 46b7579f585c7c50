"""Shipment endpoints: plan, depart, arrive, add a leg, read.

Roles: writes need warehouse; reads need any signed-in user. Writes name their user for
the audit trail.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from erp_core.audit.service import set_actor
from erp_core.auth.models import User
from erp_core.deps import Connection, CurrentUser, Now, require_roles
from erp_core.lots.api import BOTH, NOT_FOUND
from erp_core.shipments import service as shipments
from erp_core.shipments.models import LegIn, Shipment, ShipmentIn, TimeIn

router = APIRouter(prefix="/api", tags=["stock: lots"])
Warehouse = Annotated[User, Depends(require_roles("warehouse"))]
ShipmentId = Annotated[int, Path(description="The shipment's id")]


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
