"""HTML pages of lots: ``/lots`` and ``/lots/{id}`` with the release panel and its signature form.

Signing from the browser asks for user name *and* password (21 CFR 11.200(a)(1)): the
form authenticates the signer, then records the decision exactly as the API does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.auth import service as auth_service
from erp_core.auth.errors import AuthError
from erp_core.auth.models import Channel
from erp_core.deps import AttemptLog, Connection, LoginLimits, Now
from erp_core.release import service, templates
from erp_core.release.rules import Action, recommend
from erp_core.signatures.errors import SignatureError
from erp_core.stock.history import lot_history
from erp_core.stock.lots import list_lots
from erp_core.web.html import page

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
CHART_POINTS = 300


@router.get("/lots")
def lots(conn: Connection, now: Now) -> HTMLResponse:
    """All lots with their status."""
    return HTMLResponse(page(title="Lots", body=templates.lots_body(list_lots(conn)), now=now))


def _lot_page(conn: Connection, now: Now, lot_id: int, error: str | None = None) -> HTMLResponse:
    history = lot_history(conn, lot_id=lot_id, max_points=CHART_POINTS, now=now)
    rec = recommend(service.gather_evidence(conn, lot_id=lot_id, now=now))
    body = templates.lot_body(
        history,
        rec,
        service.decisions_for(conn, lot_id=lot_id),
        service.deviations_for(conn, lot_id=lot_id),
        error,
    )
    status = 200 if error is None else 409
    return HTMLResponse(page(title=f"Lot {history.lot.lot_number}", body=body, now=now), status)


@router.get("/lots/{lot_id}")
def lot_detail(conn: Connection, now: Now, lot_id: Annotated[int, Path(ge=1)]) -> HTMLResponse:
    """One lot: temperature history with statistics, deviations, release panel."""
    return _lot_page(conn, now, lot_id)


@router.post("/lots/{lot_id}/release")
def sign_release(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    request: Request,
    policy: LoginLimits,
    attempts: AttemptLog,
    lot_id: Annotated[int, Path(ge=1)],
    action: Annotated[Action, Form()],
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    justification: Annotated[str, Form()] = "",
) -> Response:
    """Release or reject from the browser; on success back to the lot page."""
    source = request.client.host if request.client else None
    try:
        user = auth_service.authenticate(
            conn,
            username=username,
            password=password,
            source=source,
            channel=Channel.SIGNATURE,
            now=now,
            policy=policy,
            record=attempts,
        )
        service.record_decision(
            conn,
            lot_id=lot_id,
            user=user,
            action=action,
            password=password,
            justification=justification.strip() or None,
            comment=None,
            clock=lambda: now,
            policy=policy,
            record_attempt=attempts,
            source=source,
        )
    except (AuthError, SignatureError) as err:
        conn.rollback()
        return _lot_page(conn, now, lot_id, error=f"Not signed: {err}")
    except service.ReleaseRefusedError as err:
        conn.rollback()
        return _lot_page(conn, now, lot_id, error=f"Not allowed: {err.reason}")
    return RedirectResponse(f"/lots/{lot_id}", status_code=303)
