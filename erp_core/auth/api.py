"""Login, password, user and reset endpoints (``/api/auth``, ``/api/users``, resets).

Every endpoint but the token endpoint checks roles with ``require_roles`` or
``CurrentUser``. Changes are made with the administrator as the acting user of the
audit trail. Accounts that sign get their passwords only through a reset a QA manager
confirms (``erp_core.auth.accounts``, ``erp_core.auth.resets``). The token and
password-change endpoints check passwords through the sign-in gate
(``erp_core.auth.gate``): no pooled connection is held while argon2 runs.
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
from erp_core.auth import accounts, resets, service, tokens
from erp_core.auth.errors import (
    AccountDisabledError,
    AccountLockedError,
    AuthError,
    InvalidCredentialsError,
    InvalidTokenError,
    LoginBusyError,
    PasswordChangeRequiredError,
    PasswordNotBoundError,
    PermissionDeniedError,
    ResetConfirmerError,
    ResetStateError,
    SeparationOfDutiesError,
    SigningAccountPasswordError,
    SourceThrottledError,
    TemporaryPasswordExpiredError,
    UserExistsError,
    WeakPasswordError,
)
from erp_core.auth.models import (
    AccountOut,
    AttemptOut,
    Channel,
    LoginPolicy,
    PasswordChange,
    PasswordReset,
    PasswordResetOut,
    ReasonBody,
    ResetConfirm,
    ResetConfirmedOut,
    ResetRequestOut,
    RolesUpdate,
    Token,
    User,
    UserAdminOut,
    UserCreate,
    UserOut,
)
from erp_core.deps import (
    AttemptLog,
    Claims,
    Clock,
    Connection,
    Gate,
    LoginLimits,
    Now,
    Records,
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
QaManager = Annotated[User, Depends(require_roles("qa_manager"))]
ResetViewer = Annotated[User, Depends(require_roles("qa_manager", "admin"))]
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
def create_user(
    body: UserCreate, admin: Admin, conn: Connection, now: Now, records: Records
) -> AccountOut:
    """Create a user (admin only); the change is audited with the administrator as actor.

    The user must replace the password at the first sign-in (the administrator chose it).
    An account with a signing role (qa, qa_manager) takes no password: it gets a reset
    request (``password_reset_id``) that a QA manager confirms; 409 if one is sent.
    """
    set_actor(conn, user=admin.username, reason=body.reason)
    user, request = accounts.create_account(
        conn,
        username=body.username,
        full_name=body.full_name,
        password=body.password,
        roles=body.roles,
        requested_by=admin.username,
        reason=body.reason,
        now=now,
        keyring=records.keyring,
    )
    return AccountOut(
        **UserOut.of(user).model_dump(), password_reset_id=request.id if request else None
    )


@router.put("/users/{username}/roles", responses=CONFLICT)
def set_roles(  # noqa: PLR0913 - FastAPI injects each dependency as a parameter
    *,
    username: UsernamePath,
    body: RolesUpdate,
    admin: Admin,
    conn: Connection,
    now: Now,
    records: Records,
) -> AccountOut:
    """Replace a user's roles (admin only); separation of duties is enforced.

    An account that starts to hold a signing role loses its password (its sessions end)
    until a QA manager confirms the reset named in ``password_reset_id``.
    """
    set_actor(conn, user=admin.username, reason=body.reason)
    user, request = accounts.set_roles(
        conn,
        username=username,
        roles=body.roles,
        requested_by=admin.username,
        reason=body.reason,
        now=now,
        keyring=records.keyring,
    )
    return AccountOut(
        **UserOut.of(user).model_dump(), password_reset_id=request.id if request else None
    )


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
    records: Records,
) -> PasswordResetOut:
    """Reset a user's password (admin only): a one-time password the user must replace.

    With ``temporary_password`` the administrator chooses it; without, a random one is
    returned once. Either way the user must set a password of their own at the next
    sign-in before doing anything else; the user's sessions end, and the temporary
    password expires after ``COLDTRACE_API_TEMPORARY_PASSWORD_HOURS``. Audited with the
    administrator as actor.

    An account with a signing role is not changed: the answer has
    ``confirmation_required`` and the ``reset_id`` that a QA manager (not the user, not
    this administrator) confirms; the QA manager alone gets the one-time password. A
    ``temporary_password`` for such an account is refused (409).
    """
    set_actor(conn, user=admin.username, reason=body.reason)
    done = accounts.reset(
        conn,
        username=username,
        temporary_password=body.temporary_password,
        requested_by=admin.username,
        reason=body.reason,
        now=now,
        keyring=records.keyring,
    )
    if done.request is not None:
        return PasswordResetOut(
            username=done.user.username,
            must_change_password=done.user.must_change_password,
            expires_at=done.request.expires_at(policy),
            confirmation_required=True,
            reset_id=done.request.id,
        )
    return PasswordResetOut(
        username=done.user.username,
        must_change_password=done.user.must_change_password,
        temporary_password=done.temporary_password,
        expires_at=now + policy.temporary_password_lifetime,
    )


@router.get("/password-resets")
def open_resets(
    viewer: ResetViewer, conn: Connection, now: Now, policy: LoginLimits
) -> list[ResetRequestOut]:
    """Resets of accounts that sign, waiting for a QA manager (qa_manager, admin)."""
    del viewer
    return [_reset_out(r, policy) for r in resets.open_requests(conn, now=now, policy=policy)]


@router.post("/password-resets/{reset_id}/confirm")
def confirm_reset(  # noqa: PLR0913 - FastAPI injects each dependency as a parameter
    *,
    reset_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: ResetConfirm,
    confirmer: QaManager,
    request: Request,
    conn: Connection,
    now: Now,
    policy: LoginLimits,
    attempts: AttemptLog,
    records: Records,
) -> ResetConfirmedOut:
    """Confirm a reset with your signature (qa_manager; not your own, not one you asked for).

    You re-enter your password (meaning "Password reset confirmed"); the account gets a
    one-time password, shown here once and to you only: hand it to the person in person,
    after checking who they are. They must replace it at the first sign-in. 403 if you
    may not confirm it, 409 if it is no longer open.
    """
    done = resets.confirm(
        conn,
        reset_id=reset_id,
        confirmer=confirmer,
        password=body.password,
        clock=lambda: now,
        policy=policy,
        record_attempt=attempts,
        keyring=records.keyring,
        comment=body.comment,
        source=client_source(request),
    )
    return ResetConfirmedOut(
        username=done.user.username,
        temporary_password=done.temporary_password,
        expires_at=now + policy.temporary_password_lifetime,
        signature=done.signature.manifestation,
    )


def _reset_out(reset: resets.ResetRequest, policy: LoginPolicy) -> ResetRequestOut:
    return ResetRequestOut(
        id=reset.id,
        username=reset.username,
        requested_by=reset.requested_by,
        requested_at=reset.requested_at,
        reason=reset.reason,
        expires_at=reset.expires_at(policy),
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
                | PasswordNotBoundError()
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
            case PermissionDeniedError() | PasswordChangeRequiredError() | ResetConfirmerError():
                status = 403
            case (
                SeparationOfDutiesError()
                | UserExistsError()
                | SigningAccountPasswordError()
                | ResetStateError()
            ):
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
