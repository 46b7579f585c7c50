"""The password page of the web UI (``/account/password``): users change their own password.

The form asks for the current password (checked through the sign-in gate with the same
limits as a sign-in, channel ``password_change``) and the new one twice; the new one must
pass the policy (``erp_core.auth.password_policy``). The change is audited with the user
as actor and the hash redacted. It ends the user's other web sessions and opens a new
one for this browser, so the person who changed it stays signed in and nobody else does.
A user whose password an administrator set is sent here after sign-in and cannot open
any other page until the change is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.audit.service import set_actor
from erp_core.auth import password_policy, web_sessions
from erp_core.auth import service as auth_service
from erp_core.auth import session as web_session
from erp_core.auth.errors import AuthError, WeakPasswordError
from erp_core.auth.models import User
from erp_core.deps import Connection, DbConnection, Gate, Now, Settings, client_source
from erp_core.web.html import Html, page
from erp_core.web.i18n import LOCALES, translations
from erp_core.web.session import (
    PageSession,
    PageUserPendingChange,
    brief_page_session,
    check_csrf,
    form_user,
    idle_timeout,
    safe_next,
    set_session_cookie,
)
from erp_core.web.signin import refusal_page
from erp_core.web.templates import render_template

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
PATH = "/account/password"


@dataclass(frozen=True, slots=True)
class Note:
    """A banner above the form: its CSS class and its (translated) sentence."""

    css: str
    text: str


def _note(why: str | None, locale: str) -> Note | None:
    _ = translations(locale).gettext
    notes = {
        "required": Note(
            "warning",
            _(
                "Your password was set by an administrator (or, if you sign, handed over by a "
                "QA manager). Choose a password of your own before you continue."
            ),
        ),
        "changed": Note("ok", _("Your password was changed. Your other sessions have ended.")),
    }
    return notes.get(why or "")


def _page(
    found: PageSession, *, note: Note | None, next_url: str, now: datetime, status: int = 200
) -> Response:
    locale = found.viewer.locale
    body = render_template(
        "web/password.html",
        locale=locale,
        note=note,
        viewer=found.viewer,
        next=safe_next(next_url),
        min=password_policy.MIN_LENGTH,
    )
    title = translations(locale).gettext("Change password")
    html = page(title=title, body=Html(body), now=now, viewer=found.viewer)
    return HTMLResponse(html, status_code=status)


@router.get(PATH)
def password_page(
    found: PageUserPendingChange,
    now: Now,
    next_url: Annotated[str, Query(alias="next")] = "/",
    why: Annotated[str | None, Query()] = None,
) -> Response:
    """The password form (the only page a user with an administrator's password may see)."""
    note = _note("required" if found.user.must_change_password else why, found.viewer.locale)
    return _page(found, note=note, next_url=next_url, now=now)


@router.post(PATH)
async def change_password(  # noqa: PLR0913 - FastAPI dependencies and form fields
    *,
    request: Request,
    found: Annotated[PageSession, Depends(brief_page_session)],
    gate: Gate,
    settings: Settings,
    now: Now,
    current_password: Annotated[str, Form()],
    new_password: Annotated[str, Form()],
    new_password_again: Annotated[str, Form()],
    next_url: Annotated[str, Form(alias="next")] = "/",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """Check the current password, store the new one, end the other sessions."""
    check_csrf(request, found, csrf_token)

    _ = translations(found.viewer.locale).gettext

    def refused(text: str, status: int) -> Response:
        note = Note("alarm", _("Password not changed: %(why)s") % {"why": text})
        return _page(found, note=note, next_url=next_url, now=now, status=status)

    if new_password != new_password_again:
        return refused(_("the two new passwords differ."), 422)
    session = web_session.new_session(username=found.user.username, now=now)

    def restart_sessions(conn: DbConnection, user: User) -> None:
        web_sessions.end_all(conn, user=user, at=now, reason="password_changed")
        web_sessions.record_start(conn, session=session, user=user, source=client_source(request))

    try:
        await gate.change_password(
            username=found.user.username,
            current_password=current_password,
            new_password=new_password,
            source=client_source(request),
            now=now,
            on_stored=restart_sessions,
        )
    except WeakPasswordError as err:
        return refused(f"{err.reason}.", 422)
    except AuthError as err:
        status, text = refusal_page(err)
        if status == 401:
            text = _("the current password is not correct.")
        return refused(text, status)
    cookie = web_session.renew(
        session, secret=settings.jwt_key(), now=now, idle=idle_timeout(settings)
    )
    target = safe_next(next_url)
    if target in {"/", PATH}:
        target = f"{PATH}?why=changed"
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, cookie, settings, request)
    return response


@router.post("/account/language")
def set_language(
    conn: Connection,
    found: Annotated[PageSession, Depends(form_user())],
    locale: Annotated[str, Form(max_length=10)] = "",
    next_url: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    """Keep the user's language (``""``: as the browser asks); back to the page they were on."""
    chosen = locale if locale in LOCALES else None
    set_actor(conn, user=found.user.username, reason="language of the pages chosen by the user")
    auth_service.set_locale(conn, user_id=found.user.id, locale=chosen)
    return RedirectResponse(safe_next(next_url), status_code=303)
