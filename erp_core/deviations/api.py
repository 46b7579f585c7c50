"""HTTP views of deviations: a lot's deviations, and a signed disposition.

Roles: reading needs any signed-in user; a disposition needs qa or qa_manager, and
closing a deviation (use as is, reject) is signed with the password re-entered.
The routes keep the ``release`` tag they were published under.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path

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
from erp_core.deviations import service
from erp_core.deviations.errors import DeviationClosedError
from erp_core.deviations.models import DispositionIn
from erp_core.lots.api import KnownLotId as LotId
from erp_core.signatures import http as signatures

router = APIRouter(prefix="/api", tags=["release"])
QaUser = Annotated[User, Depends(require_roles("qa", "qa_manager"))]
CLOSED: dict[int | str, dict[str, Any]] = {409: {"description": "The deviation is not open"}}


@router.get("/lots/{lot_id}/deviations")
def lot_deviations(conn: Connection, _user: CurrentUser, lot_id: LotId) -> list[dict[str, Any]]:
    """The lot's deviations, open first."""
    return service.deviations_for(conn, lot_id=lot_id)


@router.post("/deviations/{deviation_id}/disposition", responses=CLOSED)
def disposition(  # noqa: PLR0913, PLR0917 - FastAPI dependencies
    conn: Connection,
    user: QaUser,
    policy: LoginLimits,
    attempts: AttemptLog,
    now: Now,
    deviation_id: Annotated[int, Path(ge=1)],
    body: DispositionIn,
    key: SigningKey,
    records: Records,
) -> dict[str, Any]:
    """Disposition a deviation (use as is / reject, signed; investigate keeps it open)."""
    try:
        service.close_deviation(
            conn,
            deviation_id=deviation_id,
            user=user,
            password=body.password,
            disposition=body.disposition,
            comment=body.comment,
            capa_ref=body.capa_ref,
            clock=lambda: now,
            policy=policy,
            record_attempt=attempts,
            signing_key=key,
            keyring=records.keyring,
        )
    except DeviationClosedError as err:
        raise HTTPException(409, str(err)) from err
    except signatures.REFUSALS as err:
        raise signatures.refused(err) from err
    return {"id": deviation_id, "disposition": body.disposition}
