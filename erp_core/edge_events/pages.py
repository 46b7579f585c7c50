"""The scans page (``/scans``): what the gateways' scanners and RFID readers did to stock.

Failed events (unknown reader, unknown lot, unregistered tag, not enough stock) come
first: each is something a person must set right, after which a ``warehouse`` user
queues it again from here, as ``POST /api/edge-events/{source}/{id}/retry`` does. Ignored
events are named too, so the page never says every scan was applied while one was not.
Any signed-in user reads the page (``edge_events/scans.html``), a page at a time.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.audit.service import set_actor
from erp_core.auth.models import Role
from erp_core.deps import Connection, Now
from erp_core.edge_events import service as edge_events
from erp_core.web.html import Html, page
from erp_core.web.i18n import translations
from erp_core.web.paging import PageParam
from erp_core.web.session import PageSession, PageUser, form_user
from erp_core.web.templates import render_template

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
REFRESH_SECONDS = 30
OUTCOMES = ("failed", "ignored", "moved", "repeat")
WarehouseForm = Annotated[PageSession, Depends(form_user("warehouse"))]


@router.get("/scans")
def scans(
    conn: Connection,
    now: Now,
    found: PageUser,
    paging: PageParam,
    outcome: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Scans and tag reads, failed ones first, filtered by outcome; a page at a time.

    Any ``outcome`` that is not one (the form's "all" sends ``outcome=``) means all.
    """
    chosen = outcome if outcome in OUTCOMES else None
    may_retry = found.user.has_any(frozenset({Role.WAREHOUSE}))
    locale = found.viewer.locale
    body = render_template(
        "edge_events/scans.html",
        locale=locale,
        events=paging.cut(
            edge_events.list_outcomes(
                conn,
                outcome=chosen,
                limit=paging.limit,
                offset=paging.offset,
                failed_first=True,
            )
        ),
        counts=edge_events.count_outcomes(conn),
        waiting=edge_events.queue_depth(conn),
        outcome=chosen or "",
        outcomes=OUTCOMES,
        viewer=found.viewer,
        may_retry=may_retry,
    )
    html = page(
        title=translations(locale).gettext("Scans"),
        body=Html(body),
        now=now,
        refresh_seconds=REFRESH_SECONDS,
        viewer=found.viewer,
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
