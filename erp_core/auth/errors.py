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


class TooManyAttemptsError(AccountLockedError):
    """The password checks already running for this account could reach the lock."""

    def __init__(self, username: str, until: datetime) -> None:
        AuthError.__init__(
            self,
            f"too many sign-in attempts for {username} are being checked right now; "
            f"try again in a moment",
        )
        self.username = username
        self.until = until


class SourceThrottledError(AuthError):
    """Too many failed password entries from one address, whatever the user names."""

    def __init__(self, source: str | None, until: datetime) -> None:
        super().__init__(
            f"too many failed sign-ins from {source or 'this address'}; sign-ins from it "
            f"are refused until {until.isoformat()}"
        )
        self.source = source
        self.until = until


class LoginBusyError(AuthError):
    """The password checks are queued for longer than the server allows: try later."""

    def __init__(self, waited_s: float) -> None:
        super().__init__(
            f"the server is busy checking other sign-ins (waited {waited_s:g} s); try again"
        )
        self.waited_s = waited_s


class PasswordChangeRequiredError(AuthError):
    """The password was set by an administrator: the user must choose their own first."""

    def __init__(self, username: str) -> None:
        super().__init__(
            f"password change required: the password of {username} is a one-time password "
            "(set by an administrator, or handed over by a QA manager); change it with "
            "POST /api/auth/password (or the web page /account/password) before doing "
            "anything else"
        )
        self.username = username


class TemporaryPasswordExpiredError(AuthError):
    """A temporary password used after its lifetime: an administrator must reset again."""

    def __init__(self, username: str) -> None:
        super().__init__(
            f"the temporary password of {username} has expired; ask an administrator for a new one"
        )
        self.username = username


class PasswordNotBoundError(AuthError):
    """The right password, but the stored hash is not bound to this server's record key.

    Raised only after the password matched, so it tells nothing to someone guessing.
    """

    def __init__(self, username: str) -> None:
        super().__init__(
            f"the stored password of {username} is not bound to this server's record key, "
            "so it is refused for sign-in and signatures. After an upgrade an administrator "
            "binds the passwords present then once with `coldtrace users bind-passwords`; "
            "otherwise it was written outside the application: have it reset and check the "
            "account's entries in the audit trail"
        )
        self.username = username


class SigningAccountPasswordError(AuthError):
    """An administrator tried to set the password of an account that signs."""

    def __init__(self, username: str) -> None:
        super().__init__(
            f"{username} holds a signing role (qa, qa_manager): its password is never set by "
            "an administrator. Omit the password; a QA manager confirms the reset and hands "
            "the one-time password over (POST /api/password-resets/{id}/confirm, or "
            "`coldtrace users confirm-reset ID`)"
        )
        self.username = username


class ResetConfirmerError(AuthError):
    """The person may not confirm this reset (the target, the requester, not a QA manager)."""

    def __init__(self, reset_id: int, username: str, why: str) -> None:
        super().__init__(f"{username} may not confirm password reset {reset_id}: {why}")
        self.reset_id = reset_id
        self.username = username
        self.why = why


class ResetStateError(AuthError):
    """The reset is no longer open (confirmed, cancelled, or expired)."""

    def __init__(self, reset_id: int, state: str) -> None:
        super().__init__(
            f"password reset {reset_id} is {state}; an administrator requests a new one"
        )
        self.reset_id = reset_id
        self.state = state
