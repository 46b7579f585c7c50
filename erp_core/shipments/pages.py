"""HTML pages of shipments: ``/shipments`` (in transit first) and ``/shipments/{id}``.

Any signed-in user reads them. The depart and arrive forms do what
``POST /api/shipments/{id}/depart`` and ``/arrive`` do, with the same service functions
and the same role (``warehouse``), as the signed-in user and behind the session's CSRF
token. A refused step shows the page again with the reason next to the time field (a
bad time) or above the form (a step out of order, a movement the lot's history refuses).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.audit.service import set_actor
from erp_core.auth.models import Role
from erp_core.deps import Connection, Now
from erp_core.errors import ErpError, InvalidArgumentError
from erp_core.monitoring import service as monitoring
from erp_core.monitoring.models import SensorSummary
from erp_core.shipments import board
from erp_core.shipments import service as shipments
from erp_core.web.chart import Chart, ChartBucket, render_chart
from erp_core.web.format import current_zone, zone_name
from erp_core.web.html import Html, page
from erp_core.web.i18n import translations
from erp_core.web.paging import PageParam
from erp_core.web.session import PageSession, PageUser, form_user
from erp_core.web.templates import render_template
from telemetry.units import display_unit

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
CHART_POINTS = 300
WRITE_ROLES = frozenset({Role.WAREHOUSE})  # as the API's depart and arrive
Dispatcher = Annotated[PageSession, Depends(form_user(*WRITE_ROLES))]
ShipmentId = Annotated[int, Path(ge=1)]
Step = Literal["depart", "arrive"]
_MIN_SPAN = timedelta(minutes=1)  # a chart needs a span, even just after departure


@router.get("/shipments")
def shipments_list(conn: Connection, now: Now, found: PageUser, paging: PageParam) -> HTMLResponse:
    """Shipments in transit first, then planned, then arrived."""
    locale = found.viewer.locale
    rows = board.list_page(conn, now=now, limit=paging.limit, offset=paging.offset)
    body = render_template("shipments/list.html", locale=locale, shipments=paging.cut(rows))
    title = translations(locale).gettext("Shipments")
    return HTMLResponse(page(title=title, body=Html(body), now=now, viewer=found.viewer))


def _detail(  # noqa: PLR0913 - the request's parts, each explicit
    conn: Connection,
    now: datetime,
    found: PageSession,
    shipment_id: int,
    *,
    step: Step | None = None,
    field_error: str | None = None,
    error: str | None = None,
    typed: str = "",
) -> HTMLResponse:
    view = board.shipment_view(conn, shipment_id=shipment_id, now=now)
    locale = found.viewer.locale
    _ = translations(locale).gettext
    body = render_template(
        "shipments/detail.html",
        locale=locale,
        v=view,
        s=view.shipment,
        loggers=_loggers(conn, view, now, locale),
        zone=zone_name(at=now),
        viewer=found.viewer,
        unit=display_unit,
        may_write=found.user.has_any(WRITE_ROLES),
        step=step,
        field_error=field_error,
        error=error,
        typed=typed,
    )
    status = 200 if error is None and field_error is None else 409 if error else 422
    title = _("Shipment %(reference)s") % {"reference": view.shipment.reference}
    return HTMLResponse(page(title=title, body=Html(body), now=now, viewer=found.viewer), status)


def _loggers(
    conn: Connection, view: board.ShipmentView, now: datetime, locale: str
) -> list[tuple[SensorSummary, Html | None]]:
    """Each logger with its chart over the trip (none before departure), in its profile's band."""
    _ = translations(locale).gettext
    s = view.shipment
    out: list[tuple[SensorSummary, Html | None]] = []
    for number, sensor_id in enumerate(s.logger_sensor_ids):
        if s.departed_at is None:
            out.append((monitoring.get_sensor(conn, sensor_id=sensor_id, now=now), None))
            continue
        end = s.arrived_at or now
        series = monitoring.sensor_readings(
            conn,
            sensor_id=sensor_id,
            start=s.departed_at,
            end=max(end, s.departed_at + _MIN_SPAN),
            max_points=CHART_POINTS,
            now=now,
        )
        profile = monitoring.sensor_profile(conn, sensor_id=sensor_id)
        unit = display_unit(series.sensor.unit)
        limits = None if profile is None else (profile.low, profile.high)
        warn = None
        if profile is not None and profile.pre_alarm_band > 0:
            warn = (profile.warn_low, profile.warn_high)
        chart = Chart(
            title=_("Logger %(uid)s during the trip") % {"uid": series.sensor.uid},
            quantity=_(series.sensor.quantity),
            unit=unit,
            time_title=_("Time (%(zone)s)") % {"zone": zone_name(at=series.end)},
            empty_text=_("No readings in this period"),
            locale=locale,
            start=series.start,
            end=series.end,
            buckets=[ChartBucket(b.start, b.end, b.min, b.max, b.mean) for b in series.buckets],
            limits=limits,
            limits_label=""
            if profile is None
            else _("allowed %(low)s–%(high)s %(unit)s (profile %(profile)s)")
            % {
                "low": f"{profile.low:g}",
                "high": f"{profile.high:g}",
                "unit": unit,
                "profile": profile.name,
            },
            warn=warn,
            key=f"logger-{number}",
        )
        out.append((series.sensor, render_chart(chart)))
    return out


@router.get("/shipments/{shipment_id}")
def shipment_detail(
    conn: Connection, now: Now, found: PageUser, shipment_id: ShipmentId
) -> HTMLResponse:
    """One shipment: legs, lots aboard, loggers and their charts, alerts, arrival."""
    return _detail(conn, now, found, shipment_id)


def _parse_time(typed: str, now: datetime) -> datetime | None:
    """The form's time (``datetime-local``, in the site's zone); empty: now; None: unreadable."""
    text = typed.strip()
    if not text:
        return now
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=current_zone())
    try:
        moment.astimezone(UTC)  # year 1 east of Greenwich is before datetime.min in UTC
    except OverflowError:
        return None
    return moment


def _skipped(moment: datetime) -> bool:
    """A wall-clock time the site's clocks jumped over (spring forward): it never happened.

    ``replace(tzinfo=…)`` would read it with the offset before the jump (02:30 becomes
    03:30), so a typo would be recorded as another time than the one typed.
    """
    back = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return back.replace(tzinfo=None) != moment.replace(tzinfo=None)


def _step(  # noqa: PLR0913 - the request's parts, each explicit
    conn: Connection,
    now: datetime,
    user: PageSession,
    shipment_id: int,
    *,
    step: Step,
    typed: str,
) -> Response:
    _ = translations(user.viewer.locale).gettext
    when = _parse_time(typed, now)
    if when is None:
        return _detail(
            conn,
            now,
            user,
            shipment_id,
            step=step,
            typed=typed,
            field_error=_("Not a date and time: use the picker, or YYYY-MM-DD HH:MM."),
        )
    if _skipped(when):
        return _detail(
            conn,
            now,
            user,
            shipment_id,
            step=step,
            typed=typed,
            field_error=_("This time does not exist in %(zone)s: the clocks went forward then.")
            % {"zone": zone_name(at=when)},
        )
    action = shipments.depart if step == "depart" else shipments.arrive
    try:
        set_actor(conn, user=user.user.username)
        action(conn, shipment_id=shipment_id, time=when, now=now)
    except InvalidArgumentError as err:
        conn.rollback()
        return _detail(conn, now, user, shipment_id, step=step, typed=typed, field_error=err.reason)
    except ErpError as err:  # out of order, or a move the lots' history refuses
        conn.rollback()
        why = _("Not done: %(why)s") % {"why": err}
        return _detail(conn, now, user, shipment_id, step=step, typed=typed, error=why)
    return RedirectResponse(f"/shipments/{shipment_id}", status_code=303)


@router.post("/shipments/{shipment_id}/depart")
def depart(
    conn: Connection,
    now: Now,
    user: Dispatcher,
    shipment_id: ShipmentId,
    time: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """The truck leaves now (or at the time given): lots onto the truck, loggers with them."""
    return _step(conn, now, user, shipment_id, step="depart", typed=time)


@router.post("/shipments/{shipment_id}/arrive")
def arrive(
    conn: Connection,
    now: Now,
    user: Dispatcher,
    shipment_id: ShipmentId,
    time: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """The truck arrives: lots to the destination, the loggers' truck assignments end."""
    return _step(conn, now, user, shipment_id, step="arrive", typed=time)
