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


# Roles whose holders sign QA batch releases; never together with ADMIN. The password of
# an account holding one is handed out only by a QA manager (``erp_core.auth.resets``).
SIGNING_ROLES = frozenset({Role.QA, Role.QA_MANAGER})
# Who confirms a reset of a signing account (and hands its one-time password over).
RESET_CONFIRMER_ROLE = Role.QA_MANAGER


class Outcome(StrEnum):
    """What happened to one login (or signature password) attempt."""

    SUCCESS = "success"
    BAD_PASSWORD = "bad_password"  # noqa: S105 - an outcome name, not a password
    UNKNOWN_USER = "unknown_user"
    DISABLED = "disabled"
    LOCKED = "locked"  # refused without checking the password; not counted as a failure
    EXPIRED = "expired"  # a temporary password used after its lifetime
    UNBOUND = "unbound"  # the right password, but its hash is not bound to the record key


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
    # The language of the pages: "en", "zh_CN", or None for the browser's Accept-Language.
    locale: str | None = None

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


class AccountOut(UserOut):
    """A user after an administrator created them or changed their roles."""

    password_reset_id: int | None = Field(
        default=None,
        description="Set when the account holds a signing role it did not hold before: it "
        "has no usable password until a QA manager confirms this reset "
        "(POST /api/password-resets/{id}/confirm) and hands the one-time password over",
    )


class UserCreate(BaseModel):
    """An administrator's request to create a user."""

    username: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,62}$")
    full_name: str = Field(min_length=1, max_length=200)
    password: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="The first password (the user replaces it at the first sign-in); "
        "omitted for an account with a signing role (qa, qa_manager), whose first password "
        "comes from a QA manager",
    )
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
    """The result of a reset; ``temporary_password`` only when the server made it.

    For an account with a signing role nothing changes yet: ``confirmation_required`` and
    the ``reset_id`` a QA manager confirms (``POST /api/password-resets/{id}/confirm``).
    """

    username: str
    must_change_password: bool
    temporary_password: str | None = Field(
        default=None, description="Shown this once; it is stored only as a hash"
    )
    expires_at: datetime = Field(
        description="The temporary password (or the unconfirmed request) is refused after this"
    )
    confirmation_required: bool = False
    reset_id: int | None = None


class ResetRequestOut(BaseModel):
    """A reset of a signing account waiting for a QA manager's confirmation."""

    id: int
    username: str
    requested_by: str
    requested_at: datetime
    reason: str
    expires_at: datetime


class ResetConfirm(BaseModel):
    """A QA manager's confirmation: their own password again (an electronic signature)."""

    password: str = Field(min_length=1, max_length=1024)
    comment: str | None = Field(
        default=None, max_length=500, description="e.g. how the person's identity was checked"
    )


class ResetConfirmedOut(BaseModel):
    """The one-time password, shown once and only to the confirming QA manager."""

    username: str
    temporary_password: str = Field(description="Hand it to the user in person; shown once")
    expires_at: datetime
    signature: str = Field(description="The manifestation of the confirming signature")


class AttemptOut(BaseModel):
    """One recorded login attempt."""

    at: datetime
    source: str | None
    channel: Channel
    outcome: Outcome
