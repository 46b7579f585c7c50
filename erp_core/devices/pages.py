"""The devices page (``/devices``): gateways and sensors as a maintenance person checks them.

Any signed-in user reads it. Gateways are few (one per site or truck) and shown whole
on every page; the sensors below them paginate (``erp_core.web.paging``).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from erp_core.deps import Connection, Now, Settings
from erp_core.devices import service
from erp_core.web.html import Html, page
from erp_core.web.i18n import translations
from erp_core.web.paging import PageParam
from erp_core.web.session import PageUser
from erp_core.web.templates import render_template
from telemetry.units import display_unit

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
REFRESH_SECONDS = 60


@router.get("/devices")
def devices(
    conn: Connection, now: Now, settings: Settings, found: PageUser, paging: PageParam
) -> HTMLResponse:
    """Gateways (online or not, outbox, clock skew, local alarms) and sensors (a page)."""
    stale_after = timedelta(minutes=settings.stale_after_minutes)
    locale = found.viewer.locale
    body = render_template(
        "devices/devices.html",
        locale=locale,
        gateways=service.gateways(conn, now=now, stale_after=stale_after),
        sensors=paging.cut(
            service.sensors(conn, now=now, limit=paging.limit, offset=paging.offset)
        ),
        unit=display_unit,
    )
    title = translations(locale).gettext("Devices")
    return HTMLResponse(
        page(
            title=title,
            body=Html(body),
            now=now,
            refresh_seconds=REFRESH_SECONDS,
            viewer=found.viewer,
        )
    )
