"""The alert pages: the inbox (``/alerts``) and one alert (``/alerts/{id}``, the e-mail's link).

Any signed-in user reads them. ``qa`` and ``qa_manager`` acknowledge an alert (from the
inbox or its page) and disposition it on its page only — one place to sign: a signed
close (password again, the meaning affirmed, a disposition chosen with none preselected,
a reason) through ``signed_close.close_signed``, the service ``/api/alerts/{id}/close``
uses, so the disposition reaches the exposed lots' deviations by the same rules. Every
form carries the session's CSRF token; a refusal is shown next to the field it concerns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coldchain.alert_states import Disposition
from erp_core.alerts import facts, service, signed_close
from erp_core.alerts.models import AlertDetail
from erp_core.alerts.timeline import timeline
from erp_core.audit.keys import Keyring
from erp_core.auth.errors import AuthError
from erp_core.auth.models import Role
from erp_core.deps import AttemptLog, Connection, LoginLimits, Now, Records, SigningKey
from erp_core.errors import InvalidArgumentError
from erp_core.monitoring.service import sensor_profile, sensor_readings
from erp_core.signatures.errors import SignatureError
from erp_core.web.chart import Chart, ChartBucket, render_chart
from erp_core.web.format import zone_name
from erp_core.web.html import Html, page
from erp_core.web.i18n import translations
from erp_core.web.paging import PageParam
from erp_core.web.session import PageSession, PageUser, form_user
from erp_core.web.templates import render_template
from telemetry.units import display_unit

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
REFRESH_SECONDS = 30
CHART_POINTS = 300
CHART_MARGIN = timedelta(minutes=30)  # shown before and after the episode, at least
QaForm = Annotated[PageSession, Depends(form_user("qa", "qa_manager"))]
AlertId = Annotated[int, Path(ge=1)]
Field = Annotated[str, Form()]
MAX_COMMENT = 2000  # as the API's AckBody and CloseBody
ACTING_ROLES = frozenset({Role.QA, Role.QA_MANAGER})  # as /api/alerts/{id}/ack and /close
Errors = Mapping[str, str]


def _may_act(found: PageSession) -> bool:
    return found.user.has_any(ACTING_ROLES)


@router.get("/alerts")
def inbox(conn: Connection, now: Now, found: PageUser, paging: PageParam) -> Response:
    """Every alert, open first (oldest on top), then acknowledged, then the latest closed."""
    locale = found.viewer.locale
    waiting, acknowledged = service.count_waiting(conn)
    body = render_template(
        "alerts/inbox.html",
        locale=locale,
        alerts=paging.cut(service.inbox(conn, limit=paging.limit, offset=paging.offset)),
        waiting=waiting,
        acknowledged=acknowledged,
        may_act=_may_act(found),
        viewer=found.viewer,
    )
    html = page(
        title=translations(locale).gettext("Alerts"),
        body=Html(body),
        now=now,
        refresh_seconds=REFRESH_SECONDS,
        viewer=found.viewer,
    )
    return HTMLResponse(html)


def _window(alert: AlertDetail, now: datetime) -> tuple[datetime, datetime]:
    """The time the chart shows: the episode with a margin before and after, up to now."""
    end = alert.ended_at or now
    margin = max(CHART_MARGIN, (end - alert.started_at) / 2)
    start, stop = alert.started_at - margin, min(end + margin, now)
    return (start, stop) if stop > start else (stop - 2 * CHART_MARGIN, stop)


def _chart(
    conn: Connection, alert: AlertDetail, known: facts.AlertFacts, now: datetime, locale: str
) -> Html | None:
    """The sensor around the episode, with the band the alert was judged against."""
    if alert.sensor_id is None:
        return None
    _ = translations(locale).gettext
    start, end = _window(alert, now)
    series = sensor_readings(
        conn, sensor_id=alert.sensor_id, start=start, end=end, max_points=CHART_POINTS, now=now
    )
    profile = sensor_profile(conn, sensor_id=alert.sensor_id)
    limits = None
    if known.low is not None and known.high is not None:
        limits = (known.low, known.high)
    elif profile is not None:
        limits = (profile.low, profile.high)
    same = profile is not None and known.profile in {None, profile.name}
    warn = None
    if same and profile is not None and profile.pre_alarm_band > 0:
        warn = (profile.warn_low, profile.warn_high)
    unit = display_unit(series.sensor.unit) if series.sensor.unit else ""
    label = ""
    if limits is not None:
        label = _("allowed %(low)s–%(high)s %(unit)s") % {
            "low": f"{limits[0]:g}",
            "high": f"{limits[1]:g}",
            "unit": unit,
        }
    chart = Chart(
        title=_("%(sensor)s around alert #%(id)s") % {"sensor": series.sensor.uid, "id": alert.id},
        quantity=_(series.sensor.quantity),
        unit=unit,
        time_title=_("Time (%(zone)s)") % {"zone": zone_name(at=end)},
        empty_text=_("No readings in this period"),
        locale=locale,
        start=start,
        end=end,
        buckets=[ChartBucket(b.start, b.end, b.min, b.max, b.mean) for b in series.buckets],
        limits=limits,
        limits_label=label,
        warn=warn,
    )
    return render_chart(chart)


def _alert_page(  # noqa: PLR0913 - the request's parts, each explicit
    conn: Connection,
    now: datetime,
    found: PageSession,
    alert_id: int,
    *,
    keyring: Keyring,
    errors: Errors | None = None,
    sent: Mapping[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    alert = service.get_alert(conn, alert_id=alert_id)
    known = facts.alert_facts(conn, alert_id=alert_id)
    locale = found.viewer.locale
    lots = facts.exposed_lots(conn, alert_id=alert_id)
    body = render_template(
        "alerts/alert.html",
        locale=locale,
        a=alert,
        facts=known,
        unit=display_unit(known.unit) if known.unit else "",
        chart=_chart(conn, alert, known, now, locale),
        lots=lots,
        open_deviations=any(d["status"] == "open" for x in lots for d in x["deviations"]),
        steps=timeline(alert.events, facts.notifications(conn, alert_id=alert_id)),
        signatures=facts.close_signatures(
            conn,
            alert_id=alert_id,
            disposition=alert.disposition,
            comment=alert.close_comment,
            closed_at=alert.closed_at,
            keyring=keyring,
        ),
        dispositions=[d.value for d in Disposition],
        meaning=signed_close.MEANING,
        may_act=_may_act(found),
        viewer=found.viewer,
        errors=errors or {},
        sent=sent or {},
    )
    title = translations(locale).gettext("Alert #%(id)s") % {"id": alert.id}
    html = page(title=title, body=Html(body), now=now, viewer=found.viewer)
    return HTMLResponse(html, status_code=status)


@router.get("/alerts/{alert_id}")
def alert_page(
    conn: Connection, now: Now, found: PageUser, records: Records, alert_id: AlertId
) -> Response:
    """One alert: what happened, its lots, its timeline, the chart, and its forms."""
    return _alert_page(conn, now, found, alert_id, keyring=records.keyring)


def _back(next_url: str, alert_id: int) -> str:
    """Where an acknowledgement returns: the inbox or the alert's page, nowhere else."""
    page_url = f"/alerts/{alert_id}"
    return next_url if next_url in {"/alerts", page_url} else page_url


@router.post("/alerts/{alert_id}/ack")
def acknowledge(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    found: QaForm,
    records: Records,
    alert_id: AlertId,
    comment: Field = "",
    next: Field = "",  # noqa: A002 - the form field's name
) -> Response:
    """Acknowledge an open alert as the signed-in QA user; back to where the form was."""
    _ = translations(found.viewer.locale).gettext
    sent = {"ack_comment": comment}
    if not comment.strip() or len(comment) > MAX_COMMENT:
        errors = {"ack_comment": _("Say what you are doing about it (at most %(n)s characters).")
                  % {"n": MAX_COMMENT}}  # fmt: skip
        return _alert_page(
            conn, now, found, alert_id, keyring=records.keyring, errors=errors, sent=sent,
            status=422,
        )  # fmt: skip
    try:
        service.acknowledge(
            conn, alert_id=alert_id, user=found.user.username, comment=comment, now=now
        )
    except (service.AlertTransitionError, InvalidArgumentError) as err:
        conn.rollback()
        errors = {"ack": _("Not acknowledged: %(why)s") % {"why": err}}
        return _alert_page(
            conn, now, found, alert_id, keyring=records.keyring, errors=errors, sent=sent,
            status=409,
        )  # fmt: skip
    return RedirectResponse(_back(next, alert_id), status_code=303)


def _form_errors(
    _: Callable[[str], str], *, disposition: str, comment: str, meaning: str, password: str
) -> dict[str, str]:
    """What is missing from a close form, by field, before anything is checked or signed."""
    errors = {}
    if disposition not in {d.value for d in Disposition}:
        errors["disposition"] = _("Choose a disposition.")
    if not comment.strip():
        errors["comment"] = _("Give the reason for the disposition.")
    elif len(comment) > MAX_COMMENT:
        errors["comment"] = _("At most %(n)s characters.") % {"n": MAX_COMMENT}
    if meaning != signed_close.MEANING:
        errors["meaning"] = _("Confirm the meaning of your signature.")
    if not password:
        errors["password"] = _("Enter your password: it is your signature.")
    return errors


@router.post("/alerts/{alert_id}/close")
def close(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    found: QaForm,
    policy: LoginLimits,
    attempts: AttemptLog,
    key: SigningKey,
    records: Records,
    alert_id: AlertId,
    disposition: Field = "",
    comment: Field = "",
    meaning: Field = "",
    password: Field = "",
    lot_disposition: Field = "",
) -> Response:
    """Disposition an acknowledged, ended alert: signed; back to its page."""
    _ = translations(found.viewer.locale).gettext
    sent = {"disposition": disposition, "comment": comment, "lot_disposition": lot_disposition}

    def again(errors: Errors, status: int) -> HTMLResponse:
        return _alert_page(
            conn, now, found, alert_id, keyring=records.keyring, errors=errors, sent=sent,
            status=status,
        )  # fmt: skip

    errors = _form_errors(
        _, disposition=disposition, comment=comment, meaning=meaning, password=password
    )
    if errors:
        return again(errors, 422)
    chosen = signed_close.chosen_for_lots(lot_disposition)
    try:
        signed_close.close_signed(
            conn,
            alert_id=alert_id,
            user=found.user,
            password=password,
            disposition=Disposition(disposition),
            chosen=chosen,
            comment=comment.strip(),
            clock=lambda: now,
            policy=policy,
            record_attempt=attempts,
            signing_key=key,
            keyring=records.keyring,
        )
    except service.AlertTransitionError as err:
        conn.rollback()
        return again({"close": _("Not closed: %(why)s") % {"why": err.reason}}, 409)
    except InvalidArgumentError as err:
        conn.rollback()
        field = err.name if err.name in {"comment", "lot_disposition"} else "close"
        return again({field: _("Not closed: %(why)s") % {"why": err.reason}}, 422)
    except (AuthError, SignatureError) as err:
        conn.rollback()
        return again({"password": _("Not signed: %(why)s") % {"why": err}}, 403)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)
