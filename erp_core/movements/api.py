"""Movement and scan endpoints: record a move (back-dated or not), list a lot's moves.

Roles: recording movements and scans needs warehouse; reads need any signed-in user.
Writes name their user for the audit trail.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from erp_core.audit.service import set_actor
from erp_core.auth.models import User
from erp_core.deps import Connection, CurrentUser, Now, require_roles
from erp_core.lots import service as lots
from erp_core.lots.api import BOTH, NOT_FOUND, LotId
from erp_core.movements import service as movements
from erp_core.movements.models import Movement, MovementIn, MovementRequest, ScanIn

router = APIRouter(prefix="/api", tags=["stock: lots"])
Warehouse = Annotated[User, Depends(require_roles("warehouse"))]


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
