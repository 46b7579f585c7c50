"""HTML pages of lots: ``/lots`` and ``/lots/{id}`` with the release panel and its signature form.

Every page needs a signed-in user (``erp_core.web.session``). The signature form signs
as the session's user — it has no user-name field — and asks for the password again at
every signature (21 CFR 11.200(a)(1), see docs/access-and-audit.md); only ``qa`` and
``qa_manager`` may send it, as in the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.audit.keys import Keyring
from erp_core.auth.errors import AuthError
from erp_core.auth.models import SIGNING_ROLES, Role
from erp_core.deps import AttemptLog, Connection, LoginLimits, Now, Records, SigningKey
from erp_core.deviations import service as deviations
from erp_core.lot_history.history import lot_history
from erp_core.lot_history.models import LotHistory
from erp_core.lots.listing import EXPIRY_DAYS, list_lot_rows, parse_expiry
from erp_core.lots.search import parse_search
from erp_core.lots.status import STATUSES
from erp_core.masterdata.service import list_items
from erp_core.release import overrides, service
from erp_core.release.rules import Action, recommend
from erp_core.release.wording import Wording
from erp_core.signatures.errors import SignatureError
from erp_core.web.chart import Chart, ChartBucket, render_chart
from erp_core.web.format import current_zone, format_moment, zone_name
from erp_core.web.html import Html, page
from erp_core.web.i18n import translations
from erp_core.web.paging import PageParam
from erp_core.web.session import PageSession, PageUser, form_user, request_locale
from erp_core.web.templates import render_template
from erp_core.web.words import N_

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
CHART_POINTS = 300
PENDING_SHOWN = 20  # override proposals named in the lots list's banner
DECIDABLE = ("quarantine", "on_hold")
MANAGER = frozenset({Role.QA_MANAGER})
# What the page says after a signature (``?signed=…`` on the redirect back to it).
SIGNED: dict[str, str] = {
    "release": N_("Signed: the lot is released."),
    "reject": N_("Signed: the lot is rejected."),
    "proposed": N_("Signed: your override proposal waits for a second QA manager."),
    "approved": N_("Signed: override approved, the lot is released."),
}
Signer = Annotated[PageSession, Depends(form_user("qa", "qa_manager"))]


@router.get("/lots")
def lots(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and query parameters
    conn: Connection,
    now: Now,
    found: PageUser,
    paging: PageParam,
    q: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    item: Annotated[str, Query(max_length=12)] = "",
    expiry: Annotated[str, Query(max_length=12)] = "",
) -> HTMLResponse:
    """The lots with product, place, deviation flag and status; search and filters.

    Search by lot number, GTIN or a pasted scan; filter by status, item and expiry window
    (expired, or expiring within 30/90/180 days, counted in the site's time zone). The
    form sends ``""`` for "all": any value that is not a choice means all.
    """
    search = q.strip()
    chosen = status if status in STATUSES else None
    items = list_items(conn)
    item_id = int(item) if item.isdigit() and any(i.id == int(item) for i in items) else None
    window = parse_expiry(expiry)
    locale = found.viewer.locale
    body = render_template(
        "release/lots.html",
        locale=locale,
        lots=paging.cut(
            list_lot_rows(
                conn,
                today=now.astimezone(current_zone()).date(),
                status=chosen,
                item_id=item_id,
                expiry=window,
                search=parse_search(search),
                limit=paging.limit,
                offset=paging.offset,
            )
        ),
        search=search,
        status=chosen or "",
        pending=overrides.pending_all(conn, limit=PENDING_SHOWN),
        items=items,
        item=item_id or "",
        expiry=expiry if window is not None else "",
        expiry_days=EXPIRY_DAYS,
    )
    title = translations(locale).gettext("Lots")
    return HTMLResponse(page(title=title, body=Html(body), now=now, viewer=found.viewer))


def lot_page(  # noqa: PLR0913 - the request's parts, each explicit
    conn: Connection,
    now: Now,
    found: PageSession,
    lot_id: int,
    *,
    keyring: Keyring,
    error: str | None = None,
    signed: str | None = None,
) -> HTMLResponse:
    """The lot page (status 409 with ``error`` shown in the release panel).

    A decided lot's headline is its decision (who, when, meaning, justification), not the
    rule table's verdict; the panel offers what the viewer may do now.
    """
    history = lot_history(conn, lot_id=lot_id, max_points=CHART_POINTS, now=now)
    # the release evidence from the same read (its statistics ignore the chart's points)
    rec = recommend(service.evidence_from(conn, history=history, now=now))
    locale = found.viewer.locale
    _ = translations(locale).gettext
    decisions = service.decisions_for(conn, lot_id=lot_id, keyring=keyring)
    lot = history.lot
    decidable = lot.status in DECIDABLE
    body = render_template(
        "release/lot.html",
        locale=locale,
        history=history,
        lot=lot,
        chart=_chart(history, _, locale),
        rec=rec,
        words=wording(locale),
        decided=decisions[0] if decisions and lot.status in ("released", "rejected") else None,
        decidable=decidable,
        decisions=decisions,
        pending=overrides.pending_for(conn, lot_id=lot_id, keyring=keyring) if decidable else [],
        deviations=deviations.deviations_for(conn, lot_id=lot_id),
        viewer=found.viewer,
        may_sign=found.user.has_any(SIGNING_ROLES),
        manager=found.user.has_any(MANAGER),
        error=error,
        signed=SIGNED.get(signed or ""),
    )
    status = 200 if error is None else 409
    title = _("Lot %(number)s") % {"number": lot.lot_number}
    return HTMLResponse(page(title=title, body=Html(body), now=now, viewer=found.viewer), status)


def wording(locale: str) -> Wording:
    """The release rules' words for ``locale``."""
    return Wording(
        gettext=translations(locale).gettext,
        locale=locale,
        moment=lambda t: format_moment(t, locale=locale),
    )


def error_text(request: Request, message: str, why: object) -> str:
    """A refusal in the viewer's language (the reason itself comes from the service)."""
    return translations(request_locale(request)).gettext(message) % {"why": why}


def _chart(history: LotHistory, _: Callable[[str], str], locale: str) -> Html | None:
    """The lot's temperature over its life, with its item's allowed band."""
    s = history.stats
    if s is None:
        return None
    chart = Chart(
        title=_("Lot %(number)s: temperature") % {"number": history.lot.lot_number},
        quantity=_("temperature"),
        unit="°C",
        time_title=_("Time (%(zone)s)") % {"zone": zone_name(at=s.life.end)},
        empty_text=_("No readings in this period"),
        locale=locale,
        start=s.life.start,
        end=s.life.end,
        buckets=[ChartBucket(b.start, b.end, b.min, b.max, b.mean) for b in history.buckets],
        limits=(s.range_low, s.range_high),
        limits_label=_("allowed %(low)s–%(high)s °C (item storage condition)")
        % {"low": f"{s.range_low:g}", "high": f"{s.range_high:g}"},
    )
    return render_chart(chart)


@router.get("/lots/{lot_id}")
def lot_detail(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and query parameters
    conn: Connection,
    now: Now,
    found: PageUser,
    records: Records,
    lot_id: Annotated[int, Path(ge=1)],
    signed: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    """One lot: temperature history with statistics, deviations, release panel.

    ``signed`` (set by the redirect after a signature) shows what was just signed.
    """
    return lot_page(conn, now, found, lot_id, keyring=records.keyring, signed=signed)


@router.post("/lots/{lot_id}/release")
def sign_release(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    request: Request,
    policy: LoginLimits,
    attempts: AttemptLog,
    signer: Signer,
    key: SigningKey,
    records: Records,
    lot_id: Annotated[int, Path(ge=1)],
    action: Annotated[Action, Form()],
    password: Annotated[str, Form()],
    justification: Annotated[str, Form()] = "",
) -> Response:
    """Release or reject as the signed-in user, password re-entered; back to the lot page."""
    try:
        service.record_decision(
            conn,
            lot_id=lot_id,
            user=signer.user,
            action=action,
            password=password,
            justification=justification.strip() or None,
            comment=None,
            clock=lambda: now,
            policy=policy,
            record_attempt=attempts,
            signing_key=key,
            source=request.client.host if request.client else None,
            keyring=records.keyring,
        )
    except (AuthError, SignatureError) as err:
        conn.rollback()
        return lot_page(
            conn,
            now,
            signer,
            lot_id,
            keyring=records.keyring,
            error=error_text(request, N_("Not signed: %(why)s"), err),
        )
    except service.ReleaseRefusedError as err:
        conn.rollback()
        return lot_page(
            conn,
            now,
            signer,
            lot_id,
            keyring=records.keyring,
            error=error_text(request, N_("Not allowed: %(why)s"), err.reason),
        )
    return RedirectResponse(f"/lots/{lot_id}?signed={action.value}", status_code=303)
