"""HTML pages of the monitoring domain (``/``, ``/sensors/{id}``, ``/dead-letters``).

Any signed-in user may read them (``PageUser``); without a session they redirect to sign-in.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from erp_core.deps import Connection, Now, Settings
from erp_core.monitoring import service, templates
from erp_core.web.html import page
from erp_core.web.session import PageUser

OVERVIEW_REFRESH_SECONDS = 60
SENSOR_REFRESH_SECONDS = 120
CHART_POINTS = 300  # about 3 px of chart width per bucket
MAX_HOURS = 24 * 31

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


@router.get("/")
def overview(conn: Connection, now: Now, settings: Settings, found: PageUser) -> HTMLResponse:
    """Gateways, sensors with their latest value, and the dead-letter count."""
    body = templates.overview_body(
        sensors=service.list_sensors(conn, now=now),
        gateways=service.list_gateways(conn),
        dead_letters=service.count_dead_letters(conn, since=now - timedelta(hours=24)),
        now=now,
        stale_after=timedelta(minutes=settings.stale_after_minutes),
    )
    html = page(
        title="Cold-chain overview",
        body=body,
        now=now,
        refresh_seconds=OVERVIEW_REFRESH_SECONDS,
        footnote=templates.LIMITS_FOOTNOTE,
        viewer=found.viewer,
    )
    return HTMLResponse(html)


@router.get("/sensors/{sensor_id}")
def sensor_detail(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and query fields
    conn: Connection,
    now: Now,
    settings: Settings,
    found: PageUser,
    sensor_id: Annotated[int, Path()],
    hours: Annotated[int, Query(ge=1, le=MAX_HOURS)] = 6,
) -> HTMLResponse:
    """One sensor's latest value and its chart over the last ``hours``."""
    series = service.sensor_readings(
        conn,
        sensor_id=sensor_id,
        start=now - timedelta(hours=hours),
        end=now,
        max_points=CHART_POINTS,
        now=now,
    )
    profile = service.sensor_profile(conn, sensor_id=sensor_id)
    body = templates.sensor_body(
        series=series,
        profile=profile,
        hours=hours,
        now=now,
        stale_after=timedelta(minutes=settings.stale_after_minutes),
    )
    sensor = series.sensor
    html = page(
        title=f"{sensor.uid} · {sensor.quantity}",
        body=body,
        now=now,
        refresh_seconds=SENSOR_REFRESH_SECONDS,
        footnote=templates.LIMITS_FOOTNOTE if profile is None else "",
        viewer=found.viewer,
    )
    return HTMLResponse(html)


@router.get("/dead-letters")
def dead_letters(
    conn: Connection,
    now: Now,
    found: PageUser,
    limit: Annotated[int, Query(ge=1, le=service.MAX_DEAD_LETTERS)] = 100,
) -> HTMLResponse:
    """The newest dead letters with their reason and payload."""
    body = templates.dead_letters_body(
        letters=service.list_dead_letters(conn, limit=limit),
        counts=service.count_dead_letters(conn, since=now - timedelta(hours=24)),
        limit=limit,
    )
    return HTMLResponse(page(title="Dead letters", body=body, now=now, viewer=found.viewer))
