"""The alerts inbox page (``/alerts``): what quality staff must look at, oldest open first.

Any signed-in user reads it; ``qa`` and ``qa_manager`` acknowledge and close alerts from
it with the same service functions (and rules) as ``/api/alerts/{id}/ack`` and
``/close``, as the signed-in user, each form protected by the session's CSRF token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coldchain.alert_states import Disposition, Status
from erp_core.alerts import service
from erp_core.alerts.models import AlertSummary
from erp_core.auth.models import Role
from erp_core.deps import Connection, Now
from erp_core.errors import InvalidArgumentError
from erp_core.web.format import format_time
from erp_core.web.html import Html, Viewer, csrf_field, join, page, render
from erp_core.web.session import PageSession, PageUser, form_user

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
REFRESH_SECONDS = 30
_STATUS_CSS = {"open": "alarm", "acknowledged": "warning", "closed": "ok"}
QaForm = Annotated[PageSession, Depends(form_user("qa", "qa_manager"))]
AlertId = Annotated[int, Path(ge=1)]
Comment = Annotated[str, Form()]
ACTING_ROLES = frozenset({Role.QA, Role.QA_MANAGER})  # as /api/alerts/{id}/ack and /close


_ACK_FORM = (
    '<form method="post" action="/alerts/{id}/ack" class="inline">{csrf}'
    "<label>Acknowledge #{id}: "
    '<input name="comment" placeholder="What you are doing about it" required size="50">'
    '</label><button type="submit">Acknowledge</button></form>'
)
_CLOSE_FORM = (
    '<form method="post" action="/alerts/{id}/close" class="inline">{csrf}'
    '<label>Close #{id} as <select name="disposition">{options}</select></label>'
    '<label>because <input name="comment" placeholder="Your assessment" required size="50">'
    '</label><button type="submit">Close</button></form>'
)


def _actions(a: AlertSummary, viewer: Viewer) -> Html:
    if a.status is Status.OPEN:
        return render(_ACK_FORM, id=a.id, csrf=csrf_field(viewer))
    if a.status is Status.ACKNOWLEDGED and a.ended_at is None:
        return render("#{id} can be closed once the condition has ended.", id=a.id)
    if a.status is Status.ACKNOWLEDGED:
        options = join(render('<option value="{v}">{v}</option>', v=d.value) for d in Disposition)
        return render(_CLOSE_FORM, id=a.id, csrf=csrf_field(viewer), options=options)
    return Html("–")


# The figure of the rolling-window kinds is not a peak reading: say what it is (their
# ``peak`` holds the MKT in °C, or the hours out of range), as the notifications do.
_FIGURES = {"mkt_exceeded": "MKT {:.2f} °C", "tor_budget_exceeded": "{:.1f} h out of range"}


def _row(a: AlertSummary) -> Html:
    peak = "–" if a.peak is None else _FIGURES.get(a.kind, "{:.1f}").format(a.peak)
    return render(
        '<tr><td>#{id}</td><td><span class="badge {css}">{status}</span></td><td>{severity}</td>'
        "<td>{kind}{late}</td><td>{sensor}</td><td>{summary}</td><td>{started}</td>"
        '<td class="num">{peak}</td><td class="num">{level}</td><td>{who}</td></tr>',
        id=a.id,
        css=_STATUS_CSS.get(a.status.value, "warning"),
        status=a.status.value.upper(),
        severity=a.severity,
        kind=a.kind,
        late=" (LATE DATA)" if a.late else "",
        sensor=a.sensor or "–",
        summary=a.summary,
        started=format_time(a.started_at),
        peak=peak,
        level=a.escalation_level,
        who=a.acknowledged_by or "–",
    )


def _live_rows(a: AlertSummary, actor: Viewer | None) -> Html:
    """The alert's row, and under it a row with its form when ``actor`` may act."""
    if actor is None:
        return _row(a)
    return render(
        '{row}<tr class="actions"><td></td><td colspan="9">{forms}</td></tr>',
        row=_row(a),
        forms=_actions(a, actor),
    )


def inbox_body(
    open_alerts: list[AlertSummary],
    recent_closed: list[AlertSummary],
    *,
    actor: Viewer | None = None,
    error: str | None = None,
) -> Html:
    """Open and acknowledged alerts (with forms when ``actor`` may act), then closed ones."""
    head = (
        "<thead><tr><th>Alert</th><th>Status</th><th>Severity</th><th>Kind</th><th>Sensor</th>"
        "<th>What</th><th>Since (UTC)</th><th>Peak</th><th>Escalation</th>"
        "<th>Acknowledged by</th></tr></thead>"
    )
    how = (
        "Acknowledge and close them here."
        if actor is not None
        else "Acknowledging and closing needs the role qa or qa_manager."
    )
    banner = (
        render(
            '<p class="banner alarm"><strong>{n} ALERT(S) NEED ATTENTION</strong>. {how}</p>',
            n=len(open_alerts),
            how=how,
        )
        if open_alerts
        else Html('<p class="banner ok"><strong>NO OPEN ALERT</strong>.</p>')
    )
    err = render('<p class="banner alarm">{e}</p>', e=error) if error else Html("")
    return render(
        "{err}{banner}<table>{head}<tbody>{open}</tbody></table>"
        "<h2>Recently closed</h2><table>{head}<tbody>{closed}</tbody></table>",
        err=err,
        banner=banner,
        head=Html(head),
        open=join(_live_rows(a, actor) for a in open_alerts),
        closed=join(_row(a) for a in recent_closed),
    )


def _inbox(conn: Connection, now: Now, found: PageSession, error: str | None = None) -> Response:
    live = [
        a
        for status in (Status.OPEN, Status.ACKNOWLEDGED)
        for a in service.list_alerts(conn, status=status)
    ]
    live.sort(key=lambda a: a.started_at)
    closed = service.list_alerts(conn, status=Status.CLOSED, limit=20)
    actor = found.viewer if found.user.has_any(ACTING_ROLES) else None
    html = page(
        title="Alerts",
        body=inbox_body(live, closed, actor=actor, error=error),
        now=now,
        refresh_seconds=None if error else REFRESH_SECONDS,
        viewer=found.viewer,
    )
    return HTMLResponse(html, status_code=200 if error is None else 409)


@router.get("/alerts")
def inbox(conn: Connection, now: Now, found: PageUser) -> Response:
    """Open and acknowledged alerts, oldest first, and the last 20 closed."""
    return _inbox(conn, now, found)


@router.post("/alerts/{alert_id}/ack")
def acknowledge(
    conn: Connection, now: Now, found: QaForm, alert_id: AlertId, comment: Comment
) -> Response:
    """Acknowledge an open alert as the signed-in QA user; back to the inbox."""
    try:
        service.acknowledge(
            conn, alert_id=alert_id, user=found.user.username, comment=comment, now=now
        )
    except (service.AlertTransitionError, InvalidArgumentError) as err:
        conn.rollback()
        return _inbox(conn, now, found, error=f"Not acknowledged: {err}")
    return RedirectResponse("/alerts", status_code=303)


@router.post("/alerts/{alert_id}/close")
def close(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    found: QaForm,
    alert_id: AlertId,
    disposition: Annotated[Disposition, Form()],
    comment: Comment,
) -> Response:
    """Close an acknowledged, ended alert with a disposition; back to the inbox."""
    try:
        service.close(
            conn,
            alert_id=alert_id,
            user=found.user.username,
            disposition=disposition,
            comment=comment,
            now=now,
        )
    except (service.AlertTransitionError, InvalidArgumentError) as err:
        conn.rollback()
        return _inbox(conn, now, found, error=f"Not closed: {err}")
    return RedirectResponse("/alerts", status_code=303)
