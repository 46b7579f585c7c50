"""The web UI's session glue: who is signed in, CSRF checks, role checks, the sliding cookie.

The pure session rules live in ``erp_core.auth.session``; this module speaks HTTP. Page
dependencies live here rather than in ``erp_core.deps`` because their failures are
pages (a redirect to sign-in, a 403 text), not the API's JSON errors.

* ``PageUser`` — any signed-in, active user (every page today, as their API endpoints);
  without a valid session a GET is redirected to ``/sign-in?next=<page>``, and a user
  who must replace a password an administrator set is sent to ``/account/password``.
* ``form_user(*roles)`` — for every form POST: session, then the form's ``csrf_token``
  field must be the session's token (403 page, nothing done), then the roles.
* ``PageUserPendingChange`` / ``form_user(allow_pending_change=True)`` — the password
  page and sign-out, which such a user may use; ``brief_page_session`` holds its
  connection only while it checks the session (for views that then run argon2).

A session opened before the user's last password change is over (a change or an
administrator's reset ends every session). Cookies are ``Secure`` when the request came
over HTTPS (directly or through a trusted proxy) or when ``WEB_COOKIE_SECURE`` says so.

Every request with a valid session renews the cookie (sliding inactivity time-out),
except the pages' automatic refreshes (``?auto=1``), which are not user activity.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.auth import service as auth_service
from erp_core.auth import session as web_session
from erp_core.auth import web_sessions
from erp_core.auth.errors import InvalidTokenError
from erp_core.auth.models import Role, User
from erp_core.deps import (
    AppContext,
    Clock,
    Connection,
    Context,
    DbConnection,
    issued_before_password_change,
)
from erp_core.settings import ApiSettings
from erp_core.web.errors_i18n import remember_locale
from erp_core.web.format import site_zone
from erp_core.web.html import Html, Viewer, page
from erp_core.web.i18n import pick_locale, translations
from erp_core.web.templates import render_template
from erp_core.web.words import N_

SESSION_COOKIE = "coldtrace_session"
AUTO_PARAM = "auto"
_RENEWAL = "coldtrace.session_renewal"  # request.state key: the renewed cookie, if any


class SignInRequiredError(Exception):
    """No valid session: the browser is sent to the sign-in page."""

    def __init__(self, next_url: str, why: str | None) -> None:
        super().__init__(f"sign-in required ({why or 'no session'})")
        self.next_url = next_url
        self.why = why


class PasswordChangePageError(Exception):
    """The user must replace a password an administrator set: to the password page."""

    def __init__(self, next_url: str) -> None:
        super().__init__("password change required")
        self.next_url = next_url


class PageForbiddenError(Exception):
    """A signed-in user may not see the page or send the form.

    ``message`` is a gettext message (English) with ``%(name)s`` fields from ``params``;
    the 403 page shows it in ``locale``.
    """

    def __init__(
        self, message: str, params: dict[str, str] | None = None, *, locale: str = "en"
    ) -> None:
        super().__init__(message % (params or {}))
        self.message = message
        self.params = params or {}
        self.locale = locale


@dataclass(frozen=True, slots=True)
class PageSession:
    """The signed-in user of a page request and what the page shows about them."""

    user: User
    session: web_session.WebSession
    viewer: Viewer


def request_locale(request: Request) -> str:
    """The language of the pages for this request: the browser's ``Accept-Language``."""
    return pick_locale(request.headers.get("accept-language"))


def idle_timeout(settings: ApiSettings) -> timedelta:
    """The inactivity time-out of web sessions."""
    return timedelta(minutes=settings.web_idle_minutes)


def secure_cookies(request: Request, settings: ApiSettings) -> bool:
    """Whether cookies get ``Secure``: over HTTPS (trusted proxies included), or if forced."""
    return settings.web_cookie_secure or request.url.scheme == "https"


def set_session_cookie(
    response: Response, value: str, settings: ApiSettings, request: Request
) -> None:
    """Store a session cookie: HttpOnly, SameSite=Strict, for the whole site, no Max-Age."""
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request, settings),
        path="/",
    )


def clear_session_cookie(request: Request, response: Response, settings: ApiSettings) -> None:
    """Delete the session cookie and cancel this request's renewal of it."""
    setattr(request.state, _RENEWAL, None)
    response.delete_cookie(
        SESSION_COOKIE,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request, settings),
        path="/",
    )


def safe_next(url: str | None) -> str:
    """``url`` if it is a path on this site, else ``/`` (no open redirect)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "/"  # browsers drop tabs and newlines: "/\t/evil" would become "//evil"
    return url


def page_session(
    request: Request, context: AppContext, conn: DbConnection, *, allow_pending_change: bool
) -> PageSession:
    """The signed-in user of this request; SignInRequiredError without a valid session.

    PasswordChangePageError for a user who must replace a password an administrator
    set, unless ``allow_pending_change``.
    """
    settings, now = context.settings, context.clock()
    query = [(k, v) for k, v in request.query_params.multi_items() if k != AUTO_PARAM]
    here = request.url.path + (f"?{urlencode(query)}" if query else "")
    next_url = here if request.method == "GET" else "/"
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        raise SignInRequiredError(next_url, None)
    secret = settings.jwt_key()
    try:
        session = web_session.read_session(cookie, secret=secret, now=now)
    except InvalidTokenError as err:
        raise SignInRequiredError(next_url, "expired" if err.reason == "expired" else None) from err
    if not web_sessions.is_live(conn, session=session):
        raise SignInRequiredError(next_url, None)  # signed out: the cookie is dead too
    user = auth_service.find_user(conn, username=session.username)
    if user is None or not user.active:
        raise SignInRequiredError(next_url, "disabled")
    if issued_before_password_change(int(session.started_at.timestamp()), user, now=now):
        raise SignInRequiredError(next_url, "password_changed")
    if user.must_change_password and not allow_pending_change:
        raise PasswordChangePageError(next_url)
    if request.query_params.get(AUTO_PARAM) != "1":
        renewed = web_session.renew(session, secret=secret, now=now, idle=idle_timeout(settings))
        setattr(request.state, _RENEWAL, renewed)
    remember_locale(request, user.locale)  # for the error messages (errors_i18n)
    auto = urlencode([*query, (AUTO_PARAM, "1")])
    viewer = Viewer(
        username=user.username,
        full_name=user.full_name,
        roles=tuple(sorted(user.roles)),
        csrf=web_session.csrf_token(session, secret=secret),
        refresh_url=f"{request.url.path}?{auto}",
        locale=user.locale or request_locale(request),
        chosen_locale=user.locale,
        browser_locale=request_locale(request),
        page_url=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    )
    return PageSession(user=user, session=session, viewer=viewer)


def get_page_session(request: Request, context: Context, conn: Connection) -> PageSession:
    """The signed-in user of this request (see ``page_session``)."""
    return page_session(request, context, conn, allow_pending_change=False)


def get_page_session_pending(request: Request, context: Context, conn: Connection) -> PageSession:
    """The signed-in user, also one who must still change the password."""
    return page_session(request, context, conn, allow_pending_change=True)


def brief_page_session(request: Request, context: Context) -> PageSession:
    """``get_page_session_pending`` on a connection held only for the check itself."""
    with context.pool.connection() as conn:
        return page_session(request, context, conn, allow_pending_change=True)


PageUser = Annotated[PageSession, Depends(get_page_session)]
PageUserPendingChange = Annotated[PageSession, Depends(get_page_session_pending)]


def _check_roles(found: PageSession, allowed: frozenset[Role]) -> PageSession:
    if allowed and not found.user.has_any(allowed):
        # role codes as the API names them (qa_manager), joined in the user's language
        _ = translations(found.viewer.locale).gettext
        held = ", ".join(sorted(found.user.roles)) or "—"
        need = _(" or ").join(sorted(allowed))
        raise PageForbiddenError(
            N_("You are signed in as %(user)s (%(held)s); this needs the role %(need)s."),
            {"user": found.user.username, "held": held, "need": need},
            locale=found.viewer.locale,
        )
    return found


def form_user(
    *roles: str, allow_pending_change: bool = False
) -> Callable[[Request, PageSession, str | None], PageSession]:
    """A dependency for form POSTs: session, CSRF token, then roles (any user if none given)."""
    allowed = frozenset(Role(r) for r in roles)

    def check(
        request: Request,
        found: PageUser,
        csrf_token: Annotated[str | None, Form()] = None,
    ) -> PageSession:
        check_csrf(request, found, csrf_token)
        return _check_roles(found, allowed)

    def check_pending(
        request: Request,
        found: PageUserPendingChange,
        csrf_token: Annotated[str | None, Form()] = None,
    ) -> PageSession:
        check_csrf(request, found, csrf_token)
        return _check_roles(found, allowed)

    return check_pending if allow_pending_change else check


def check_csrf(request: Request, found: PageSession, csrf_token: str | None) -> None:
    """PageForbiddenError unless ``csrf_token`` is the session's token."""
    if not web_session.tokens_match(found.viewer.csrf, csrf_token):
        setattr(request.state, _RENEWAL, None)  # a forged request is not user activity
        raise PageForbiddenError(
            N_(
                "The form check failed (missing or wrong CSRF token): nothing was changed. "
                "Reload the page and send the form again."
            ),
            locale=found.viewer.locale,
        )


def install_site_zone(app: FastAPI, zone: tzinfo) -> None:
    """Show every page's (and report's) times in the site's ``zone`` during each request."""

    @app.middleware("http")
    async def in_site_zone(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        with site_zone(zone):
            return await call_next(request)


def install(app: FastAPI, *, clock: Clock) -> None:
    """Register the session cookie renewal and the sign-in / 403 answers on ``app``."""

    @app.middleware("http")
    async def renew_cookie(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        setattr(request.state, _RENEWAL, None)
        response = await call_next(request)
        renewed = getattr(request.state, _RENEWAL, None)
        if isinstance(renewed, str):
            set_session_cookie(response, renewed, request.app.state.context.settings, request)
        if response.headers.get("content-type", "").startswith("text/html"):
            # pages show a user's data and a CSRF token: not for the back button after
            # sign-out on a shared workstation, nor for any cache on the way
            response.headers.setdefault("cache-control", "no-store")
        return response

    @app.exception_handler(SignInRequiredError)
    def to_sign_in(request: Request, err: SignInRequiredError) -> Response:
        query = {"next": err.next_url} | ({"why": err.why} if err.why else {})
        response = RedirectResponse(f"/sign-in?{urlencode(query)}", status_code=303)
        if SESSION_COOKIE in request.cookies:  # expired, ended or forged: of no further use
            clear_session_cookie(request, response, request.app.state.context.settings)
        return response

    @app.exception_handler(PasswordChangePageError)
    def to_password_page(request: Request, err: PasswordChangePageError) -> Response:
        del request
        query = urlencode({"next": err.next_url, "why": "required"})
        return RedirectResponse(f"/account/password?{query}", status_code=303)

    @app.exception_handler(PageForbiddenError)
    def forbidden(request: Request, err: PageForbiddenError) -> Response:
        del request
        _ = translations(err.locale).gettext
        body = render_template(
            "web/message.html",
            locale=err.locale,
            heading=_("NOT ALLOWED"),
            message=_(err.message) % err.params,
        )
        html = page(title=_("Not allowed"), body=Html(body), now=clock(), locale=err.locale)
        return HTMLResponse(html, status_code=403)
