"""Login, password and user administration endpoints (``/api/auth``, ``/api/users``).

Every endpoint but the token endpoint checks roles with ``require_roles`` or
``CurrentUser``. Changes are made with the administrator as the acting user of the
audit trail. The token and password-change endpoints check passwords through the sign-in
gate (``erp_core.auth.gate``): no pooled connection is held while argon2 runs.
``install_access_error_handlers`` maps the access and signature errors to HTTP answers.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import OAuth2PasswordRequestForm

from erp_core.audit.service import set_actor
from erp_core.auth import service, tokens
from erp_core.auth.errors import (
    AccountDisabledError,
    AccountLockedError,
    AuthError,
    InvalidCredentialsError,
    InvalidTokenError,
    LoginBusyError,
    PasswordChangeRequiredError,
    PermissionDeniedError,
    SeparationOfDutiesError,
    SourceThrottledError,
    TemporaryPasswordExpiredError,
    UserExistsError,
    WeakPasswordError,
)
from erp_core.auth.models import (
    AttemptOut,
    Channel,
    PasswordChange,
    PasswordReset,
    PasswordResetOut,
    ReasonBody,
    RolesUpdate,
    Token,
    User,
    UserAdminOut,
    UserCreate,
    UserOut,
)
from erp_core.deps import (
    Claims,
    Clock,
    Connection,
    Gate,
    LoginLimits,
    Now,
    Settings,
    UserPendingChange,
    client_source,
    require_roles,
)
from erp_core.signatures.errors import SignatureError, SignatureRefusedError

router = APIRouter(prefix="/api", tags=["access"])

Admin = Annotated[User, Depends(require_roles("admin"))]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The user name is taken, or the roles break separation of duties"}
}
UsernamePath = Annotated[str, Path(description="The user's login name")]


@router.post("/auth/token")
async def login(
    *,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    gate: Gate,
    settings: Settings,
    now: Now,
) -> Token:
    """OAuth2 password flow: a bearer token for a username and password (form fields).

    Limits: docs/access-and-audit.md ("Login throttling"). A user whose password was set
    by an administrator gets a token with ``password_change_required``: it is good for
    ``POST /api/auth/password`` and ``GET /api/auth/me`` only.
    """
    user = await gate.authenticate(
        username=form.username,
        password=form.password,
        source=client_source(request),
        channel=Channel.LOGIN,
        now=now,
    )
    lifetime = timedelta(minutes=settings.jwt_lifetime_minutes)
    token = tokens.issue(
        username=user.username,
        secret=settings.jwt_key(),
        now=now,
        lifetime=lifetime,
    )
    return Token(
        access_token=token,
        expires_in=int(lifetime.total_seconds()),
        password_change_required=user.must_change_password,
    )


@router.get("/auth/me")
def me(user: UserPendingChange) -> UserOut:
    """The logged-in user and their roles (also while a password change is required)."""
    return UserOut.of(user)


@router.post("/auth/password", status_code=204)
async def change_password(
    body: PasswordChange, request: Request, claims: Claims, gate: Gate, now: Now
) -> Response:
    """Replace your own password: the current one again, and a new one that passes the policy.

    Audited (the hash redacted). Every token and web session issued before the change
    stops working, this one included: sign in again with the new password.
    """
    from erp_core.auth import web_sessions  # noqa: PLC0415 - only this endpoint needs it

    await gate.change_password(
        username=claims.username,
        current_password=body.current_password,
        new_password=body.new_password,
        source=client_source(request),
        now=now,
        on_stored=lambda conn, user: web_sessions.end_all(
            conn, user=user, at=now, reason="password_changed"
        ),
    )
    return Response(status_code=204)


@router.get("/users")
def list_users(admin: Admin, conn: Connection, now: Now, policy: LoginLimits) -> list[UserAdminOut]:
    """Every user with roles, active flag and login-limit state (admin only)."""
    del admin
    return [
        UserAdminOut(
            **UserOut.of(s.user).model_dump(),
            locked_until=s.locked_until,
            recent_failures=s.recent_failures,
        )
        for s in service.list_users(conn, now=now, policy=policy)
    ]


@router.post("/users", status_code=201, responses=CONFLICT)
def create_user(body: UserCreate, admin: Admin, conn: Connection, now: Now) -> UserOut:
    """Create a user (admin only); the change is audited with the administrator as actor.

    The user must replace the password at the first sign-in (the administrator chose it).
    """
    set_actor(conn, user=admin.username, reason=body.reason)
    user = service.create_user(
        conn,
        username=body.username,
        full_name=body.full_name,
        password=body.password,
        roles=body.roles,
        now=now,
        must_change_password=True,  # the administrator typed it: the user replaces it
    )
    return UserOut.of(user)


@router.put("/users/{username}/roles", responses=CONFLICT)
def set_roles(
    username: UsernamePath, body: RolesUpdate, admin: Admin, conn: Connection, now: Now
) -> UserOut:
    """Replace a user's roles (admin only); separation of duties is enforced."""
    set_actor(conn, user=admin.username, reason=body.reason)
    return UserOut.of(service.set_roles(conn, username=username, roles=body.roles, now=now))


@router.post("/users/{username}/disable")
def disable_user(
    username: UsernamePath, body: ReasonBody, admin: Admin, conn: Connection
) -> UserOut:
    """Disable a user (admin only): their tokens stop working at once."""
    set_actor(conn, user=admin.username, reason=body.reason)
    return UserOut.of(service.set_active(conn, username=username, active=False))


@router.post("/users/{username}/enable")
def enable_user(
    username: UsernamePath, body: ReasonBody, admin: Admin, conn: Connection
) -> UserOut:
    """Enable a disabled user again (admin only)."""
    set_actor(conn, user=admin.username, reason=body.reason)
    return UserOut.of(service.set_active(conn, username=username, active=True))


@router.post("/users/{username}/reset-password")
def reset_password(  # noqa: PLR0913 - FastAPI injects each dependency as a parameter
    *,
    username: UsernamePath,
    body: PasswordReset,
    admin: Admin,
    conn: Connection,
    now: Now,
    policy: LoginLimits,
) -> PasswordResetOut:
    """Reset a user's password (admin only): a one-time password the user must replace.

    With ``temporary_password`` the administrator chooses it; without, a random one is
    returned once. Either way the user must set a password of their own at the next
    sign-in before doing anything else, so the administrator never knows the final one;
    the user's sessions end, and the temporary password expires after
    ``COLDTRACE_API_TEMPORARY_PASSWORD_HOURS``. Audited with the administrator as actor.
    """
    from erp_core.auth import web_sessions  # noqa: PLC0415 - only this endpoint needs it

    set_actor(conn, user=admin.username, reason=body.reason)
    user, made = service.reset_password(
        conn, username=username, temporary_password=body.temporary_password, now=now
    )
    web_sessions.end_all(conn, user=user, at=now, reason="password_changed")
    return PasswordResetOut(
        username=user.username,
        must_change_password=user.must_change_password,
        temporary_password=made,
        expires_at=now + policy.temporary_password_lifetime,
    )


@router.get("/users/{username}/login-attempts")
def login_attempts(
    username: UsernamePath, admin: Admin, conn: Connection, now: Now
) -> list[AttemptOut]:
    """The user's login and signature attempts of the last 30 days (admin only)."""
    del admin
    since = now - timedelta(days=30)
    return [
        AttemptOut(at=a.at, source=a.source, channel=a.channel, outcome=a.outcome)
        for a in service.attempts_since(conn, username=username, since=since)
    ]


def install_access_error_handlers(app: FastAPI, *, clock: Clock) -> None:
    """Map access and signature errors to JSON answers (401, 403, 409, 422, 429)."""

    @app.exception_handler(AuthError)
    def auth_error(request: Request, err: AuthError) -> Response:
        del request
        headers: dict[str, str] = {}
        match err:
            case (
                InvalidCredentialsError()
                | AccountDisabledError()
                | InvalidTokenError()
                | TemporaryPasswordExpiredError()
            ):
                status = 401
                headers["WWW-Authenticate"] = "Bearer"
            case AccountLockedError() | SourceThrottledError():
                status = 429
                wait = (err.until - clock()).total_seconds()
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
            case LoginBusyError():
                status = 503
                headers["Retry-After"] = "5"
            case PermissionDeniedError() | PasswordChangeRequiredError():
                status = 403
            case SeparationOfDutiesError() | UserExistsError():
                status = 409
            case WeakPasswordError():
                # FastAPI's validation shape, as every other 422 (erp_core.http_errors)
                item = {"type": "value_error", "loc": ["body"], "msg": str(err), "input": None}
                return JSONResponse({"detail": [item]}, status_code=422)
            case _:
                status = 400
        return JSONResponse({"detail": str(err)}, status_code=status, headers=headers)

    @app.exception_handler(SignatureError)
    def signature_error(request: Request, err: SignatureError) -> Response:
        del request
        status = 403 if isinstance(err, SignatureRefusedError) else 409
        return JSONResponse({"detail": str(err)}, status_code=status)
