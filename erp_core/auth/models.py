"""Access value types: roles, users, login attempts and the API's request/response models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field


class Role(StrEnum):
    """The ERP roles; a user may hold several (see ``rules.separation_problem``)."""

    OPERATOR = "operator"
    WAREHOUSE = "warehouse"
    QA = "qa"
    QA_MANAGER = "qa_manager"
    ADMIN = "admin"


# Roles whose holders sign QA batch releases; never together with ADMIN.
SIGNING_ROLES = frozenset({Role.QA, Role.QA_MANAGER})


class Outcome(StrEnum):
    """What happened to one login (or signature password) attempt."""

    SUCCESS = "success"
    BAD_PASSWORD = "bad_password"  # noqa: S105 - an outcome name, not a password
    UNKNOWN_USER = "unknown_user"
    DISABLED = "disabled"
    LOCKED = "locked"  # refused without checking the password; not counted as a failure
    EXPIRED = "expired"  # a temporary password used after its lifetime


class Channel(StrEnum):
    """Where a password was entered."""

    LOGIN = "login"
    SIGNATURE = "signature"
    PASSWORD_CHANGE = "password_change"  # noqa: S105 - the current password, re-entered


@dataclass(frozen=True, slots=True)
class User:
    """An ERP user as the application sees it (never with the password hash)."""

    id: int
    username: str
    full_name: str
    roles: frozenset[Role]
    active: bool
    created_at: datetime
    # Set by an administrator's reset (and for new accounts): until the user sets a
    # password of their own, they may do nothing else.
    must_change_password: bool = False
    password_changed_at: datetime | None = None

    def has_any(self, roles: frozenset[Role]) -> bool:
        """True if the user holds at least one of ``roles``."""
        return bool(self.roles & roles)


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """One password entry: who, when, from where, through which channel, and the outcome."""

    username: str
    at: datetime
    source: str | None
    channel: Channel
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """The failed-login limits (``erp_core.auth.rules``; docs/access-and-audit.md).

    ``max_failures`` failures of one username from one source within ``window`` lock
    that pair for ``lock``; ``source_max_failures`` failures or refusals from one source
    (any username) throttle it; ``account_max_failures`` failures of one username from
    anywhere lock it for sources without a successful sign-in within
    ``known_source_age``. A temporary password set by an administrator expires after
    ``temporary_password_lifetime``.
    """

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)
    source_max_failures: int = 20
    account_max_failures: int = 50
    known_source_age: timedelta = timedelta(days=30)
    temporary_password_lifetime: timedelta = timedelta(hours=72)


# Records an attempt durably, in a transaction of its own: a failed attempt must stay
# recorded even though the request that made it is rolled back.
AttemptRecorder = Callable[[LoginAttempt], None]


class Token(BaseModel):
    """The OAuth2 token response."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the token expires")
    password_change_required: bool = Field(
        default=False,
        description="The password was set by an administrator: every endpoint but "
        "POST /api/auth/password and GET /api/auth/me answers 403 until it is changed",
    )


class UserOut(BaseModel):
    """A user as shown to the user themself and to administrators."""

    username: str
    full_name: str
    roles: list[Role]
    active: bool
    created_at: datetime
    must_change_password: bool = False

    @classmethod
    def of(cls, user: User) -> UserOut:
        """The response model for ``user``."""
        return cls(
            username=user.username,
            full_name=user.full_name,
            roles=sorted(user.roles),
            active=user.active,
            created_at=user.created_at,
            must_change_password=user.must_change_password,
        )


class UserAdminOut(UserOut):
    """A user with the login-limit state administrators need to see."""

    locked_until: datetime | None
    recent_failures: int = Field(description="Failed attempts within the login window")


class UserCreate(BaseModel):
    """An administrator's request to create a user."""

    username: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,62}$")
    full_name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)
    roles: list[Role] = Field(default_factory=list)
    reason: str = Field(default="user created", min_length=1, max_length=500)


class RolesUpdate(BaseModel):
    """An administrator's request to replace a user's roles."""

    roles: list[Role]
    reason: str = Field(min_length=1, max_length=500)


class ReasonBody(BaseModel):
    """An administrator's reason for a change (goes into the audit trail)."""

    reason: str = Field(min_length=1, max_length=500)


class PasswordChange(BaseModel):
    """A user's request to replace their own password."""

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class PasswordReset(BaseModel):
    """An administrator's reset: the user must choose a new password at the next sign-in."""

    reason: str = Field(min_length=1, max_length=500)
    temporary_password: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="A one-time password to hand over; without it a random one is made "
        "and returned once",
    )


class PasswordResetOut(BaseModel):
    """The result of a reset; ``temporary_password`` only when the server made it."""

    username: str
    must_change_password: bool
    temporary_password: str | None = Field(
        default=None, description="Shown this once; it is stored only as a hash"
    )
    expires_at: datetime = Field(description="The temporary password is refused after this")


class AttemptOut(BaseModel):
    """One recorded login attempt."""

    at: datetime
    source: str | None
    channel: Channel
    outcome: Outcome
