"""Users, roles and passwords in the database; the caller owns the transaction.

Changes to users and roles are audited by the database (``erp.audit_table``; the hash
and its binding are redacted), so the caller sets the acting user first with
``erp_core.audit.service.set_actor``. Every stored hash is bound to the record key
(``erp_core.auth.binding``): the functions that set a password take the key ring, and a
password whose binding does not verify is refused (``Outcome.UNBOUND``). Failed
attempts go through an ``AttemptRecorder`` (a transaction of its own) so that they stay
recorded when the request that made them is rolled back. The sign-in path checks
passwords through ``erp_core.auth.gate`` instead of ``authenticate``, so that no
connection is held while argon2 runs.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import TupleRow

from erp_core.audit.keys import Keyring
from erp_core.auth import attempts, binding, passwords, rules
from erp_core.auth.binding import StoredPassword
from erp_core.auth.errors import (
    AccountDisabledError,
    AccountLockedError,
    InvalidCredentialsError,
    PasswordNotBoundError,
    SeparationOfDutiesError,
    SigningAccountPasswordError,
    SourceThrottledError,
    TemporaryPasswordExpiredError,
    TooManyAttemptsError,
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
log = logging.getLogger(__name__)

# A generated temporary password: 16 characters of ~6 bits each (96 bits).
TEMPORARY_PASSWORD_BYTES = 12

_USER_SELECT = """
    SELECT u.id, u.username, u.full_name, u.active, u.created_at, u.password_hash,
           coalesce(array_agg(r.role) FILTER (WHERE r.role IS NOT NULL), '{}'),
           u.must_change_password, u.password_changed_at,
           u.password_key_id, u.password_binding, u.password_serial, u.locale
    FROM erp.users AS u LEFT JOIN erp.user_roles AS r ON r.user_id = u.id
"""

# Kept here for callers that record attempts with the user functions.
record_attempt = attempts.record_attempt


@dataclass(frozen=True, slots=True)
class UserStatus:
    """A user with the login-limit state an administrator sees."""

    user: User
    locked_until: datetime | None
    recent_failures: int


def find_user(conn: Conn, *, username: str) -> User | None:
    """The user called ``username``, or None."""
    found = fetch(conn, username)
    return found[0] if found else None


def get_user(conn: Conn, *, username: str) -> User:
    """The user called ``username``; NotFoundError if there is none."""
    user = find_user(conn, username=username)
    if user is None:
        raise NotFoundError("user", username)
    return user


def fetch(conn: Conn, username: str) -> tuple[User, StoredPassword] | None:
    """The user called ``username`` and their stored password record, or None."""
    row = conn.execute(
        f"{_USER_SELECT} WHERE u.username = %s GROUP BY u.id", (username,)
    ).fetchone()
    if row is None:
        return None
    key_id, mac = row[9], row[10]
    bound = None if key_id is None or mac is None else binding.Binding(str(key_id), str(mac))
    return _user(row), StoredPassword(str(row[5]), bound, int(str(row[11])))


def binding_problem(keyring: Keyring, user: User, stored: StoredPassword) -> binding.Problem | None:
    """Why ``user``'s stored password is not bound by ``keyring`` (None: it is)."""
    changed = user.password_changed_at
    if changed is None:  # pragma: no cover - NOT NULL in the database
        return binding.Problem.MISMATCH
    record = binding.PasswordRecord(
        user_id=user.id,
        username=user.username,
        password_hash=stored.password_hash,
        changed_at=changed,
        must_change=user.must_change_password,
        serial=stored.serial,
    )
    found = binding.problem(keyring, record, stored.binding)
    if found is not None:
        log.warning(
            "password of %s refused: %s", user.username, binding.explain(found, stored.binding)
        )
    return found


def list_users(conn: Conn, *, now: datetime, policy: LoginPolicy) -> list[UserStatus]:
    """Every user (disabled ones too) with lock state, ordered by username."""
    rows = conn.execute(f"{_USER_SELECT} GROUP BY u.id ORDER BY u.username").fetchall()
    since = now - rules.history_span(policy)
    history: dict[str, list[LoginAttempt]] = {}
    for attempt in attempts.attempts_since(conn, username=None, since=since):
        history.setdefault(attempt.username, []).append(attempt)
    result = []
    for row in rows:
        user = _user(row)
        changed = user.password_changed_at
        seen = [
            a
            for a in history.get(user.username, [])
            if a.outcome is not Outcome.LOCKED and (changed is None or a.at >= changed)
        ]
        state = rules.lock_state(seen, now=now, policy=policy)
        result.append(
            UserStatus(
                user=user,
                locked_until=state.locked_until,
                recent_failures=state.recent_failures,
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
    keyring: Keyring,
    must_change_password: bool = False,
) -> User:
    """Create an active user with ``roles``; the caller must have called ``set_actor``.

    The hash is bound with ``keyring``'s current key. With ``must_change_password`` the
    user must choose their own password at the first sign-in. This sets the password
    whatever the roles: administrators go through ``erp_core.auth.accounts``, which
    gives an account that signs no password of the administrator's (the bootstrap at
    the console, the demo and tests call this directly).
    """
    wanted = frozenset(roles)
    if rules.separation_conflict(wanted):
        raise SeparationOfDutiesError(username, wanted)
    problem = rules.password_problem(password, username=username, full_name=full_name)
    if problem is not None:
        raise WeakPasswordError(problem)
    try:
        row = conn.execute(
            "INSERT INTO erp.users (username, full_name, password_hash, created_at, "
            "password_changed_at, must_change_password) VALUES (%s, %s, %s, %s, %s, %s) "
            "RETURNING id",
            (
                username,
                full_name,
                passwords.hash_password(password),
                now,
                now,
                must_change_password,
            ),
        ).fetchone()
    except pg_errors.UniqueViolation as err:
        raise UserExistsError(username) from err
    if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
        raise RuntimeError("INSERT returned no row")
    _bind(
        conn,
        user_id=int(row[0]),
        username=username,
        keyring=keyring,
        now=now,
        must_change=must_change_password,
    )
    _grant(conn, user_id=int(row[0]), username=username, roles=wanted, now=now)
    return get_user(conn, username=username)


def _bind(  # noqa: PLR0913 - the bound fields are explicit
    conn: Conn, *, user_id: int, username: str, keyring: Keyring, now: datetime, must_change: bool
) -> None:
    """Bind the hash just inserted (the id is known only after the INSERT)."""
    row = conn.execute(
        "SELECT password_hash, password_serial FROM erp.users WHERE id = %s FOR UPDATE",
        (user_id,),
    ).fetchone()
    assert row is not None
    record = binding.PasswordRecord(
        user_id=user_id,
        username=username,
        password_hash=str(row[0]),
        changed_at=now,
        must_change=must_change,
        serial=int(row[1]) + 1,
    )
    made = binding.bind(keyring.current, record)
    conn.execute(
        "UPDATE erp.users SET password_serial = %s, password_key_id = %s,"
        " password_binding = %s WHERE id = %s",
        (record.serial, made.key_id, made.mac, user_id),
    )


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


def check_new_password(user: User, password: str) -> None:
    """WeakPasswordError if ``password`` may not become ``user``'s password."""
    problem = rules.password_problem(password, username=user.username, full_name=user.full_name)
    if problem is not None:
        raise WeakPasswordError(problem)


def store_password(  # noqa: PLR0913 - every field of the new password record is explicit
    conn: Conn,
    *,
    user: User,
    password_hash: str,
    now: datetime,
    must_change: bool,
    keyring: Keyring,
) -> None:
    """Store a new hash for ``user``, bound with ``keyring``'s current key.

    Audited (redacted), the serial one higher; the caller checked the policy.
    """
    row = conn.execute(
        "SELECT password_serial FROM erp.users WHERE id = %s FOR UPDATE", (user.id,)
    ).fetchone()
    if row is None:
        raise NotFoundError("user", user.username)
    record = binding.PasswordRecord(
        user_id=user.id,
        username=user.username,
        password_hash=password_hash,
        changed_at=now,
        must_change=must_change,
        serial=int(row[0]) + 1,
    )
    made = binding.bind(keyring.current, record)
    conn.execute(
        "UPDATE erp.users SET password_hash = %s, password_changed_at = %s,"
        " must_change_password = %s, password_serial = %s, password_key_id = %s,"
        " password_binding = %s WHERE id = %s",
        (password_hash, now, must_change, record.serial, made.key_id, made.mac, user.id),
    )


def set_password(  # noqa: PLR0913 - every field of the new password record is explicit
    conn: Conn,
    *,
    username: str,
    password: str,
    now: datetime,
    keyring: Keyring,
    must_change: bool = False,
) -> User:
    """Check the policy, hash, bind and store ``password`` for ``username``; the updated user."""
    user = get_user(conn, username=username)
    check_new_password(user, password)
    store_password(
        conn,
        user=user,
        password_hash=passwords.hash_password(password),
        now=now,
        must_change=must_change,
        keyring=keyring,
    )
    return get_user(conn, username=username)


def make_temporary_password(user: User) -> str:
    """A random one-time password (~96 bits) that passes the policy for ``user``."""
    made = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
    while rules.password_problem(made, username=user.username, full_name=user.full_name):
        made = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)  # (almost never)
    return made


def reset_password(
    conn: Conn,
    *,
    username: str,
    temporary_password: str | None,
    now: datetime,
    keyring: Keyring,
) -> tuple[User, str | None]:
    """An administrator's one-step reset: a one-time password the user must replace.

    Without ``temporary_password`` a random one is made and returned (shown once, stored
    only as a hash); the caller must have called ``set_actor`` with the administrator.
    Only for accounts without a signing role: SigningAccountPasswordError otherwise (a
    QA manager confirms their resets, ``erp_core.auth.resets``).
    """
    current = get_user(conn, username=username)
    if rules.needs_confirmed_reset(current.roles):
        raise SigningAccountPasswordError(username)
    made = make_temporary_password(current) if temporary_password is None else None
    password = temporary_password if temporary_password is not None else str(made)
    user = set_password(
        conn, username=username, password=password, now=now, keyring=keyring, must_change=True
    )
    return user, made


def temporary_expired(user: User, *, now: datetime, policy: LoginPolicy) -> bool:
    """True if ``user`` holds a temporary password older than its lifetime."""
    changed = user.password_changed_at
    return (
        user.must_change_password
        and changed is not None
        and now >= changed + policy.temporary_password_lifetime
    )


def refusal_error(refusal: rules.Refusal, *, username: str, source: str | None) -> Exception:
    """The error a refused password entry raises."""
    match refusal.kind:
        case rules.RefusalKind.SOURCE_THROTTLED:
            return SourceThrottledError(source, refusal.until)
        case rules.RefusalKind.BUSY:
            return TooManyAttemptsError(username, refusal.until)
        case _:
            return AccountLockedError(username, refusal.until)


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
    keyring: Keyring,
) -> User:
    """The user if ``password`` is right and the account active and unlocked; else AuthError.

    For password entries inside a transaction (signatures): the entries of ``username``
    are serialised until the caller's transaction ends, so concurrent wrong passwords
    count exactly. Failures are recorded through ``record`` (own transaction), success
    on ``conn``. A refused entry is not checked. The sign-in path uses
    ``erp_core.auth.gate`` instead, which holds no connection while argon2 runs.
    """

    def attempt(outcome: Outcome) -> LoginAttempt:
        return LoginAttempt(
            username=username, at=now, source=source, channel=channel, outcome=outcome
        )

    attempts.lock_username(conn, username)
    found = fetch(conn, username)
    seen = attempts.history(
        conn,
        username=username,
        source=source,
        now=now,
        policy=policy,
        password_changed_at=found[0].password_changed_at if found else None,
    )
    refused = rules.refusal(seen, source=source, now=now, policy=policy)
    if refused is not None:
        if refused.kind is not rules.RefusalKind.SOURCE_THROTTLED:
            record(attempt(Outcome.LOCKED))
        raise refusal_error(refused, username=username, source=source)
    if found is None:
        passwords.burn_time(password)
        record(attempt(Outcome.UNKNOWN_USER))
        raise InvalidCredentialsError
    user, stored = found
    password_ok = passwords.check_password(stored.password_hash, password)
    bound = password_ok and binding_problem(keyring, user, stored) is None
    outcome = outcome_of(user, password_ok=password_ok, bound=bound, now=now, policy=policy)
    if outcome is not Outcome.SUCCESS:
        record(attempt(outcome))
        raise outcome_error(outcome, username=username)
    record_attempt(conn, attempt=attempt(Outcome.SUCCESS))
    return user


def outcome_of(
    user: User, *, password_ok: bool, bound: bool, now: datetime, policy: LoginPolicy
) -> Outcome:
    """The outcome of a checked password entry for an existing ``user``.

    ``bound``: the stored hash is bound to the record key (checked only for the right
    password, so a guess learns nothing about it).
    """
    if not password_ok:
        return Outcome.BAD_PASSWORD
    if not bound:
        return Outcome.UNBOUND
    if not user.active:
        return Outcome.DISABLED
    if temporary_expired(user, now=now, policy=policy):
        return Outcome.EXPIRED
    return Outcome.SUCCESS


def outcome_error(outcome: Outcome, *, username: str) -> Exception:
    """The error a failed, checked password entry raises."""
    match outcome:
        case Outcome.DISABLED:
            return AccountDisabledError(username)
        case Outcome.EXPIRED:
            return TemporaryPasswordExpiredError(username)
        case Outcome.UNBOUND:
            return PasswordNotBoundError(username)
        case _:
            return InvalidCredentialsError()


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


def _user(row: Sequence[object]) -> User:
    roles = row[6]
    assert isinstance(roles, list)
    created = row[4]
    assert isinstance(created, datetime)
    changed = row[8]
    assert changed is None or isinstance(changed, datetime)
    return User(
        id=int(str(row[0])),
        username=str(row[1]),
        full_name=str(row[2]),
        active=bool(row[3]),
        created_at=created,
        roles=frozenset(Role(r) for r in roles),
        must_change_password=bool(row[7]),
        password_changed_at=changed,
        locale=None if row[12] is None else str(row[12]),
    )


def set_locale(conn: Conn, *, user_id: int, locale: str | None) -> None:
    """The language of the user's pages (``en``, ``zh_CN``), or None: as the browser asks."""
    conn.execute("UPDATE erp.users SET locale = %s WHERE id = %s", (locale, user_id))


def attempts_since(conn: Conn, *, username: str, since: datetime) -> list[LoginAttempt]:
    """The attempts for ``username`` at or after ``since``, oldest first."""
    return attempts.attempts_since(conn, username=username, since=since)
