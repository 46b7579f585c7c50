"""Login and user administration endpoints (``/api/auth``, ``/api/users``).

Every endpoint but the token endpoint checks roles with ``require_roles`` or
``CurrentUser``. Changes are made with the administrator as the acting user of the
audit trail. ``install_access_error_handlers`` maps the access and signature errors to
HTTP answers.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated

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
    PermissionDeniedError,
    SeparationOfDutiesError,
    UserExistsError,
    WeakPasswordError,
)
from erp_core.auth.models import (
    AttemptOut,
    Channel,
    ReasonBody,
    RolesUpdate,
    Token,
    User,
    UserAdminOut,
    UserCreate,
    UserOut,
)
from erp_core.deps import (
    AttemptLog,
    Clock,
    Connection,
    CurrentUser,
    LoginLimits,
    Now,
    Settings,
    require_roles,
)
from erp_core.signatures.errors import SignatureError, SignatureRefusedError

router = APIRouter(prefix="/api", tags=["access"])

Admin = Annotated[User, Depends(require_roles("admin"))]
UsernamePath = Annotated[str, Path(description="The user's login name")]


@router.post("/auth/token")
def login(  # noqa: PLR0913 - FastAPI injects each dependency as a parameter
    *,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    conn: Connection,
    settings: Settings,
    now: Now,
    policy: LoginLimits,
    record: AttemptLog,
) -> Token:
    """OAuth2 password flow: a bearer token for a username and password (form fields)."""
    user = service.authenticate(
        conn,
        username=form.username,
        password=form.password,
        source=request.client.host if request.client else None,
        channel=Channel.LOGIN,
        now=now,
        policy=policy,
        record=record,
    )
    lifetime = timedelta(minutes=settings.jwt_lifetime_minutes)
    token = tokens.issue(
        username=user.username,
        secret=settings.jwt_secret.get_secret_value(),
        now=now,
        lifetime=lifetime,
    )
    return Token(access_token=token, expires_in=int(lifetime.total_seconds()))


@router.get("/auth/me")
def me(user: CurrentUser) -> UserOut:
    """The logged-in user and their roles."""
    return UserOut.of(user)


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


@router.post("/users", status_code=201)
def create_user(body: UserCreate, admin: Admin, conn: Connection, now: Now) -> UserOut:
    """Create a user (admin only); the change is audited with the administrator as actor."""
    set_actor(conn, user=admin.username, reason=body.reason)
    user = service.create_user(
        conn,
        username=body.username,
        full_name=body.full_name,
        password=body.password,
        roles=body.roles,
        now=now,
    )
    return UserOut.of(user)


@router.put("/users/{username}/roles")
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
            case InvalidCredentialsError() | AccountDisabledError() | InvalidTokenError():
                status = 401
                headers["WWW-Authenticate"] = "Bearer"
            case AccountLockedError():
                status = 429
                wait = (err.until - clock()).total_seconds()
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
            case PermissionDeniedError():
                status = 403
            case SeparationOfDutiesError() | UserExistsError():
                status = 409
            case WeakPasswordError():
                status = 422
            case _:
                status = 400
        return JSONResponse({"detail": str(err)}, status_code=status, headers=headers)

    @app.exception_handler(SignatureError)
    def signature_error(request: Request, err: SignatureError) -> Response:
        del request
        status = 403 if isinstance(err, SignatureRefusedError) else 409
        return JSONResponse({"detail": str(err)}, status_code=status)
