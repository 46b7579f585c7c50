"""Endpoints for scans and tag reads from the gateways: outcomes, retries, tag registry.

Roles: reading outcomes needs any signed-in user; registering tags and re-queueing a
failed event need warehouse. The processing itself is a job (``coldtrace erp-jobs``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from erp_core.audit.service import set_actor
from erp_core.auth.models import User
from erp_core.deps import Connection, CurrentUser, require_roles
from erp_core.edge_events import service as edge_events
from erp_core.edge_events.models import EdgeOutcome
from erp_core.errors import NotFoundError
from erp_core.lots import service as lots
from erp_core.lots import tags
from erp_core.lots.models import LotTag, LotTagIn

router = APIRouter(prefix="/api", tags=["stock: scans and tag reads"])
Warehouse = Annotated[User, Depends(require_roles("warehouse"))]
Outcome = Literal["moved", "repeat", "ignored", "failed"]


@router.get("/edge-events")
def list_edge_events(
    conn: Connection,
    _user: CurrentUser,
    outcome: Annotated[Outcome | None, Query()] = None,
    reader_id: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[EdgeOutcome]:
    """Processed scans and tag reads, newest first (``outcome=failed`` for the work list)."""
    return edge_events.list_outcomes(conn, outcome=outcome, reader_id=reader_id, limit=limit)


@router.post(
    "/edge-events/{source}/{event_id}/retry",
    status_code=202,
    responses={404: {"description": "No failed event with that id"}},
)
def retry_edge_event(
    conn: Connection,
    user: Warehouse,
    source: Annotated[Literal["scan", "rfid"], Path()],
    event_id: Annotated[int, Path()],
) -> dict[str, str]:
    """Queue a failed event again, e.g. after its reader was mapped or its lot created."""
    set_actor(conn, user=user.username, reason="retry of a failed scan or tag read")
    if not edge_events.retry(conn, source=source, event_id=event_id):
        raise NotFoundError(f"failed {source} event", event_id)
    return {"status": "queued"}


@router.post("/lot-tags", status_code=201, responses={409: {"description": "Tag registered"}})
def register_tag(conn: Connection, user: Warehouse, body: LotTagIn) -> LotTag:
    """Register an RFID tag (pallet SSCC, or case GTIN + serial) as holding a lot."""
    set_actor(conn, user=user.username)
    lots.get_lot(conn, lot_id=body.lot_id)
    return tags.register_tag(conn, tag=body)
