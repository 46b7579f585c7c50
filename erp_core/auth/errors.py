"""Access errors: one root under ``ErpError``; the API layer turns them into 401/403/409/422."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from erp_core.errors import ErpError


class AuthError(ErpError):
    """Root of every access-control error."""


class InvalidCredentialsError(AuthError):
    """Unknown user or wrong password (deliberately not said which)."""

    def __init__(self) -> None:
        super().__init__("incorrect username or password")


class AccountLockedError(AuthError):
    """Too many failed attempts: the account is locked until ``until``."""

    def __init__(self, username: str, until: datetime) -> None:
        super().__init__(
            f"account {username} is locked after too many failed attempts until {until.isoformat()}"
        )
        self.username = username
        self.until = until


class AccountDisabledError(AuthError):
    """The account exists but has been disabled by an administrator."""

    def __init__(self, username: str) -> None:
        super().__init__(f"account {username} is disabled")
        self.username = username


class InvalidTokenError(AuthError):
    """A bearer token that is malformed, forged, or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid access token: {reason}")
        self.reason = reason


class PermissionDeniedError(AuthError):
    """The user holds none of the roles an action needs."""

    def __init__(self, username: str, required: Iterable[str]) -> None:
        self.required = tuple(sorted(required))
        super().__init__(f"user {username} needs one of the roles: {', '.join(self.required)}")
        self.username = username


class SeparationOfDutiesError(AuthError):
    """A role set that lets one person administer accounts and sign releases."""

    def __init__(self, username: str, roles: Iterable[str]) -> None:
        self.roles = tuple(sorted(roles))
        super().__init__(
            f"separation of duties: {username} cannot hold admin together with qa or "
            f"qa_manager (requested: {', '.join(self.roles)})"
        )
        self.username = username


class UserExistsError(AuthError):
    """A username that is already taken (usernames are never reused)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"user {username} already exists; usernames are never reused")
        self.username = username


class WeakPasswordError(AuthError):
    """A new password that does not meet the password rules."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"password rejected: {reason}")
        self.reason = reason
