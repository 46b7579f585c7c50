"""Password entries in the database, as the limiting rules read them; caller's transaction.

The history of attempts (``erp.login_attempts``) and the checks admitted but not
finished (``erp.login_checks``).

``admit`` and ``settle`` are the two short transactions around one password check of the
sign-in path (``erp_core.auth.gate``): ``admit`` serialises per username and per source
with transaction-level advisory locks, decides with ``rules.refusal`` and either records
the refusal or reserves a check; the argon2 check then runs with no connection held, and
``settle`` records the outcome and drops the reservation. A reservation counts as a
failure until it is settled, so N concurrent wrong passwords let exactly the limit through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import TupleRow

from erp_core.auth import rules
from erp_core.auth.binding import StoredPassword
from erp_core.auth.models import Channel, LoginAttempt, LoginPolicy, Outcome, User

Conn = psycopg.Connection[TupleRow]

# Advisory-lock namespaces (two-key form, so no clash with single-key locks elsewhere).
USER_LOCK = 0x6C6F6775  # "logu"
SOURCE_LOCK = 0x6C6F6773  # "logs"
# A reservation older than this was left by a killed process: ignored and removed.
STALE_CHECK = timedelta(minutes=1)

_ATTEMPT_COLUMNS = "username, at, source, channel, outcome"


@dataclass(frozen=True, slots=True)
class Admission:
    """A password check that may go ahead: its reservation and the stored user, if any."""

    check_id: int
    username: str
    source: str | None
    channel: Channel
    user: User | None
    stored: StoredPassword | None


def lock_username(conn: Conn, username: str) -> None:
    """Serialise password entries of ``username`` until this transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (USER_LOCK, username))


def lock_source(conn: Conn, source: str | None) -> None:
    """Serialise password entries from ``source`` until this transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (SOURCE_LOCK, source or ""))


def record_attempt(conn: Conn, *, attempt: LoginAttempt) -> None:
    """Append one attempt to ``erp.login_attempts``."""
    conn.execute(
        f"INSERT INTO erp.login_attempts ({_ATTEMPT_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",  # noqa: S608 - constant column list
        (attempt.username, attempt.at, attempt.source, attempt.channel, attempt.outcome),
    )


def attempts_since(conn: Conn, *, username: str | None, since: datetime) -> list[LoginAttempt]:
    """The attempts for ``username`` (every user if None) at or after ``since``, oldest first."""
    rows = conn.execute(
        f"SELECT {_ATTEMPT_COLUMNS} FROM erp.login_attempts "  # noqa: S608 - constant column list
        "WHERE at >= %s AND (%s::text IS NULL OR username = %s) ORDER BY at, id",
        (since, username, username),
    ).fetchall()
    return [_attempt(row) for row in rows]


def history(  # noqa: PLR0913 - every input of the rules is explicit
    conn: Conn,
    *,
    username: str,
    source: str | None,
    now: datetime,
    policy: LoginPolicy,
    password_changed_at: datetime | None = None,
) -> rules.LoginHistory:
    """What ``rules.refusal`` needs for one entry of ``username`` from ``source`` at ``now``.

    Attempts before the user's last password change do not count against the new one
    (an administrator's reset lifts the locks).
    """
    since = now - rules.history_span(policy)
    user_since = max(since, password_changed_at) if password_changed_at else since
    user_rows = conn.execute(
        f"SELECT {_ATTEMPT_COLUMNS} FROM erp.login_attempts "  # noqa: S608 - constant column list
        "WHERE username = %s AND at >= %s AND outcome <> 'locked' ORDER BY at, id",
        (username, user_since),
    ).fetchall()
    source_rows = conn.execute(
        f"SELECT {_ATTEMPT_COLUMNS} FROM erp.login_attempts "  # noqa: S608 - constant column list
        "WHERE source IS NOT DISTINCT FROM %s AND at >= %s AND outcome <> 'success' "
        "ORDER BY at, id",
        (source, since),
    ).fetchall()
    pending = conn.execute(
        "SELECT count(*) FILTER (WHERE username = %s AND source IS NOT DISTINCT FROM %s),"
        " count(*) FILTER (WHERE username = %s),"
        " count(*) FILTER (WHERE source IS NOT DISTINCT FROM %s)"
        " FROM erp.login_checks WHERE started_at > %s",
        (username, source, username, source, now - STALE_CHECK),
    ).fetchone()
    known = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM erp.login_attempts WHERE username = %s"
        " AND source IS NOT DISTINCT FROM %s AND outcome = 'success' AND at >= %s AND at <= %s)",
        (username, source, now - policy.known_source_age, now),
    ).fetchone()
    assert pending is not None
    assert known is not None
    return rules.LoginHistory(
        user_attempts=[_attempt(r) for r in user_rows],
        source_attempts=[_attempt(r) for r in source_rows],
        pending_pair=int(pending[0]),
        pending_user=int(pending[1]),
        pending_source=int(pending[2]),
        known_source=bool(known[0]),
    )


def admit(  # noqa: PLR0913 - every input of one password entry is explicit
    conn: Conn,
    *,
    username: str,
    source: str | None,
    channel: Channel,
    now: datetime,
    policy: LoginPolicy,
    found: tuple[User, StoredPassword] | None,
) -> Admission | rules.Refusal:
    """Decide one password entry: a reservation to check it, or the refusal (recorded).

    ``found`` is the stored user and password record (``service.fetch``) read in this transaction
    after ``lock_username``; the caller commits either way.
    """
    conn.execute("DELETE FROM erp.login_checks WHERE started_at <= %s", (now - STALE_CHECK,))
    user = found[0] if found else None
    seen = history(
        conn,
        username=username,
        source=source,
        now=now,
        policy=policy,
        password_changed_at=user.password_changed_at if user else None,
    )
    refused = rules.refusal(seen, source=source, now=now, policy=policy)
    if refused is not None:
        if refused.kind is not rules.RefusalKind.SOURCE_THROTTLED:
            # A throttled source is not recorded per attempt, so a flood from one
            # address cannot fill the table; its refusals are counted in the metrics.
            record_attempt(
                conn,
                attempt=LoginAttempt(username, now, source, channel, Outcome.LOCKED),
            )
        return refused
    row = conn.execute(
        "INSERT INTO erp.login_checks (username, source, started_at) VALUES (%s, %s, %s)"
        " RETURNING id",
        (username, source, now),
    ).fetchone()
    assert row is not None
    return Admission(
        check_id=int(row[0]),
        username=username,
        source=source,
        channel=channel,
        user=user,
        stored=found[1] if found else None,
    )


def settle(conn: Conn, *, admission: Admission, outcome: Outcome | None, now: datetime) -> None:
    """Record the outcome of an admitted check (None: it never ran) and drop its reservation.

    Under the same locks as ``admit``: otherwise an admission could read the attempts
    before this commits and the reservations after, miss this check in both, and let
    one guess more than the limit through (seen under load: 6 of 20 against 5).
    """
    lock_username(conn, admission.username)
    lock_source(conn, admission.source)
    if outcome is not None:
        record_attempt(
            conn,
            attempt=LoginAttempt(
                admission.username, now, admission.source, admission.channel, outcome
            ),
        )
    conn.execute("DELETE FROM erp.login_checks WHERE id = %s", (admission.check_id,))


def _attempt(row: Sequence[object]) -> LoginAttempt:
    username, at, source, channel, outcome = row
    assert isinstance(at, datetime)
    return LoginAttempt(
        username=str(username),
        at=at,
        source=None if source is None else str(source),
        channel=Channel(str(channel)),
        outcome=Outcome(str(outcome)),
    )
