"""HTML pages of the monitoring domain (``/``, ``/sensors/{id}``, ``/dead-letters``).

Any signed-in user may read them (``PageUser``); without a session they redirect to sign-in.
The bodies are the templates ``monitoring/overview.html``, ``sensor.html`` and
``dead_letters.html``; the judging (each sensor against its own alarm profile) is
``erp_core.monitoring.overview``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from coldchain.profiles import AlarmProfile
from erp_core.deps import Connection, Now, Settings
from erp_core.monitoring import service
from erp_core.monitoring.models import ReadingSeries
from erp_core.monitoring.overview import build_overview
from erp_core.monitoring.status import freshness_verdict, value_verdict
from erp_core.web.chart import Chart, ChartBucket, render_chart
from erp_core.web.format import format_span, zone_name
from erp_core.web.html import Html, page
from erp_core.web.i18n import translations
from erp_core.web.paging import PageParam
from erp_core.web.session import PageUser
from erp_core.web.templates import render_template
from erp_core.web.words import word_for
from telemetry.units import display_unit

OVERVIEW_REFRESH_SECONDS = 60
SENSOR_REFRESH_SECONDS = 120
CHART_POINTS = 300  # about 3 px of chart width per bucket
MAX_HOURS = 24 * 31
RANGE_CHOICES_HOURS = (1, 6, 24, 72, 168)
# The default window of a sensor's chart never shrinks below this around its readings.
MIN_WINDOW = timedelta(minutes=10)

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


@router.get("/")
def overview(conn: Connection, now: Now, settings: Settings, found: PageUser) -> HTMLResponse:
    """Attention banner, gateways, sensors (each against its own profile), dead letters."""
    view = build_overview(
        sensors=service.list_sensors(conn, now=now),
        profiles=service.sensor_profiles(conn),
        gateways=service.list_gateways(conn),
        matters=service.open_matters(conn),
        now=now,
        stale_after=timedelta(minutes=settings.stale_after_minutes),
    )
    locale = found.viewer.locale
    body = render_template(
        "monitoring/overview.html",
        locale=locale,
        view=view,
        dead_letters=service.count_dead_letters(conn, since=now - timedelta(hours=24)),
        now=now,
    )
    html = page(
        title=translations(locale).gettext("Cold-chain overview"),
        body=Html(body),
        now=now,
        refresh_seconds=OVERVIEW_REFRESH_SECONDS,
        viewer=found.viewer,
    )
    return HTMLResponse(html)


def default_window(first: datetime | None, *, now: datetime) -> timedelta:
    """The chart window that fits the data: from the oldest reading of the last week to now.

    The readings' span and a twentieth more, at least ``MIN_WINDOW`` (a sensor that started
    twelve minutes ago gets a chart of a quarter of an hour, not one dot in six hours), at
    most a week. No reading in the last week: 24 h (the chart says there are none).
    """
    if first is None:
        return timedelta(hours=24)
    span = max(now - first, MIN_WINDOW)
    return min(span + span / 20, timedelta(hours=RANGE_CHOICES_HOURS[-1]))


@router.get("/sensors/{sensor_id}")
def sensor_detail(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and query fields
    conn: Connection,
    now: Now,
    settings: Settings,
    found: PageUser,
    sensor_id: Annotated[int, Path()],
    hours: Annotated[int | None, Query(ge=1, le=MAX_HOURS)] = None,
) -> HTMLResponse:
    """One sensor's latest value and its chart over the last ``hours`` (default: its data)."""
    if hours is None:
        since = now - timedelta(hours=RANGE_CHOICES_HOURS[-1])
        window = default_window(
            service.first_reading(conn, sensor_id=sensor_id, since=since), now=now
        )
    else:
        window = timedelta(hours=hours)
    series = service.sensor_readings(
        conn,
        sensor_id=sensor_id,
        start=now - window,
        end=now,
        max_points=CHART_POINTS,
        now=now,
    )
    profile = service.sensor_profile(conn, sensor_id=sensor_id)
    locale = found.viewer.locale
    _ = translations(locale).gettext
    s = series.sensor
    body = render_template(
        "monitoring/sensor.html",
        locale=locale,
        series=series,
        sensor=s,
        profile=profile,
        unit=display_unit(s.unit),
        value=value_verdict(value=s.latest_value, profile=profile),
        fresh=freshness_verdict(
            latest=s.latest_time,
            now=now,
            stale_after=timedelta(minutes=settings.stale_after_minutes),
        ),
        chart=_chart(series, profile=profile, gettext=_, locale=locale),
        hours=hours,
        window=window,
        choices=RANGE_CHOICES_HOURS,
        width=format_span(timedelta(seconds=series.bucket_seconds)),
        stats=_stats(series),
        now=now,
    )
    title = f"{s.uid} · {_(word_for(s.quantity))}"
    html = page(
        title=title,
        body=Html(body),
        now=now,
        refresh_seconds=SENSOR_REFRESH_SECONDS,
        viewer=found.viewer,
    )
    return HTMLResponse(html)


def _chart(
    series: ReadingSeries,
    *,
    profile: AlarmProfile | None,
    gettext: Callable[[str], str],
    locale: str,
) -> Html:
    """The sensor's chart with its alarm profile's band and pre-alarm strips."""
    s = series.sensor
    unit = display_unit(s.unit)
    limits = None if profile is None else (profile.low, profile.high)
    warn = (
        (profile.warn_low, profile.warn_high)
        if profile is not None and profile.pre_alarm_band > 0
        else None
    )
    label = ""
    if profile is not None:
        label = gettext("allowed %(low)s–%(high)s %(unit)s (alarm profile %(name)s)") % {
            "low": f"{profile.low:g}",
            "high": f"{profile.high:g}",
            "unit": unit,
            "name": profile.name,
        }
    chart = Chart(
        title=f"{s.uid} {gettext(word_for(s.quantity))}",
        quantity=gettext(word_for(s.quantity)),
        unit=unit,
        start=series.start,
        end=series.end,
        buckets=[ChartBucket(b.start, b.end, b.min, b.max, b.mean) for b in series.buckets],
        limits=limits,
        limits_label=label,
        warn=warn,
        time_title=gettext("Time (%(zone)s)") % {"zone": zone_name(at=series.end)},
        empty_text=gettext("No readings in this period"),
        locale=locale,
    )
    return render_chart(chart)


def _stats(series: ReadingSeries) -> dict[str, float] | None:
    """Count, lowest, highest and mean of the shown readings; None without readings."""
    buckets = series.buckets
    count = sum(b.count for b in buckets)
    if not count:
        return None
    return {
        "count": count,
        "low": min(b.min for b in buckets),
        "high": max(b.max for b in buckets),
        "mean": sum(b.mean * b.count for b in buckets) / count,
    }


@router.get("/dead-letters")
def dead_letters(conn: Connection, now: Now, found: PageUser, paging: PageParam) -> HTMLResponse:
    """The dead letters, newest first, a page at a time, with reason and payload."""
    locale = found.viewer.locale
    body = render_template(
        "monitoring/dead_letters.html",
        locale=locale,
        letters=paging.cut(
            service.list_dead_letters(conn, limit=paging.limit, offset=paging.offset)
        ),
        counts=service.count_dead_letters(conn, since=now - timedelta(hours=24)),
    )
    title = translations(locale).gettext("Dead letters")
    return HTMLResponse(page(title=title, body=Html(body), now=now, viewer=found.viewer))
