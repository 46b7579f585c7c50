"""The scans page (``/scans``): what the gateways' scanners and RFID readers did to stock.

Failed events (unknown reader, unknown lot, unregistered tag, not enough stock) come
first: each is something a person must set right, after which a ``warehouse`` user
queues it again from here, as ``POST /api/edge-events/{source}/{id}/retry`` does. Any
signed-in user reads the page.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.audit.service import set_actor
from erp_core.auth.models import Role
from erp_core.deps import Connection, Now
from erp_core.edge_events import service as edge_events
from erp_core.edge_events.models import EdgeOutcome
from erp_core.web.format import format_time
from erp_core.web.html import Html, Viewer, csrf_field, join, page, render
from erp_core.web.session import PageSession, PageUser, form_user

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
REFRESH_SECONDS = 30
WarehouseForm = Annotated[PageSession, Depends(form_user("warehouse"))]
_CSS = {"moved": "ok", "repeat": "ok", "ignored": "warning", "failed": "alarm"}
_RETRY = (
    '<form method="post" action="/scans/{source}/{id}/retry" class="inline">{csrf}'
    '<button type="submit">Retry</button></form>'
)


def _row(e: EdgeOutcome, actor: Viewer | None) -> Html:
    retry = (
        render(_RETRY, source=e.source, id=e.event_id, csrf=csrf_field(actor))
        if actor is not None and e.outcome == "failed"
        else Html("")
    )
    lot = render('<a href="/lots/{id}">lot {id}</a>', id=e.lot_id) if e.lot_id else Html("–")
    return render(
        "<tr><td>{time}</td><td>{source}</td><td>{reader}</td><td><code>{data}</code></td>"
        '<td><span class="badge {css}">{outcome}</span></td><td>{lot}</td><td>{reason}</td>'
        "<td>{retry}</td></tr>",
        time=format_time(e.time),
        source="RFID" if e.source == "rfid" else "barcode",
        reader=e.reader_id,
        data=e.data,
        css=_CSS[e.outcome],
        outcome=e.outcome.upper(),
        lot=lot,
        reason=e.reason or "",
        retry=retry,
    )


def scans_body(
    failed: list[EdgeOutcome], recent: list[EdgeOutcome], *, waiting: int, actor: Viewer | None
) -> Html:
    """Failed events first (with retry forms for ``actor``), then the latest of all."""
    head = Html(
        "<thead><tr><th>Scanned (UTC)</th><th>Device</th><th>Reader</th><th>Data</th>"
        "<th>Outcome</th><th>Lot</th><th>Why</th><th></th></tr></thead>"
    )
    banner = (
        render(
            '<p class="banner alarm"><strong>{n} SCAN(S) MOVED NOTHING</strong>. '
            "Map the reader, enter the lot or register the tag, then retry.</p>",
            n=len(failed),
        )
        if failed
        else Html('<p class="banner ok"><strong>EVERY SCAN WAS APPLIED</strong>.</p>')
    )
    return render(
        "{banner}<p>{waiting} event(s) waiting to be processed.</p>"
        "<table>{head}<tbody>{failed}</tbody></table>"
        "<h2>Latest scans and tag reads</h2><table>{head}<tbody>{recent}</tbody></table>",
        banner=banner,
        waiting=waiting,
        head=head,
        failed=join(_row(e, actor) for e in failed),
        recent=join(_row(e, None) for e in recent),
    )


@router.get("/scans")
def scans(conn: Connection, now: Now, found: PageUser) -> Response:
    """Failed scans and tag reads, then the latest 50."""
    actor = found.viewer if found.user.has_any(frozenset({Role.WAREHOUSE})) else None
    body = scans_body(
        edge_events.list_outcomes(conn, outcome="failed"),
        edge_events.list_outcomes(conn, limit=50),
        waiting=edge_events.queue_depth(conn),
        actor=actor,
    )
    html = page(
        title="Scans", body=body, now=now, refresh_seconds=REFRESH_SECONDS, viewer=found.viewer
    )
    return HTMLResponse(html)


@router.post("/scans/{source}/{event_id}/retry")
def retry(
    conn: Connection,
    found: WarehouseForm,
    source: Annotated[Literal["scan", "rfid"], Path()],
    event_id: Annotated[int, Path(ge=1)],
) -> Response:
    """Queue a failed event again as the signed-in warehouse user; back to the page."""
    set_actor(conn, user=found.user.username, reason="retry of a failed scan or tag read")
    edge_events.retry(conn, source=source, event_id=event_id)
    return RedirectResponse("/scans", status_code=303)
