"""Two-person resets of accounts that sign: an administrator asks, a QA manager confirms.

Separation of duties (an administrator never signs) is void if an administrator can set
or learn the password of an account that signs: reset it, use the one-time password
first, choose the "final" one, sign as QA. So the password of an account holding a
signing role (``rules.needs_confirmed_reset``) is only ever handed out like this:

1. an administrator (or the console) **requests** the reset, with a reason — nothing
   changes on the account yet (``request``);
2. a second person — an active ``qa_manager`` who is neither the account nor the
   requester — **confirms** it with an electronic signature (their own password again,
   meaning "Password reset confirmed") after checking the person's identity; only then
   is a one-time password made, and it is shown to that QA manager alone, to hand to the
   user in person (``confirm``). The user must replace it at the first sign-in.

Both steps are audited (``erp.password_resets`` and ``erp.users`` carry the audit
trigger; the confirmation is also a signature). The database refuses a confirmer who
is the target or the requester, who is not an active QA manager, or whose signature of
this request is missing (trigger ``password_resets_check``, migration 0019). A request
is refused after the temporary-password lifetime; a new request replaces an open one.
The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from erp_core.audit.keys import Keyring
from erp_core.audit.service import set_actor
from erp_core.auth import service, web_sessions
from erp_core.auth.errors import ResetConfirmerError, ResetStateError
from erp_core.auth.models import RESET_CONFIRMER_ROLE, AttemptRecorder, LoginPolicy, User
from erp_core.errors import NotFoundError
from erp_core.signatures.models import Signature
from erp_core.signatures.service import sign

Conn = psycopg.Connection[TupleRow]

MEANING = "Password reset confirmed"
RECORD_TABLE = "erp.password_resets"
_COLUMNS = "id, user_id, username, requested_by, requested_at, reason, confirmed_by, confirmed_at, cancelled_at"  # noqa: E501


@dataclass(frozen=True, slots=True)
class ResetRequest:
    """One reset of a signing account, as stored."""

    id: int
    user_id: int
    username: str
    requested_by: str
    requested_at: datetime
    reason: str
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None
    cancelled_at: datetime | None = None

    def expires_at(self, policy: LoginPolicy) -> datetime:
        """After this the request can no longer be confirmed."""
        return self.requested_at + policy.temporary_password_lifetime

    def state(self, *, now: datetime, policy: LoginPolicy) -> str:
        """``open``, ``confirmed``, ``cancelled`` or ``expired``."""
        if self.confirmed_at is not None:
            return "confirmed"
        if self.cancelled_at is not None:
            return "cancelled"
        return "expired" if now >= self.expires_at(policy) else "open"

    def content(self) -> dict[str, Any]:
        """What the confirming QA manager signs: whose reset, asked by whom, when, why."""
        return {
            "username": self.username,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A confirmed reset: the user, the one-time password (shown once), the signature."""

    user: User
    temporary_password: str
    signature: Signature


def request(
    conn: Conn, *, user: User, requested_by: str, reason: str, now: datetime
) -> ResetRequest:
    """Ask for a reset of ``user`` (a signing account); an open request is replaced.

    The caller set the acting user (the administrator, or ``cli:<os user>``). The
    account is not changed until a QA manager confirms.
    """
    conn.execute(
        "UPDATE erp.password_resets SET cancelled_at = %s"
        " WHERE user_id = %s AND confirmed_at IS NULL AND cancelled_at IS NULL",
        (now, user.id),
    )
    row = conn.execute(
        "INSERT INTO erp.password_resets (user_id, username, requested_by, requested_at, reason)"  # noqa: S608 - constant columns
        f" VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (user.id, user.username, requested_by, now, reason),
    ).fetchone()
    assert row is not None
    return _reset(row)


def get(conn: Conn, *, reset_id: int, lock: bool = False) -> ResetRequest:
    """The reset ``reset_id``; NotFoundError if there is none."""
    query = f"SELECT {_COLUMNS} FROM erp.password_resets WHERE id = %s"  # noqa: S608 - constant columns
    row = conn.execute(query + (" FOR UPDATE" if lock else ""), (reset_id,)).fetchone()
    if row is None:
        raise NotFoundError("password reset", reset_id)
    return _reset(row)


def open_requests(conn: Conn, *, now: datetime, policy: LoginPolicy) -> list[ResetRequest]:
    """The resets waiting for a QA manager (not confirmed, cancelled or expired), oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM erp.password_resets"  # noqa: S608 - constant columns
        " WHERE confirmed_at IS NULL AND cancelled_at IS NULL AND requested_at > %s"
        " ORDER BY requested_at, id",
        (now - policy.temporary_password_lifetime,),
    ).fetchall()
    return [_reset(r) for r in rows]


def confirmer_problem(reset: ResetRequest, confirmer: User) -> str | None:
    """Why ``confirmer`` may not confirm ``reset`` (None: they may) — the rule, pure."""
    if confirmer.id == reset.user_id or confirmer.username == reset.username:
        return "nobody confirms the reset of their own password"
    if confirmer.username == reset.requested_by:
        return "the person who requested the reset cannot also confirm it"
    if RESET_CONFIRMER_ROLE not in confirmer.roles or not confirmer.active:
        return f"only an active {RESET_CONFIRMER_ROLE} confirms resets of accounts that sign"
    if confirmer.must_change_password:
        return "their own password is still a one-time password: they change it first"
    return None


def confirm(  # noqa: PLR0913 - every input of a signed confirmation is explicit
    conn: Conn,
    *,
    reset_id: int,
    confirmer: User,
    password: str,
    clock: Callable[[], datetime],
    policy: LoginPolicy,
    record_attempt: AttemptRecorder,
    keyring: Keyring,
    comment: str | None = None,
    source: str | None = None,
) -> Confirmed:
    """Confirm reset ``reset_id`` as ``confirmer``, signed with their password.

    Returns the account's new one-time password, for the confirmer only.

    ResetConfirmerError if they may not, ResetStateError if it is not open, and the
    signature's errors for a wrong password (recorded, counted towards the lock).
    """
    now = clock()
    reset = get(conn, reset_id=reset_id, lock=True)
    state = reset.state(now=now, policy=policy)
    if state != "open":
        raise ResetStateError(reset_id, state)
    why = confirmer_problem(reset, confirmer)
    if why is not None:
        raise ResetConfirmerError(reset_id, confirmer.username, why)
    set_actor(
        conn,
        user=confirmer.username,
        reason=f"password reset {reset_id} of {reset.username} confirmed",
    )
    signature = sign(
        conn,
        user=confirmer,
        password=password,
        record_table=RECORD_TABLE,
        record_key={"id": reset_id},
        record_content=reset.content(),
        meaning=MEANING,
        clock=lambda: now,
        policy=policy,
        record_attempt=record_attempt,
        signing_key=keyring.current,
        keyring=keyring,
        comment=comment,
        source=source,
    )
    conn.execute(
        "UPDATE erp.password_resets SET confirmed_by = %s, confirmed_by_id = %s,"
        " confirmed_at = %s, signature_id = %s WHERE id = %s",
        (confirmer.username, confirmer.id, now, signature.id, reset_id),
    )
    target = service.get_user(conn, username=reset.username)
    temporary = service.make_temporary_password(target)
    user = service.set_password(
        conn,
        username=target.username,
        password=temporary,
        now=now,
        keyring=keyring,
        must_change=True,
    )
    web_sessions.end_all(conn, user=user, at=now, reason="password_changed")
    return Confirmed(user=user, temporary_password=temporary, signature=signature)


def withdraw_password(conn: Conn, *, user: User, keyring: Keyring, now: datetime) -> User:
    """Replace ``user``'s password with one nobody knows, and end their sessions.

    For an account that starts to sign: it has no usable password until a confirmed reset.
    """
    unknown = service.make_temporary_password(user) + service.make_temporary_password(user)
    # 192 random bits, never shown: nobody knows it, so nobody signs with it
    changed = service.set_password(
        conn, username=user.username, password=unknown, now=now, keyring=keyring, must_change=True
    )
    web_sessions.end_all(conn, user=changed, at=now, reason="password_changed")
    return changed


def _reset(row: tuple[Any, ...]) -> ResetRequest:
    return ResetRequest(
        id=int(row[0]),
        user_id=int(row[1]),
        username=str(row[2]),
        requested_by=str(row[3]),
        requested_at=row[4],
        reason=str(row[5]),
        confirmed_by=row[6],
        confirmed_at=row[7],
        cancelled_at=row[8],
    )
