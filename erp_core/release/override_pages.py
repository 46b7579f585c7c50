"""HTML pages of the four-eyes override: the proposal's confirmation step and the approval.

A QA manager opens ``/lots/{id}/override`` from the lot page: every failed rule with its
evidence, each confirmed by name (a checkbox), the written justification and the
password; signing stores a pending proposal (``erp_core.release.overrides``). A second,
different QA manager sees it on the lot page and approves it with the password
(``POST /release/overrides/{id}/approval``), which releases the lot. The proposer
approving their own proposal is refused with that reason; the database refuses it too
(migration 0029). Refusing an override is rejecting the lot (the lot page's signature
form), which voids the proposal.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.auth.errors import AuthError
from erp_core.deps import Connection, Now
from erp_core.lot_history.history import lot_history
from erp_core.release import overrides, service
from erp_core.release.pages import MANAGER, lot_page, wording
from erp_core.release.rules import MIN_JUSTIFICATION, recommend
from erp_core.release.signing_request import Signer
from erp_core.signatures.errors import SignatureError
from erp_core.web.html import Html, page
from erp_core.web.i18n import translations
from erp_core.web.session import PageSession, PageUser, form_user
from erp_core.web.templates import render_template

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
Manager = Annotated[PageSession, Depends(form_user("qa_manager"))]
Confirmed = Annotated[list[str], Form(max_length=20)]


def _override_page(  # noqa: PLR0913 - the request's parts, each explicit
    conn: Connection,
    now: Now,
    found: PageSession,
    lot_id: int,
    *,
    errors: dict[str, str] | None = None,
    justification: str = "",
    confirmed: frozenset[str] = frozenset(),
) -> HTMLResponse:
    history = lot_history(conn, lot_id=lot_id, max_points=2, now=now)
    rec = recommend(service.gather_evidence(conn, lot_id=lot_id, now=now))
    locale = found.viewer.locale
    _ = translations(locale).gettext
    body = render_template(
        "release/override.html",
        locale=locale,
        lot=history.lot,
        rec=rec,
        words=wording(locale),
        viewer=found.viewer,
        manager=found.user.has_any(MANAGER),
        errors=errors or {},
        justification=justification,
        confirmed=confirmed,
        min_justification=MIN_JUSTIFICATION,
    )
    title = _("Propose an override: lot %(number)s") % {"number": history.lot.lot_number}
    status = 409 if errors else 200
    return HTMLResponse(page(title=title, body=Html(body), now=now, viewer=found.viewer), status)


@router.get("/lots/{lot_id}/override")
def override_form(
    conn: Connection, now: Now, found: PageUser, lot_id: Annotated[int, Path(ge=1)]
) -> HTMLResponse:
    """The confirmation step of an override: every failed rule with its evidence."""
    return _override_page(conn, now, found, lot_id)


@router.post("/lots/{lot_id}/override")
def propose(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    signer: Manager,
    signature: Signer,
    lot_id: Annotated[int, Path(ge=1)],
    password: Annotated[str, Form(max_length=1000)],
    justification: Annotated[str, Form(max_length=4000)] = "",
    confirmed: Confirmed = [],  # noqa: B006 - FastAPI copies a default
) -> Response:
    """Sign a proposal to release the lot over its failed rules; back to the lot page."""
    _ = translations(signer.viewer.locale).gettext
    text = justification.strip()

    def again(field: str, message: str) -> HTMLResponse:
        """The confirmation step again, with the error next to ``field``, nothing lost."""
        return _override_page(
            conn,
            now,
            signer,
            lot_id,
            errors={field: message},
            justification=justification,
            confirmed=frozenset(confirmed),
        )

    if len(text) < MIN_JUSTIFICATION:
        message = _("Write a justification of at least %(n)s characters.")
        return again("justification", message % {"n": MIN_JUSTIFICATION})
    try:
        overrides.propose_override(
            conn,
            lot_id=lot_id,
            user=signer.user,
            justification=text,
            confirmed_rules=confirmed,
            signing=signature.signing(password),
        )
    except overrides.ConfirmationRequiredError as err:
        conn.rollback()
        names = ", ".join(wording(signer.viewer.locale).name(r) for r in err.missing)
        message = _("Confirm each failed rule before signing: %(names)s") % {"names": names}
        return again("confirm", message)
    except (AuthError, SignatureError) as err:
        conn.rollback()
        message = _("Not signed: %(why)s") % {"why": err}
        return again("password", message)
    except service.ReleaseRefusedError as err:
        conn.rollback()
        message = _("Not allowed: %(why)s") % {"why": err.reason}
        return again("form", message)
    return RedirectResponse(f"/lots/{lot_id}?signed=proposed", status_code=303)


@router.post("/release/overrides/{override_id}/approval")
def approve(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    signer: Manager,
    signature: Signer,
    override_id: Annotated[int, Path(ge=1)],
    password: Annotated[str, Form(max_length=1000)],
    confirmed: Confirmed = [],  # noqa: B006 - FastAPI copies a default
) -> Response:
    """Approve another QA manager's proposal with the password: the lot is released."""
    lot_id, proposer = overrides.proposer_of(conn, override_id=override_id)
    _ = translations(signer.viewer.locale).gettext
    if proposer == signer.user.username:
        message = _(
            "You proposed this override, so you cannot approve it: "
            "a second, different QA manager approves it (four eyes)."
        )
        return lot_page(conn, now, signer, lot_id, keyring=signature.keyring, error=message)
    try:
        overrides.approve_override(
            conn,
            override_id=override_id,
            user=signer.user,
            confirmed_rules=confirmed,
            signing=signature.signing(password),
        )
    except overrides.ConfirmationRequiredError as err:
        conn.rollback()
        names = ", ".join(wording(signer.viewer.locale).name(r) for r in err.missing)
        message = _("Confirm each failed rule before signing: %(names)s") % {"names": names}
        return lot_page(conn, now, signer, lot_id, keyring=signature.keyring, error=message)
    except (AuthError, SignatureError) as err:
        conn.rollback()
        message = _("Not signed: %(why)s") % {"why": err}
        return lot_page(conn, now, signer, lot_id, keyring=signature.keyring, error=message)
    except service.ReleaseRefusedError as err:
        conn.rollback()
        message = _("Not allowed: %(why)s") % {"why": err.reason}
        return lot_page(conn, now, signer, lot_id, keyring=signature.keyring, error=message)
    return RedirectResponse(f"/lots/{lot_id}?signed=approved", status_code=303)
