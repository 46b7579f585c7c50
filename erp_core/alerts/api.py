"""JSON endpoints of the alerts domain (``/api/alerts``): HTTP in, service call, model out.

Reading needs a signed-in user (any role), as the inbox page does; acknowledging and
closing need the ``qa`` or ``qa_manager`` role, and the acting user is the authenticated one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from coldchain.alert_states import Status
from erp_core.alerts import service
from erp_core.alerts.models import AckBody, AlertDetail, AlertSummary, CloseBody
from erp_core.auth.models import User
from erp_core.deps import Connection, CurrentUser, Now, require_roles

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
        404: {"description": "No such alert"},
        409: {"description": "Not acknowledged, already closed, or still in progress"},
    },
)
def close(
    conn: Connection, now: Now, user: QaUser, alert_id: AlertId, body: CloseBody
) -> AlertDetail:
    """Close an acknowledged, ended alert with a disposition, as the signed-in QA user."""
    try:
        service.close(
            conn,
            alert_id=alert_id,
            user=user.username,
            disposition=body.disposition,
            comment=body.comment,
            now=now,
        )
    except service.AlertTransitionError as err:
        raise HTTPException(409, str(err)) from err
    return service.get_alert(conn, alert_id=alert_id)
