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
from erp_core.web.html import Html, csrf_field, page, render
from erp_core.web.i18n import LOCALES
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

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
PATH = "/account/password"

_FORM = (
    "{note}"
    '<form method="post" action="/account/password" class="sign password">{csrf}'
    '<input type="hidden" name="next" value="{next}">'
    '<input type="hidden" name="username" autocomplete="username" value="{username}">'
    '<label>Current password <input name="current_password" type="password" '
    'autocomplete="current-password" required></label>'
    '<label>New password <input name="new_password" type="password" '
    'autocomplete="new-password" minlength="{min}" required></label>'
    '<label>New password again <input name="new_password_again" type="password" '
    'autocomplete="new-password" minlength="{min}" required></label>'
    '<button type="submit">Change password</button></form>'
    "<p>At least {min} characters. Several words in a row are easy to remember and hard "
    "to guess. Not accepted: the most common passwords (also with digits or symbols "
    "added), your user name or name, only digits, keyboard or alphabet runs and repeated "
    "patterns. Nobody else, administrators included, learns the new password.</p>"
)

_NOTES = {
    "required": (
        "warning",
        (
            "Your password was set by an administrator (or, if you sign, handed over by a QA "
            "manager). Choose a password of your own "
            "before you continue."
        ),
    ),
    "changed": ("ok", "Your password was changed. Your other sessions have ended."),
}


def _page(
    found: PageSession, *, now_note: Html, next_url: str, now: datetime, status: int = 200
) -> Response:
    body = render(
        _FORM,
        note=now_note,
        csrf=csrf_field(found.viewer),
        next=safe_next(next_url),
        username=found.user.username,
        min=password_policy.MIN_LENGTH,
    )
    html = page(title="Change password", body=body, now=now, viewer=found.viewer)
    return HTMLResponse(html, status_code=status)


def _note(why: str | None) -> Html:
    if why not in _NOTES:
        return Html("")
    css, text = _NOTES[why]
    return render('<p class="banner {css}">{text}</p>', css=css, text=text)


@router.get(PATH)
def password_page(
    found: PageUserPendingChange,
    now: Now,
    next_url: Annotated[str, Query(alias="next")] = "/",
    why: Annotated[str | None, Query()] = None,
) -> Response:
    """The password form (the only page a user with an administrator's password may see)."""
    note = _note("required" if found.user.must_change_password else why)
    return _page(found, now_note=note, next_url=next_url, now=now)


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

    def refused(text: str, status: int) -> Response:
        note = render('<p class="banner alarm">Password not changed: {t}</p>', t=text)
        return _page(found, now_note=note, next_url=next_url, now=now, status=status)

    if new_password != new_password_again:
        return refused("the two new passwords differ.", 422)
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
            text = "the current password is not correct."
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
