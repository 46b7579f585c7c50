"""Lot endpoints: create, read, change status along the release workflow.

Roles: status changes need qa or qa_manager; creating lots needs warehouse; reads need
any signed-in user. Writes name their user for the audit trail. Also the path
parameters and answers the other lot-centred domains (movements, shipments, lot
history, deviations, release) declare the same way.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from erp_core.audit.service import set_actor
from erp_core.auth.models import User
from erp_core.deps import Connection, CurrentUser, Now, require_roles
from erp_core.lots import service as lots
from erp_core.lots.models import Lot, LotIn, StatusChangeIn
from erp_core.lots.status import LotStatus

Responses = dict[int | str, dict[str, Any]]
router = APIRouter(prefix="/api", tags=["stock: lots"])

Warehouse = Annotated[User, Depends(require_roles("warehouse"))]
Quality = Annotated[User, Depends(require_roles("qa", "qa_manager"))]
LotId = Annotated[int, Path(description="The lot's id")]
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


def known_lot(conn: Connection, lot_id: Annotated[int, Path(ge=1)]) -> int:
    """The path's lot id; NotFoundError (404) if there is no such lot.

    Declared after the user in each view, so a stranger learns nothing about which exist.
    """
    lots.get_lot(conn, lot_id=lot_id)
    return lot_id


KnownLotId = Annotated[int, Depends(known_lot)]
"""A lot id of the path that must name a lot (release, deviations)."""
