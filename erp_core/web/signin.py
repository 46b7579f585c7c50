"""Sign-in and sign-out pages of the web UI (``/sign-in``, ``/sign-out``).

Sign-in checks the password exactly as the API's token endpoint does
(``auth.service.authenticate``, channel ``login``), so the failed-login limit and the
attempt log are shared, then opens a web session (``erp_core.auth.session``) and records
it (``erp_core.auth.web_sessions``); sign-out records its end, so the cookie dies with it. The form
is protected against login CSRF by a nonce cookie and an HMAC of it in a hidden field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.auth import service as auth_service
from erp_core.auth import session as web_session
from erp_core.auth import web_sessions
from erp_core.auth.errors import (
    AccountDisabledError,
    AccountLockedError,
    InvalidCredentialsError,
    InvalidTokenError,
)
from erp_core.auth.models import Channel
from erp_core.deps import AttemptLog, Connection, LoginLimits, Now, Settings
from erp_core.settings import ApiSettings
from erp_core.web.format import format_time
from erp_core.web.html import Html, page, render
from erp_core.web.session import (
    SESSION_COOKIE,
    PageSession,
    clear_session_cookie,
    form_user,
    idle_timeout,
    safe_next,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
SIGNIN_COOKIE = "coldtrace_signin"

_FORM = (
    "{note}"
    '<form method="post" action="/sign-in" class="sign signin">'
    '<input type="hidden" name="csrf_token" value="{token}">'
    '<input type="hidden" name="next" value="{next}">'
    '<label>User name <input name="username" autocomplete="username" required autofocus '
    'value="{username}"></label>'
    '<label>Password <input name="password" type="password" autocomplete="current-password" '
    "required></label>"
    '<button type="submit">Sign in</button></form>'
    "<p>Sessions end after {idle} min without activity. Sign out when you leave the "
    "workstation. Every sign-in is recorded.</p>"
)


def _note(why: str | None, settings: ApiSettings) -> Html:
    notes = {
        "expired": (
            "warning",
            (
                f"Your session ended after {settings.web_idle_minutes:g} min without "
                "activity. Sign in again."
            ),
        ),
        "signed_out": ("ok", "You have signed out."),
        "disabled": ("alarm", "Your account is unknown or disabled."),
    }
    if why not in notes:
        return Html("")
    css, text = notes[why]
    return render('<p class="banner {css}">{text}</p>', css=css, text=text)


def _form(  # noqa: PLR0913 - every part of the form is explicit
    *,
    settings: Settings,
    now: Now,
    next_url: str,
    note: Html,
    username: str = "",
    status: int = 200,
) -> Response:
    nonce = web_session.new_nonce()
    token = web_session.signin_token(nonce, secret=settings.jwt_secret.get_secret_value())
    body = render(
        _FORM,
        note=note,
        token=token,
        next=safe_next(next_url),
        username=username,
        idle=f"{settings.web_idle_minutes:g}",
    )
    response = HTMLResponse(page(title="Sign in", body=body, now=now), status_code=status)
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=settings.web_cookie_secure,
        path="/sign-in",
    )
    return response


@router.get("/sign-in")
def sign_in_page(  # noqa: PLR0913 - FastAPI dependencies and query fields
    *,
    request: Request,
    conn: Connection,
    settings: Settings,
    now: Now,
    next_url: Annotated[str, Query(alias="next")] = "/",
    why: Annotated[str | None, Query()] = None,
) -> Response:
    """The sign-in form; a browser with a live session goes straight on to ``next``."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is not None:
        try:
            found = web_session.read_session(
                cookie, secret=settings.jwt_secret.get_secret_value(), now=now
            )
        except InvalidTokenError:
            pass  # expired or forged: show the form
        else:
            user = auth_service.find_user(conn, username=found.username)
            if user is not None and user.active and web_sessions.is_live(conn, session=found):
                return RedirectResponse(safe_next(next_url), status_code=303)
    return _form(settings=settings, now=now, next_url=next_url, note=_note(why, settings))


@router.post("/sign-in")
def sign_in(  # noqa: PLR0913 - FastAPI dependencies and form fields
    *,
    request: Request,
    conn: Connection,
    settings: Settings,
    now: Now,
    policy: LoginLimits,
    record: AttemptLog,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next_url: Annotated[str, Form(alias="next")] = "/",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """Check the password (with the API's failed-login limit) and open a session."""
    secret = settings.jwt_secret.get_secret_value()
    nonce = request.cookies.get(SIGNIN_COOKIE)
    expected = None if nonce is None else web_session.signin_token(nonce, secret=secret)
    if expected is None or not web_session.tokens_match(expected, csrf_token):
        note = render(
            '<p class="banner alarm">The sign-in form had expired or did not come from this '
            "site (CSRF check failed). Nothing was checked; please sign in again.</p>"
        )
        return _form(settings=settings, now=now, next_url=next_url, note=note, status=403)
    source = request.client.host if request.client else None
    try:
        user = auth_service.authenticate(
            conn,
            username=username,
            password=password,
            source=source,
            channel=Channel.LOGIN,
            now=now,
            policy=policy,
            record=record,
        )
    except AccountLockedError as err:
        text = (
            f"Account {err.username} is locked after too many failed attempts until "
            f"{format_time(err.until)} UTC. Ask an administrator if this was not you."
        )
        note = render('<p class="banner alarm">{t}</p>', t=text)
        return _form(settings=settings, now=now, next_url=next_url, note=note, status=429)
    except (InvalidCredentialsError, AccountDisabledError) as err:
        note = render('<p class="banner alarm">Not signed in: {e}.</p>', e=str(err))
        return _form(
            settings=settings,
            now=now,
            next_url=next_url,
            note=note,
            username=username,
            status=401,
        )
    _end_replaced_session(request, conn, secret=secret, now=now)
    session = web_session.new_session(username=user.username, now=now)
    web_sessions.record_start(conn, session=session, user=user, source=source)
    cookie = web_session.renew(session, secret=secret, now=now, idle=idle_timeout(settings))
    response = RedirectResponse(safe_next(next_url), status_code=303)
    set_session_cookie(response, cookie, settings)
    response.delete_cookie(SIGNIN_COOKIE, path="/sign-in")
    return response


def _end_replaced_session(
    request: Request, conn: Connection, *, secret: str, now: datetime
) -> None:
    """A new sign-in in a browser with a live session ends the old one on the server."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return
    try:
        old = web_session.read_session(cookie, secret=secret, now=now)
    except InvalidTokenError:
        return  # expired or forged: nothing live to end
    web_sessions.record_end(conn, sid=old.sid, at=now, reason="replaced")


@router.post("/sign-out")
def sign_out(
    request: Request,
    conn: Connection,
    settings: Settings,
    now: Now,
    found: Annotated[PageSession, Depends(form_user())],
) -> Response:
    """End the session on the server and delete the cookie; then to the sign-in page."""
    web_sessions.record_end(conn, sid=found.session.sid, at=now)
    response = RedirectResponse("/sign-in?why=signed_out", status_code=303)
    clear_session_cookie(request, response, settings)
    return response
