"""Sign-in and sign-out pages of the web UI (``/sign-in``, ``/sign-out``).

Sign-in checks the password exactly as the API's token endpoint does (the sign-in gate
``erp_core.auth.gate``, channel ``login``: no pooled connection held while argon2 runs),
so the failed-login limits and the attempt log are shared, then opens a web session
(``erp_core.auth.session``) and records it (``erp_core.auth.web_sessions``); sign-out
records its end, so the cookie dies with it. A user whose password an administrator set
goes on to ``/account/password``. The form is protected against login CSRF by a nonce
cookie and an HMAC of it in a hidden field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.auth import service as auth_service
from erp_core.auth import session as web_session
from erp_core.auth import web_sessions
from erp_core.auth.errors import (
    AccountDisabledError,
    AccountLockedError,
    AuthError,
    InvalidCredentialsError,
    InvalidTokenError,
    LoginBusyError,
    PasswordNotBoundError,
    SourceThrottledError,
    TemporaryPasswordExpiredError,
    TooManyAttemptsError,
)
from erp_core.auth.models import Channel, User
from erp_core.deps import Connection, DbConnection, Gate, Now, Settings, client_source
from erp_core.settings import ApiSettings
from erp_core.web.format import format_time, utc_offset
from erp_core.web.html import Html, page
from erp_core.web.i18n import translations
from erp_core.web.session import (
    SESSION_COOKIE,
    PageSession,
    clear_session_cookie,
    form_user,
    idle_timeout,
    request_locale,
    safe_next,
    secure_cookies,
    set_session_cookie,
)
from erp_core.web.templates import render_template

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
SIGNIN_COOKIE = "coldtrace_signin"


@dataclass(frozen=True, slots=True)
class Note:
    """A banner above the sign-in form: its CSS class and its (translated) sentence."""

    css: str
    text: str


def _note(why: str | None, settings: ApiSettings, locale: str) -> Note | None:
    _ = translations(locale).gettext
    notes = {
        "expired": (
            "warning",
            _("Your session ended after %(idle)s min without activity. Sign in again.")
            % {"idle": f"{settings.web_idle_minutes:g}"},
        ),
        "signed_out": ("ok", _("You have signed out.")),
        "disabled": ("alarm", _("Your account is unknown or disabled.")),
        "password_changed": (
            "warning",
            _("Your password was changed (by you or an administrator): sign in again."),
        ),
    }
    if why not in notes:
        return None
    css, text = notes[why]
    return Note(css=css, text=text)


def _form(  # noqa: PLR0913 - every part of the form is explicit
    *,
    request: Request,
    settings: ApiSettings,
    now: datetime,
    next_url: str,
    note: Note | None,
    username: str = "",
    status: int = 200,
) -> Response:
    nonce = web_session.new_nonce()
    token = web_session.signin_token(nonce, secret=settings.jwt_key())
    locale = request_locale(request)
    body = render_template(
        "web/sign_in.html",
        locale=locale,
        note=note,
        token=token,
        next=safe_next(next_url),
        username=username,
        idle=f"{settings.web_idle_minutes:g}",
    )
    title = translations(locale).gettext("Sign in")
    response = HTMLResponse(
        page(title=title, body=Html(body), now=now, locale=locale), status_code=status
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request, settings),
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
            found = web_session.read_session(cookie, secret=settings.jwt_key(), now=now)
        except InvalidTokenError:
            pass  # expired or forged: show the form
        else:
            user = auth_service.find_user(conn, username=found.username)
            if user is not None and user.active and web_sessions.is_live(conn, session=found):
                return RedirectResponse(safe_next(next_url), status_code=303)
    return _form(
        request=request,
        settings=settings,
        now=now,
        next_url=next_url,
        note=_note(why, settings, request_locale(request)),
    )


@router.post("/sign-in")
async def sign_in(  # noqa: PLR0913 - FastAPI dependencies and form fields
    *,
    request: Request,
    gate: Gate,
    settings: Settings,
    now: Now,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next_url: Annotated[str, Form(alias="next")] = "/",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """Check the password (with the API's failed-login limits) and open a session."""
    secret = settings.jwt_key()
    nonce = request.cookies.get(SIGNIN_COOKIE)
    expected = None if nonce is None else web_session.signin_token(nonce, secret=secret)

    _ = translations(request_locale(request)).gettext

    def again(note: Note, status: int, name: str = "") -> Response:
        return _form(
            request=request,
            settings=settings,
            now=now,
            next_url=next_url,
            note=note,
            username=name,
            status=status,
        )

    if expected is None or not web_session.tokens_match(expected, csrf_token):
        text = _(
            "The sign-in form had expired or did not come from this site (CSRF check "
            "failed). Nothing was checked; please sign in again."
        )
        return again(Note(css="alarm", text=text), 403)
    source = client_source(request)
    try:
        user = await gate.authenticate(
            username=username, password=password, source=source, channel=Channel.LOGIN, now=now
        )
    except AuthError as err:
        status, text = refusal_page(err)
        return again(Note(css="alarm", text=text), status, username if status == 401 else "")
    session = web_session.new_session(username=user.username, now=now)

    def open_session(conn: DbConnection) -> None:
        _end_replaced_session(request, conn, secret=secret, now=now)
        web_sessions.record_start(conn, session=session, user=user, source=source)

    await gate.run_db(open_session)
    cookie = web_session.renew(session, secret=secret, now=now, idle=idle_timeout(settings))
    response = RedirectResponse(_after_sign_in(user, next_url), status_code=303)
    set_session_cookie(response, cookie, settings, request)
    response.delete_cookie(SIGNIN_COOKIE, path="/sign-in")
    return response


def _after_sign_in(user: User, next_url: str) -> str:
    if user.must_change_password:
        return "/account/password?" + urlencode({"next": safe_next(next_url), "why": "required"})
    return safe_next(next_url)


def refusal_page(err: AuthError) -> tuple[int, str]:
    """The status and the sentence the sign-in page shows for a refused sign-in."""
    match err:
        case TooManyAttemptsError():
            return 429, f"Not signed in: {err}."
        case LoginBusyError():
            return 503, f"Not signed in: {err}."
        case AccountLockedError():
            return 429, (
                f"Account {err.username} is locked after too many failed attempts from this "
                f"workstation until {format_time(err.until)} ({utc_offset()}). "
                "Ask an administrator if this was not you."
            )
        case SourceThrottledError():
            return 429, (
                "Too many failed sign-ins from this workstation: sign-ins from it are refused "
                f"until {format_time(err.until)} ({utc_offset()}). "
                "Ask an administrator if this was not you."
            )
        case (
            InvalidCredentialsError()
            | AccountDisabledError()
            | TemporaryPasswordExpiredError()
            | PasswordNotBoundError()
        ):
            return 401, f"Not signed in: {err}."
        case _:
            return 400, f"Not signed in: {err}."


def _end_replaced_session(
    request: Request, conn: DbConnection, *, secret: str, now: datetime
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
    found: Annotated[PageSession, Depends(form_user(allow_pending_change=True))],
) -> Response:
    """End the session on the server and delete the cookie; then to the sign-in page."""
    web_sessions.record_end(conn, sid=found.session.sid, at=now)
    response = RedirectResponse("/sign-in?why=signed_out", status_code=303)
    clear_session_cookie(request, response, settings)
    return response
