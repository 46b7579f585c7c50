"""JSON endpoints of the alerts domain (``/api/alerts``): HTTP in, service call, model out.

Reading needs a signed-in user (any role), as the inbox page does; acknowledging and
closing need the ``qa`` or ``qa_manager`` role, and the acting user is the authenticated one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from coldchain.alert_states import Status
from erp_core.alerts import service, signed_close
from erp_core.alerts.models import AckBody, AlertDetail, AlertSummary, CloseBody, ClosedAlert
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
from erp_core.signatures import http as signatures

router = APIRouter(prefix="/api", tags=["alerts"])

QaUser = Annotated[User, Depends(require_roles("qa", "qa_manager"))]
AlertId = Annotated[int, Path(description="The alert's id from /api/alerts")]


@router.get("/alerts")
def list_alerts(
    conn: Connection,
    _user: CurrentUser,
    status: Annotated[Status | None, Query(description="open, acknowledged or closed")] = None,
    site: Annotated[str | None, Query(description="The gateway's site")] = None,
    sensor: Annotated[int | None, Query(description="A sensor id from /api/sensors")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_ALERTS)] = 200,
) -> list[AlertSummary]:
    """Alerts, newest first, filtered by status, site and sensor."""
    return service.list_alerts(conn, status=status, site=site, sensor_id=sensor, limit=limit)


@router.get("/alerts/{alert_id}", responses={404: {"description": "No alert with this id"}})
def get_alert(conn: Connection, _user: CurrentUser, alert_id: AlertId) -> AlertDetail:
    """One alert with its event log (opened, updated, escalated, acknowledged, closed)."""
    return service.get_alert(conn, alert_id=alert_id)


@router.post(
    "/alerts/{alert_id}/ack",
    responses={404: {"description": "No such alert"}, 409: {"description": "Not open"}},
)
def acknowledge(
    conn: Connection, now: Now, user: QaUser, alert_id: AlertId, body: AckBody
) -> AlertDetail:
    """Acknowledge an open alert as the signed-in QA user; stops its escalation."""
    try:
        service.acknowledge(
            conn, alert_id=alert_id, user=user.username, comment=body.comment, now=now
        )
    except service.AlertTransitionError as err:
        raise HTTPException(409, str(err)) from err
    return service.get_alert(conn, alert_id=alert_id)


@router.post(
    "/alerts/{alert_id}/close",
    responses={
        403: {"description": "Signature refused (password)"},
        404: {"description": "No such alert"},
        409: {"description": "Not acknowledged, already closed, or still in progress"},
    },
)
def close(  # noqa: PLR0913, PLR0917 - FastAPI dependencies
    conn: Connection,
    now: Now,
    user: QaUser,
    alert_id: AlertId,
    body: CloseBody,
    policy: LoginLimits,
    attempts: AttemptLog,
    key: SigningKey,
    records: Records,
) -> ClosedAlert:
    """Close an acknowledged, ended alert with a disposition, signed by the QA user.

    The deviations the excursion opened on lots are closed with the lot disposition the
    alert's disposition implies (or ``lot_disposition``), each signed.
    """
    try:
        done = signed_close.close_signed(
            conn,
            alert_id=alert_id,
            user=user,
            password=body.password,
            disposition=body.disposition,
            chosen=body.lot_disposition,
            comment=body.comment,
            clock=lambda: now,
            policy=policy,
            record_attempt=attempts,
            signing_key=key,
            keyring=records.keyring,
        )
    except service.AlertTransitionError as err:
        raise HTTPException(409, str(err)) from err
    except signatures.REFUSALS as err:
        raise signatures.refused(err) from err
    alert = service.get_alert(conn, alert_id=alert_id)
    return ClosedAlert(
        **alert.model_dump(),
        signature=done.signature.manifestation,
        deviations_closed=list(done.deviations_closed),
    )
