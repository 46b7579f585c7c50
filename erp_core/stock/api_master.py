"""Master-data endpoints: items, locations, sensor assignments, reader mappings.

Writes need the admin role (master data defines what the evidence means); reads need
any signed-in user. Every write names its user for the audit trail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from erp_core.audit.service import set_actor
from erp_core.auth.models import User
from erp_core.deps import Connection, CurrentUser, require_roles
from erp_core.stock import master
from erp_core.stock.models import (
    Assignment,
    AssignmentEndIn,
    AssignmentIn,
    Item,
    ItemIn,
    Location,
    LocationIn,
    Reader,
    ReaderIn,
)

Responses = dict[int | str, dict[str, Any]]
router = APIRouter(prefix="/api", tags=["stock: master data"])

Admin = Annotated[User, Depends(require_roles("admin"))]
NOT_FOUND: Responses = {404: {"description": "No such record"}}
CONFLICT: Responses = {409: {"description": "Clashes with stored records"}}
BOTH: Responses = {**NOT_FOUND, **CONFLICT}


@router.post("/items", status_code=201, responses=CONFLICT)
def create_item(conn: Connection, user: Admin, body: ItemIn) -> Item:
    """A new item (GTIN with a valid check digit) with its storage condition."""
    set_actor(conn, user=user.username)
    return master.create_item(conn, item=body)


@router.get("/items")
def list_items(conn: Connection, _user: CurrentUser) -> list[Item]:
    """Every item."""
    return master.list_items(conn)


@router.get("/items/{item_id}", responses=NOT_FOUND)
def get_item(conn: Connection, _user: CurrentUser, item_id: Annotated[int, Path()]) -> Item:
    """One item."""
    return master.get_item(conn, item_id=item_id)


@router.post("/locations", status_code=201, responses=CONFLICT)
def create_location(conn: Connection, user: Admin, body: LocationIn) -> Location:
    """A new location: a site, an area under a site, or a unit under an area or site."""
    set_actor(conn, user=user.username)
    return master.create_location(conn, location=body)


@router.get("/locations")
def list_locations(conn: Connection, _user: CurrentUser) -> list[Location]:
    """Every location, parents first."""
    return master.list_locations(conn)


@router.get("/locations/{location_id}", responses=NOT_FOUND)
def get_location(
    conn: Connection, _user: CurrentUser, location_id: Annotated[int, Path()]
) -> Location:
    """One location."""
    return master.get_location(conn, location_id=location_id)


@router.post("/sensor-assignments", status_code=201, responses=CONFLICT)
def assign_sensor(conn: Connection, user: Admin, body: AssignmentIn) -> Assignment:
    """Let a sensor stand for a location over [valid_from, valid_to); 409 on overlap."""
    set_actor(conn, user=user.username)
    return master.assign_sensor(conn, assignment=body)


@router.post("/sensor-assignments/{assignment_id}/end", responses=BOTH)
def end_assignment(
    conn: Connection,
    user: Admin,
    assignment_id: Annotated[int, Path()],
    body: AssignmentEndIn,
) -> Assignment:
    """End an assignment (e.g. a logger swapped out) at ``valid_to``."""
    set_actor(conn, user=user.username)
    return master.end_assignment(conn, assignment_id=assignment_id, valid_to=body.valid_to)


@router.get("/sensor-assignments")
def list_assignments(
    conn: Connection,
    _user: CurrentUser,
    location_id: Annotated[int | None, Query(description="Only this location's")] = None,
) -> list[Assignment]:
    """Sensor assignments, oldest first."""
    return master.list_assignments(conn, location_id=location_id)


@router.put("/readers/{reader_id}", responses=NOT_FOUND)
def set_reader(
    conn: Connection, user: Admin, reader_id: Annotated[str, Path()], body: ReaderIn
) -> Reader:
    """Say where a fixed barcode scanner or RFID reader stands."""
    set_actor(conn, user=user.username)
    return master.set_reader(conn, reader_id=reader_id, reader=body)
