"""Production endpoints: BOMs, work orders, material issue by scan, genealogy.

Roles: a BOM version is drafted by QA and approved (signed) by a QA manager; work
orders are planned, released, supplied and completed by operators; reads need any
signed-in user. Refusals are 409 with the rule's ``code`` (``erp_core.production.rules``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from erp_core.auth.models import User
from erp_core.deps import (
    AttemptLog,
    Connection,
    CurrentUser,
    LoginLimits,
    Now,
    Records,
    SigningKey,
    require_roles,
)
from erp_core.lots.api import BOTH, NOT_FOUND
from erp_core.lots.api import KnownLotId as LotId
from erp_core.lots.models import Lot
from erp_core.production import service
from erp_core.production.genealogy import genealogy
from erp_core.production.models import (
    Bom,
    BomIn,
    CompleteIn,
    Direction,
    GenealogyNode,
    IssueIn,
    MaterialIssue,
    WorkOrder,
    WorkOrderIn,
)
from erp_core.signatures import http as signatures

router = APIRouter(prefix="/api", tags=["production"])
Author = Annotated[User, Depends(require_roles("qa", "qa_manager"))]
Approver = Annotated[User, Depends(require_roles("qa_manager"))]
Operator = Annotated[User, Depends(require_roles("operator"))]
BomId = Annotated[int, Path(description="The BOM version's id")]
OrderId = Annotated[int, Path(description="The work order's id")]


class ApprovalIn(BaseModel):
    """A QA manager's signed approval of a draft BOM version."""

    password: str = Field(min_length=1, repr=False)
    comment: str | None = Field(default=None, max_length=2000)


@router.post("/boms", status_code=201, responses=BOTH)
def create_bom(conn: Connection, user: Author, body: BomIn) -> Bom:
    """A new draft version of a product's BOM."""
    return service.create_bom(conn, bom=body, user=user.username)


@router.get("/boms/{bom_id}", responses=NOT_FOUND)
def get_bom(conn: Connection, _user: CurrentUser, bom_id: BomId) -> Bom:
    """One BOM version with its lines."""
    return service.get_bom(conn, bom_id=bom_id)


@router.post("/boms/{bom_id}/approval", responses={**BOTH, 403: {"description": "Refused"}})
def approve_bom(  # noqa: PLR0913, PLR0917 - FastAPI dependencies
    conn: Connection,
    user: Approver,
    request: Request,
    policy: LoginLimits,
    attempts: AttemptLog,
    now: Now,
    bom_id: BomId,
    body: ApprovalIn,
    key: SigningKey,
    records: Records,
) -> Bom:
    """Make a draft version effective with the QA manager's signature ("Approved BOM version")."""
    try:
        return service.approve_bom(
            conn,
            bom_id=bom_id,
            user=user,
            password=body.password,
            now=now,
            policy=policy,
            record_attempt=attempts,
            signing_key=key,
            keyring=records.keyring,
            source=request.client.host if request.client else None,
            comment=body.comment,
        )
    except signatures.REFUSALS as err:
        raise signatures.refused(err) from err


@router.post("/work-orders", status_code=201, responses=BOTH)
def create_work_order(conn: Connection, user: Operator, now: Now, body: WorkOrderIn) -> WorkOrder:
    """A planned work order on the product's effective BOM version."""
    return service.create_work_order(conn, order=body, user=user.username, now=now)


@router.get("/work-orders/{work_order_id}", responses=NOT_FOUND)
def get_work_order(conn: Connection, _user: CurrentUser, work_order_id: OrderId) -> WorkOrder:
    """One work order."""
    return service.get_work_order(conn, work_order_id=work_order_id)


@router.post("/work-orders/{work_order_id}/release", responses=BOTH)
def release_work_order(
    conn: Connection, user: Operator, now: Now, work_order_id: OrderId
) -> WorkOrder:
    """Release a planned work order to the shop floor."""
    return service.release_work_order(
        conn, work_order_id=work_order_id, user=user.username, now=now
    )


@router.post("/work-orders/{work_order_id}/issues", status_code=201, responses=BOTH)
def issue_material(
    conn: Connection, user: Operator, now: Now, work_order_id: OrderId, body: IssueIn
) -> MaterialIssue:
    """Consume a scanned component lot (GS1 label), or 409 with the reason it is refused."""
    return service.issue_by_scan(
        conn, work_order_id=work_order_id, issue=body, user=user.username, now=now
    )


@router.get("/work-orders/{work_order_id}/issues", responses=NOT_FOUND)
def list_issues(
    conn: Connection, _user: CurrentUser, work_order_id: OrderId
) -> list[MaterialIssue]:
    """The component lots issued to a work order."""
    service.get_work_order(conn, work_order_id=work_order_id)
    return service.list_issues(conn, work_order_id=work_order_id)


@router.post("/work-orders/{work_order_id}/complete", responses=BOTH)
def complete_work_order(
    conn: Connection, user: Operator, now: Now, work_order_id: OrderId, body: CompleteIn
) -> Lot:
    """Record the finished lot (quarantine, at the work centre) and complete the order."""
    return service.complete_work_order(
        conn, work_order_id=work_order_id, done=body, user=user.username, now=now
    )


@router.get("/lots/{lot_id}/genealogy", responses=NOT_FOUND)
def lot_genealogy(
    conn: Connection,
    _user: CurrentUser,
    lot_id: LotId,
    direction: Annotated[
        Direction, Query(description="backward: what went in; forward: where it went")
    ] = "backward",
) -> list[GenealogyNode]:
    """Every lot that went into this lot (backward) or that it went into (forward)."""
    return genealogy(conn, lot_id=lot_id, direction=direction)
