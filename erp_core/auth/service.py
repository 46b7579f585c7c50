"""Users, roles and password checks in the database; the caller owns the transaction.

Changes to users and roles are audited by the database (``erp.audit_table``), so the
caller sets the acting user first with ``erp_core.audit.service.set_actor``. Failed
attempts go through an ``AttemptRecorder`` (a transaction of its own) so that they stay
recorded when the request that made them is rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import TupleRow

from erp_core.auth import passwords, rules
from erp_core.auth.errors import (
    AccountDisabledError,
    AccountLockedError,
    InvalidCredentialsError,
    SeparationOfDutiesError,
    UserExistsError,
    WeakPasswordError,
)
from erp_core.auth.models import (
    AttemptRecorder,
    Channel,
    LoginAttempt,
    LoginPolicy,
    Outcome,
    Role,
    User,
)
from erp_core.errors import NotFoundError

Conn = psycopg.Connection[TupleRow]

_USER_SELECT = """
    SELECT u.id, u.username, u.full_name, u.active, u.created_at, u.password_hash,
           coalesce(array_agg(r.role) FILTER (WHERE r.role IS NOT NULL), '{}')
    FROM erp.users AS u LEFT JOIN erp.user_roles AS r ON r.user_id = u.id
"""


@dataclass(frozen=True, slots=True)
class UserStatus:
    """A user with the login-limit state an administrator sees."""

    user: User
    locked_until: datetime | None
    recent_failures: int


def find_user(conn: Conn, *, username: str) -> User | None:
    """The user called ``username``, or None."""
    found = _fetch(conn, username)
    return found[0] if found else None


def get_user(conn: Conn, *, username: str) -> User:
    """The user called ``username``; NotFoundError if there is none."""
    user = find_user(conn, username=username)
    if user is None:
        raise NotFoundError("user", username)
    return user


def list_users(conn: Conn, *, now: datetime, policy: LoginPolicy) -> list[UserStatus]:
    """Every user (disabled ones too) with lock state, ordered by username."""
    rows = conn.execute(f"{_USER_SELECT} GROUP BY u.id ORDER BY u.username").fetchall()
    since = now - rules.history_span(policy)
    history: dict[str, list[LoginAttempt]] = {}
    for attempt in _attempts(conn, username=None, since=since):
        history.setdefault(attempt.username, []).append(attempt)
    result = []
    for row in rows:
        user = _user(row)
        seen = history.get(user.username, [])
        result.append(
            UserStatus(
                user=user,
                locked_until=rules.locked_until(seen, now=now, policy=policy),
                recent_failures=rules.recent_failures(seen, now=now, policy=policy),
            )
        )
    return result


def create_user(  # noqa: PLR0913 - one keyword per field of the new user
    conn: Conn,
    *,
    username: str,
    full_name: str,
    password: str,
    roles: Iterable[Role],
    now: datetime,
) -> User:
    """Create an active user with ``roles``; the caller must have called ``set_actor``."""
    wanted = frozenset(roles)
    if rules.separation_conflict(wanted):
        raise SeparationOfDutiesError(username, wanted)
    problem = rules.password_problem(password, username=username)
    if problem is not None:
        raise WeakPasswordError(problem)
    try:
        row = conn.execute(
            "INSERT INTO erp.users (username, full_name, password_hash, created_at, "
            "password_changed_at) VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (username, full_name, passwords.hash_password(password), now, now),
        ).fetchone()
    except pg_errors.UniqueViolation as err:
        raise UserExistsError(username) from err
    if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
        raise RuntimeError("INSERT returned no row")
    _grant(conn, user_id=int(row[0]), username=username, roles=wanted, now=now)
    return get_user(conn, username=username)


def set_roles(conn: Conn, *, username: str, roles: Iterable[Role], now: datetime) -> User:
    """Replace the roles of ``username``; separation of duties is checked here and in the DB."""
    wanted = frozenset(roles)
    if rules.separation_conflict(wanted):
        raise SeparationOfDutiesError(username, wanted)
    user = get_user(conn, username=username)
    gone = sorted(user.roles - wanted)
    if gone:
        conn.execute(
            "DELETE FROM erp.user_roles WHERE user_id = %s AND role = ANY(%s)",
            (user.id, [str(r) for r in gone]),
        )
    _grant(conn, user_id=user.id, username=username, roles=wanted - user.roles, now=now)
    return get_user(conn, username=username)


def set_active(conn: Conn, *, username: str, active: bool) -> User:
    """Enable or disable ``username`` (users are never deleted)."""
    user = get_user(conn, username=username)
    conn.execute("UPDATE erp.users SET active = %s WHERE id = %s", (active, user.id))
    return get_user(conn, username=username)


def set_password(conn: Conn, *, username: str, password: str, now: datetime) -> None:
    """Replace the password of ``username`` (the hash change is audited, redacted)."""
    user = get_user(conn, username=username)
    problem = rules.password_problem(password, username=username)
    if problem is not None:
        raise WeakPasswordError(problem)
    conn.execute(
        "UPDATE erp.users SET password_hash = %s, password_changed_at = %s WHERE id = %s",
        (passwords.hash_password(password), now, user.id),
    )


def record_attempt(conn: Conn, *, attempt: LoginAttempt) -> None:
    """Append one attempt to ``erp.login_attempts``."""
    conn.execute(
        "INSERT INTO erp.login_attempts (username, at, source, channel, outcome) "
        "VALUES (%s, %s, %s, %s, %s)",
        (attempt.username, attempt.at, attempt.source, attempt.channel, attempt.outcome),
    )


def attempts_since(conn: Conn, *, username: str, since: datetime) -> list[LoginAttempt]:
    """The attempts for ``username`` at or after ``since``, oldest first."""
    return _attempts(conn, username=username, since=since)


def locked_until(
    conn: Conn, *, username: str, now: datetime, policy: LoginPolicy
) -> datetime | None:
    """When the lock on ``username`` in force at ``now`` ends, or None."""
    since = now - rules.history_span(policy)
    return rules.locked_until(
        attempts_since(conn, username=username, since=since), now=now, policy=policy
    )


def authenticate(  # noqa: PLR0913 - every input of a login is explicit
    conn: Conn,
    *,
    username: str,
    password: str,
    source: str | None,
    channel: Channel,
    now: datetime,
    policy: LoginPolicy,
    record: AttemptRecorder,
) -> User:
    """The user if ``password`` is right and the account active and unlocked; else AuthError.

    Every attempt is recorded: failures through ``record`` (own transaction), success on
    ``conn``. A locked account is refused without checking the password.
    """

    def attempt(outcome: Outcome) -> LoginAttempt:
        return LoginAttempt(
            username=username, at=now, source=source, channel=channel, outcome=outcome
        )

    until = locked_until(conn, username=username, now=now, policy=policy)
    if until is not None:
        record(attempt(Outcome.LOCKED))
        raise AccountLockedError(username, until)
    found = _fetch(conn, username)
    if found is None:
        passwords.burn_time(password)
        record(attempt(Outcome.UNKNOWN_USER))
        raise InvalidCredentialsError
    user, password_hash = found
    if not passwords.check_password(password_hash, password):
        record(attempt(Outcome.BAD_PASSWORD))
        raise InvalidCredentialsError
    if not user.active:
        record(attempt(Outcome.DISABLED))
        raise AccountDisabledError(username)
    record_attempt(conn, attempt=attempt(Outcome.SUCCESS))
    return user


def _grant(
    conn: Conn, *, user_id: int, username: str, roles: Iterable[Role], now: datetime
) -> None:
    try:
        for role in sorted(roles):
            conn.execute(
                "INSERT INTO erp.user_roles (user_id, role, granted_at) VALUES (%s, %s, %s)",
                (user_id, str(role), now),
            )
    except pg_errors.CheckViolation as err:
        if err.diag.constraint_name == "separation_of_duties":
            raise SeparationOfDutiesError(username, roles) from err
        raise


def _fetch(conn: Conn, username: str) -> tuple[User, str] | None:
    row = conn.execute(
        f"{_USER_SELECT} WHERE u.username = %s GROUP BY u.id", (username,)
    ).fetchone()
    return None if row is None else (_user(row), str(row[5]))


def _user(row: Sequence[object]) -> User:
    roles = row[6]
    assert isinstance(roles, list)
    created = row[4]
    assert isinstance(created, datetime)
    return User(
        id=int(str(row[0])),
        username=str(row[1]),
        full_name=str(row[2]),
        active=bool(row[3]),
        created_at=created,
        roles=frozenset(Role(r) for r in roles),
    )


def _attempts(conn: Conn, *, username: str | None, since: datetime) -> list[LoginAttempt]:
    rows = conn.execute(
        "SELECT username, at, source, channel, outcome FROM erp.login_attempts "
        "WHERE at >= %s AND (%s::text IS NULL OR username = %s) ORDER BY at, id",
        (since, username, username),
    ).fetchall()
    return [
        LoginAttempt(username=u, at=at, source=src, channel=Channel(ch), outcome=Outcome(out))
        for u, at, src, ch, out in rows
    ]
