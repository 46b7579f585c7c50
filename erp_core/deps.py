"""Typed FastAPI dependencies: the one place views get the connection, clock and settings.

Everything here hangs off the ``AppContext`` that the app's lifespan builds, so there is
no module-level pool or settings object, and a test builds as many apps as it likes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from erp_core.audit.keys import RecordKey
from erp_core.audit.settings import RecordConfig
from erp_core.auth import service as auth_service
from erp_core.auth import tokens
from erp_core.auth.errors import (
    InvalidTokenError,
    PasswordChangeRequiredError,
    PermissionDeniedError,
)
from erp_core.auth.gate import LoginGate
from erp_core.auth.models import AttemptRecorder, LoginAttempt, LoginPolicy, Role, User
from erp_core.metrics import ApiMetrics
from erp_core.settings import ApiSettings
from erp_core.web.errors_i18n import remember_locale

Clock = Callable[[], datetime]
DbConnection = psycopg.Connection[TupleRow]


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AppContext:
    """What one running app owns: settings, connection pools, metrics, clock, sign-in gate.

    ``attempt_pool`` is a small pool of its own for recording failed password entries of
    a request that already holds a connection of ``pool`` (signatures): waiting for a
    second connection of the same pool could wait for ever when the pool is exhausted.
    """

    settings: ApiSettings
    pool: ConnectionPool[DbConnection]
    metrics: ApiMetrics
    clock: Clock
    gate: LoginGate
    attempt_pool: ConnectionPool[DbConnection]
    records: RecordConfig  # the record key (signatures) and the audit anchor file


def get_context(request: Request) -> AppContext:
    """The context of the app serving ``request`` (set by its lifespan)."""
    context = getattr(request.app.state, "context", None)
    if not isinstance(context, AppContext):
        msg = "the app has not started: build it with create_app() and run its lifespan"
        raise RuntimeError(msg)  # noqa: TRY004 - a programming error, not a type check
    return context


Context = Annotated[AppContext, Depends(get_context)]


def get_settings(context: Context) -> ApiSettings:
    """The settings the app was built with."""
    return context.settings


def get_connection(context: Context) -> Iterator[DbConnection]:
    """A pooled connection for one request; committed at the end, rolled back on error.

    Used with ``scope="function"`` (``Connection``): the commit happens when the view
    returns, *before* the answer is sent. With FastAPI's default (request) scope it would
    run after the response went out, so a browser following a 303 could arrive before
    the sign-in or signature it was told about is committed, and a failed commit would
    follow a success answer.
    """
    with context.pool.connection() as conn:
        yield conn


def get_now(context: Context) -> datetime:
    """The current time from the app's clock (fixed in tests)."""
    return context.clock()


def get_records(context: Context) -> RecordConfig:
    """The record key ring and anchor file the app was built with."""
    return context.records


def get_signing_key(context: Context) -> RecordKey:
    """The server key new signatures are bound with (the newest of the key file)."""
    return context.records.keyring.current


Settings = Annotated[ApiSettings, Depends(get_settings)]
Records = Annotated[RecordConfig, Depends(get_records)]
SigningKey = Annotated[RecordKey, Depends(get_signing_key)]
Connection = Annotated[DbConnection, Depends(get_connection, scope="function")]
Now = Annotated[datetime, Depends(get_now)]


# --- access: the current user and role checks (erp_core.auth) ---

_bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def login_policy(settings: ApiSettings) -> LoginPolicy:
    """The failed-login limits from ``settings``."""
    return LoginPolicy(
        max_failures=settings.login_max_failures,
        window=timedelta(minutes=settings.login_window_minutes),
        lock=timedelta(minutes=settings.login_lock_minutes),
        source_max_failures=settings.login_source_max_failures,
        account_max_failures=settings.login_account_max_failures,
        known_source_age=timedelta(days=settings.login_known_source_days),
        temporary_password_lifetime=timedelta(hours=settings.temporary_password_hours),
    )


def get_login_policy(settings: Settings) -> LoginPolicy:
    """The failed-login limits from the settings."""
    return login_policy(settings)


def get_attempt_recorder(context: Context) -> AttemptRecorder:
    """Records login/signature attempts on a connection of their own, committed at once.

    A failed attempt must outlive the request that made it, which is rolled back. The
    connection comes from ``attempt_pool``, never from the pool the request holds one of.
    """

    def record(attempt: LoginAttempt) -> None:
        with context.attempt_pool.connection() as conn:
            auth_service.record_attempt(conn, attempt=attempt)

    return record


def get_gate(context: Context) -> LoginGate:
    """The app's sign-in gate (bounded argon2 and pool use)."""
    return context.gate


def client_source(request: Request) -> str | None:
    """The client's address (the proxy's unless it is a trusted proxy, see hardening)."""
    return request.client.host if request.client else None


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """Who a verified bearer token was issued to, and when (Unix seconds)."""

    username: str
    issued_at: int


def token_claims(context: Context, token: Annotated[str | None, Depends(_bearer)]) -> TokenClaims:
    """The verified claims of the bearer token (no database); 401 otherwise."""
    if token is None:
        raise HTTPException(401, "not authenticated", headers=_CHALLENGE)
    try:
        found = tokens.claims(token, secret=context.settings.jwt_key(), now=context.clock())
    except InvalidTokenError as err:
        raise HTTPException(401, str(err), headers=_CHALLENGE) from err
    return TokenClaims(username=str(found["sub"]), issued_at=int(found["iat"]))


Claims = Annotated[TokenClaims, Depends(token_claims)]


def user_for_token(conn: DbConnection, claims: TokenClaims, *, now: datetime) -> User:
    """The active user of ``claims``; 401 if unknown, disabled or older than a password change.

    A reset or a change of the password ends every token and session opened before it.
    """
    user = auth_service.find_user(conn, username=claims.username)
    if user is None or not user.active:
        raise HTTPException(401, "the account is unknown or disabled", headers=_CHALLENGE)
    if issued_before_password_change(claims.issued_at, user, now=now):
        raise HTTPException(
            401, "the password was changed after this token was issued", headers=_CHALLENGE
        )
    return user


def issued_before_password_change(issued_at: int, user: User, *, now: datetime) -> bool:
    """True if a token or session issued at ``issued_at`` predates the last password change.

    Compared in whole Unix seconds, as tokens carry them. A change stamped after ``now``
    (clocks set back) ends nothing, rather than every session of the user.
    """
    changed = user.password_changed_at
    return changed is not None and changed <= now and issued_at < int(changed.timestamp())


def get_user_pending_change(conn: Connection, claims: Claims, now: Now) -> User:
    """The token's user, even one who must still change the password (for that change)."""
    return user_for_token(conn, claims, now=now)


def get_current_user(request: Request, conn: Connection, claims: Claims, now: Now) -> User:
    """The active user the bearer token was issued to; 401 otherwise.

    403 while the user must still replace a password an administrator set. The user's
    language setting is noted on the request, for the error messages it may get.
    """
    user = user_for_token(conn, claims, now=now)
    remember_locale(request, user.locale)
    if user.must_change_password:
        raise HTTPException(403, str(PasswordChangeRequiredError(user.username)))
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
UserPendingChange = Annotated[User, Depends(get_user_pending_change)]
LoginLimits = Annotated[LoginPolicy, Depends(get_login_policy)]
AttemptLog = Annotated[AttemptRecorder, Depends(get_attempt_recorder)]
Gate = Annotated[LoginGate, Depends(get_gate)]


def require_roles(*roles: str) -> Callable[[User], User]:
    """A dependency returning the current user if they hold one of ``roles``; 403 otherwise.

    Use as ``user: Annotated[User, Depends(require_roles("qa", "qa_manager"))]``.
    """
    allowed = frozenset(Role(r) for r in roles)  # ValueError at import for a typo
    if not allowed:
        raise ValueError("require_roles needs at least one role")

    def check_roles(user: CurrentUser) -> User:
        if not user.has_any(allowed):
            err = PermissionDeniedError(user.username, allowed)
            raise HTTPException(403, str(err))
        return user

    check_roles.__name__ = f"require_{'_or_'.join(sorted(allowed))}"
    return check_roles
