"""Master-data endpoints: items, locations, sensor assignments, reader mappings.

Writes need the admin role (master data defines what the evidence means); reads need
any signed-in user. Every write names its user for the audit trail; a change to an
existing record (update, retire, end, swap) also needs a reason, recorded with it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from erp_core.audit.service import set_actor
from erp_core.auth.models import User
from erp_core.deps import Connection, CurrentUser, Now, require_roles
from erp_core.masterdata import changes
from erp_core.masterdata import service as master
from erp_core.masterdata.models import (
    Assignment,
    AssignmentEndIn,
    AssignmentIn,
    Item,
    ItemIn,
    ItemUpdate,
    Location,
    LocationIn,
    LocationUpdate,
    Reader,
    ReaderIn,
    ReasonIn,
    SwapIn,
    SwapOut,
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


@router.patch("/items/{item_id}", responses=BOTH)
def update_item(
    conn: Connection, user: Admin, item_id: Annotated[int, Path()], body: ItemUpdate
) -> Item:
    """Change an item; 409 if the storage condition of lots still held would change."""
    set_actor(conn, user=user.username, reason=body.reason)
    fields = body.model_dump(exclude_unset=True, exclude={"reason"})
    return changes.update_item(conn, item_id=item_id, changes=fields)


@router.post("/items/{item_id}/retire", responses=BOTH)
def retire_item(
    conn: Connection, user: Admin, now: Now, item_id: Annotated[int, Path()], body: ReasonIn
) -> Item:
    """Take an item out of use (no new lots); its history is kept."""
    set_actor(conn, user=user.username, reason=body.reason)
    return changes.retire_item(conn, item_id=item_id, now=now)


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


@router.patch("/locations/{location_id}", responses=BOTH)
def update_location(
    conn: Connection, user: Admin, location_id: Annotated[int, Path()], body: LocationUpdate
) -> Location:
    """Change a location's code, name, parent or kind (kind: only while unused)."""
    set_actor(conn, user=user.username, reason=body.reason)
    fields = body.model_dump(exclude_unset=True, exclude={"reason"})
    return changes.update_location(conn, location_id=location_id, changes=fields)


@router.post("/locations/{location_id}/retire", responses=BOTH)
def retire_location(
    conn: Connection,
    user: Admin,
    now: Now,
    location_id: Annotated[int, Path()],
    body: ReasonIn,
) -> Location:
    """Take a location out of use (no stock, movements, sensors); its history is kept."""
    set_actor(conn, user=user.username, reason=body.reason)
    return changes.retire_location(conn, location_id=location_id, now=now)


@router.post("/sensor-assignments", status_code=201, responses=CONFLICT)
def assign_sensor(conn: Connection, user: Admin, now: Now, body: AssignmentIn) -> Assignment:
    """Let a sensor stand for a location over [valid_from, valid_to); 409 on overlap."""
    set_actor(conn, user=user.username)
    return changes.add_assignment(conn, assignment=body, now=now)


@router.post("/sensor-assignments/{assignment_id}/end", responses=BOTH)
def end_assignment(
    conn: Connection,
    user: Admin,
    now: Now,
    assignment_id: Annotated[int, Path()],
    body: AssignmentEndIn,
) -> Assignment:
    """End an open assignment at ``valid_to`` (e.g. a logger taken out of service)."""
    set_actor(conn, user=user.username, reason=body.reason)
    return changes.end_assignment(
        conn, assignment_id=assignment_id, valid_to=body.valid_to, now=now
    )


@router.post("/sensor-assignments/{assignment_id}/swap", responses=BOTH)
def swap_logger(
    conn: Connection,
    user: Admin,
    now: Now,
    assignment_id: Annotated[int, Path()],
    body: SwapIn,
) -> SwapOut:
    """Replace the assignment's logger by another at ``time`` (same location)."""
    set_actor(conn, user=user.username, reason=body.reason)
    ended, started = changes.swap_logger(
        conn, assignment_id=assignment_id, sensor_id=body.sensor_id, time=body.time, now=now
    )
    return SwapOut(ended=ended, started=started)


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
