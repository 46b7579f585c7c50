"""HTML pages of lots: ``/lots`` and ``/lots/{id}`` with the release panel and its signature form.

Every page needs a signed-in user (``erp_core.web.session``). The signature form signs
as the session's user — it has no user-name field — and asks for the password again at
every signature (21 CFR 11.200(a)(1), see docs/access-and-audit.md); only ``qa`` and
``qa_manager`` may send it, as in the API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.audit.keys import Keyring
from erp_core.auth.errors import AuthError
from erp_core.auth.models import SIGNING_ROLES
from erp_core.deps import AttemptLog, Connection, LoginLimits, Now, Records, SigningKey
from erp_core.deviations import service as deviations
from erp_core.lot_history.history import lot_history
from erp_core.lots.service import list_lots
from erp_core.release import service, templates
from erp_core.release.rules import Action, recommend
from erp_core.signatures.errors import SignatureError
from erp_core.web.html import page
from erp_core.web.session import PageSession, PageUser, form_user

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
CHART_POINTS = 300
Signer = Annotated[PageSession, Depends(form_user("qa", "qa_manager"))]


@router.get("/lots")
def lots(conn: Connection, now: Now, found: PageUser) -> HTMLResponse:
    """All lots with their status."""
    body = templates.lots_body(list_lots(conn))
    return HTMLResponse(page(title="Lots", body=body, now=now, viewer=found.viewer))


def _lot_page(  # noqa: PLR0913 - the request's parts, each explicit
    conn: Connection,
    now: Now,
    found: PageSession,
    lot_id: int,
    *,
    keyring: Keyring,
    error: str | None = None,
) -> HTMLResponse:
    history = lot_history(conn, lot_id=lot_id, max_points=CHART_POINTS, now=now)
    rec = recommend(service.gather_evidence(conn, lot_id=lot_id, now=now))
    body = templates.lot_body(
        history,
        rec,
        service.decisions_for(conn, lot_id=lot_id, keyring=keyring),
        deviations.deviations_for(conn, lot_id=lot_id),
        viewer=found.viewer,
        may_sign=found.user.has_any(SIGNING_ROLES),
        error=error,
    )
    status = 200 if error is None else 409
    title = f"Lot {history.lot.lot_number}"
    return HTMLResponse(page(title=title, body=body, now=now, viewer=found.viewer), status)


@router.get("/lots/{lot_id}")
def lot_detail(
    conn: Connection,
    now: Now,
    found: PageUser,
    records: Records,
    lot_id: Annotated[int, Path(ge=1)],
) -> HTMLResponse:
    """One lot: temperature history with statistics, deviations, release panel."""
    return _lot_page(conn, now, found, lot_id, keyring=records.keyring)


@router.post("/lots/{lot_id}/release")
def sign_release(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    request: Request,
    policy: LoginLimits,
    attempts: AttemptLog,
    signer: Signer,
    key: SigningKey,
    records: Records,
    lot_id: Annotated[int, Path(ge=1)],
    action: Annotated[Action, Form()],
    password: Annotated[str, Form()],
    justification: Annotated[str, Form()] = "",
) -> Response:
    """Release or reject as the signed-in user, password re-entered; back to the lot page."""
    try:
        service.record_decision(
            conn,
            lot_id=lot_id,
            user=signer.user,
            action=action,
            password=password,
            justification=justification.strip() or None,
            comment=None,
            clock=lambda: now,
            policy=policy,
            record_attempt=attempts,
            signing_key=key,
            source=request.client.host if request.client else None,
            keyring=records.keyring,
        )
    except (AuthError, SignatureError) as err:
        conn.rollback()
        return _lot_page(
            conn, now, signer, lot_id, keyring=records.keyring, error=f"Not signed: {err}"
        )
    except service.ReleaseRefusedError as err:
        conn.rollback()
        return _lot_page(
            conn, now, signer, lot_id, keyring=records.keyring, error=f"Not allowed: {err.reason}"
        )
    return RedirectResponse(f"/lots/{lot_id}", status_code=303)
