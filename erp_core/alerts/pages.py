"""The alerts inbox page (``/alerts``): what quality staff must look at, oldest open first."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from erp_core.alerts import service
from erp_core.alerts.models import AlertSummary, Status
from erp_core.deps import Connection, Now
from erp_core.web.format import format_time
from erp_core.web.html import Html, join, page, render

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
REFRESH_SECONDS = 30
_STATUS_CSS = {"open": "alarm", "acknowledged": "warning", "closed": "ok"}


def _row(a: AlertSummary) -> Html:
    peak = "–" if a.peak is None else f"{a.peak:.1f}"
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


def inbox_body(open_alerts: list[AlertSummary], recent_closed: list[AlertSummary]) -> Html:
    """Open and acknowledged alerts, then the last closed ones."""
    head = (
        "<thead><tr><th>Alert</th><th>Status</th><th>Severity</th><th>Kind</th><th>Sensor</th>"
        "<th>What</th><th>Since (UTC)</th><th>Peak</th><th>Escalation</th>"
        "<th>Acknowledged by</th></tr></thead>"
    )
    banner = (
        render(
            '<p class="banner alarm"><strong>{n} ALERT(S) NEED ATTENTION</strong>. '
            "Acknowledge with <code>coldtrace alerts ack ID</code> or the API.</p>",
            n=len(open_alerts),
        )
        if open_alerts
        else Html('<p class="banner ok"><strong>NO OPEN ALERT</strong>.</p>')
    )
    return render(
        "{banner}<table>{head}<tbody>{open}</tbody></table>"
        "<h2>Recently closed</h2><table>{head}<tbody>{closed}</tbody></table>",
        banner=banner,
        head=Html(head),
        open=join(_row(a) for a in open_alerts),
        closed=join(_row(a) for a in recent_closed),
    )


@router.get("/alerts")
def inbox(conn: Connection, now: Now) -> HTMLResponse:
    """Open and acknowledged alerts, oldest first, and the last 20 closed."""
    live = [
        a
        for status in (Status.OPEN, Status.ACKNOWLEDGED)
        for a in service.list_alerts(conn, status=status)
    ]
    live.sort(key=lambda a: a.started_at)
    closed = service.list_alerts(conn, status=Status.CLOSED, limit=20)
    html = page(
        title="Alerts", body=inbox_body(live, closed), now=now, refresh_seconds=REFRESH_SECONDS
    )
    return HTMLResponse(html)
