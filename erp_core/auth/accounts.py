"""Account administration that keeps administrators away from the passwords of signers.

The API (``/api/users…``) and the CLI (``coldtrace users …``) both go through here, so
they follow one rule (``rules.needs_confirmed_reset``): an account that holds a signing
role (qa, qa_manager) never gets a password from an administrator —

* **created** with a signing role: no password is accepted; the account gets one nobody
  knows and a reset request that a QA manager confirms (``erp_core.auth.resets``);
* **granted** a signing role it did not hold: its password (which an administrator may
  know — they set it for an account without one) is withdrawn the same way;
* **reset**: a request, confirmed by a QA manager, never the one-step reset.

Accounts without a signing role keep the one-step reset (a one-time password for the
administrator to hand over). The only exception is the bootstrap at the server's
console (``bootstrap_allowed``): when no *other* active QA manager exists, nobody could
confirm, so ``coldtrace users add`` / ``reset-password`` let the person type their own
password there. ``bind_passwords`` binds the hashes present at the upgrade to 0019.
The caller owns the transaction and sets the acting user.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from erp_core.audit.keys import Keyring
from erp_core.auth import binding, resets, rules, service, web_sessions
from erp_core.auth.errors import (
    SeparationOfDutiesError,
    SigningAccountPasswordError,
    WeakPasswordError,
)
from erp_core.auth.models import RESET_CONFIRMER_ROLE, Role, User

Conn = psycopg.Connection[TupleRow]


@dataclass(frozen=True, slots=True)
class Reset:
    """What a reset did: a one-time password (one-step), or a request to confirm."""

    user: User
    temporary_password: str | None
    request: resets.ResetRequest | None


def create_account(  # noqa: PLR0913 - one keyword per field of the new account
    conn: Conn,
    *,
    username: str,
    full_name: str,
    password: str | None,
    roles: Iterable[Role],
    requested_by: str,
    reason: str,
    now: datetime,
    keyring: Keyring,
    must_change_password: bool = True,
) -> tuple[User, resets.ResetRequest | None]:
    """Create a user the rule's way; with a signing role, the reset a QA manager confirms."""
    wanted = frozenset(roles)
    if rules.separation_conflict(wanted):
        raise SeparationOfDutiesError(username, wanted)
    if not rules.needs_confirmed_reset(wanted):
        if password is None:
            raise WeakPasswordError("an account without a signing role needs a first password")
        user = service.create_user(
            conn,
            username=username,
            full_name=full_name,
            password=password,
            roles=wanted,
            now=now,
            keyring=keyring,
            must_change_password=must_change_password,
        )
        return user, None
    if password is not None:
        raise SigningAccountPasswordError(username)
    user = service.create_user(
        conn,
        username=username,
        full_name=full_name,
        password=_unknown_password(username=username, full_name=full_name),
        roles=wanted,
        now=now,
        keyring=keyring,
        must_change_password=True,
    )
    return user, resets.request(conn, user=user, requested_by=requested_by, reason=reason, now=now)


def set_roles(  # noqa: PLR0913 - every input of the change is explicit
    conn: Conn,
    *,
    username: str,
    roles: Iterable[Role],
    requested_by: str,
    reason: str,
    now: datetime,
    keyring: Keyring,
) -> tuple[User, resets.ResetRequest | None]:
    """Replace a user's roles; an account that starts to sign loses its password.

    It has none until a QA manager confirms its reset (the administrator may have known it).
    """
    before = service.get_user(conn, username=username)
    user = service.set_roles(conn, username=username, roles=roles, now=now)
    if rules.needs_confirmed_reset(user.roles) and not rules.needs_confirmed_reset(before.roles):
        user = resets.withdraw_password(conn, user=user, keyring=keyring, now=now)
        return user, resets.request(
            conn, user=user, requested_by=requested_by, reason=reason, now=now
        )
    return user, None


def reset(  # noqa: PLR0913 - every input of the reset is explicit
    conn: Conn,
    *,
    username: str,
    temporary_password: str | None,
    requested_by: str,
    reason: str,
    now: datetime,
    keyring: Keyring,
) -> Reset:
    """An administrator's reset: one step for accounts that do not sign.

    For those that sign, a request for a QA manager's confirmation (no password may be
    chosen for them).
    """
    target = service.get_user(conn, username=username)
    if rules.needs_confirmed_reset(target.roles):
        if temporary_password is not None:
            raise SigningAccountPasswordError(username)
        made = resets.request(conn, user=target, requested_by=requested_by, reason=reason, now=now)
        return Reset(user=target, temporary_password=None, request=made)
    user, made_password = service.reset_password(
        conn, username=username, temporary_password=temporary_password, now=now, keyring=keyring
    )
    web_sessions.end_all(conn, user=user, at=now, reason="password_changed")
    return Reset(user=user, temporary_password=made_password, request=None)


def bootstrap_allowed(conn: Conn, *, username: str) -> bool:
    """True if no active QA manager other than ``username`` exists who could confirm."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM erp.users AS u JOIN erp.user_roles AS r"
        " ON r.user_id = u.id WHERE r.role = %s AND u.active AND u.username <> %s)",
        (str(RESET_CONFIRMER_ROLE), username),
    ).fetchone()
    assert row is not None
    return not bool(row[0])


def _unknown_password(*, username: str, full_name: str) -> str:
    """A password nobody is told (256 random bits, thrown away once hashed)."""
    made = secrets.token_urlsafe(32)
    while rules.password_problem(made, username=username, full_name=full_name):
        made = secrets.token_urlsafe(32)  # (almost never)
    return made


# --- binding the hashes present at the upgrade to 0019 -------------------------------


@dataclass(slots=True)
class BindReport:
    """What ``bind_passwords`` found: user names bound now, already bound, refused (why)."""

    bound: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def bind_passwords(conn: Conn, *, keyring: Keyring) -> BindReport:
    """Bind every unbound hash that was present at the upgrade and has not changed since.

    A hash without a binding that was written after the upgrade (not listed in
    ``erp.users_unbound_at_upgrade``, a different sha256, or a higher serial) is refused,
    not bound: binding it would launder what a database writer put there. Bound hashes
    are checked; one that does not verify is reported (its account needs a reset).
    """
    rows = conn.execute(
        "SELECT u.id, u.username, u.password_hash, u.password_changed_at,"
        " u.must_change_password, u.password_serial, u.password_key_id, u.password_binding,"
        " s.password_hash_sha256 FROM erp.users AS u"
        " LEFT JOIN erp.users_unbound_at_upgrade AS s ON s.user_id = u.id"
        " ORDER BY u.username FOR UPDATE OF u"
    ).fetchall()
    report = BindReport()
    for uid, name, hashed, changed, must_change, serial, key_id, mac, at_upgrade in rows:
        record = binding.PasswordRecord(
            user_id=int(uid),
            username=str(name),
            password_hash=str(hashed),
            changed_at=changed,
            must_change=bool(must_change),
            serial=int(serial),
        )
        if key_id is not None and mac is not None:
            stored = binding.Binding(str(key_id), str(mac))
            found = binding.problem(keyring, record, stored)
            if found is None:
                report.already.append(record.username)
            else:
                report.refused[record.username] = binding.explain(found, stored)
            continue
        why = _not_bindable(record, at_upgrade)
        if why is not None:
            report.refused[record.username] = why
            continue
        fresh = binding.PasswordRecord(
            user_id=record.user_id,
            username=record.username,
            password_hash=record.password_hash,
            changed_at=record.changed_at,
            must_change=record.must_change,
            serial=record.serial + 1,
        )
        made = binding.bind(keyring.current, fresh)
        conn.execute(
            "UPDATE erp.users SET password_serial = %s, password_key_id = %s,"
            " password_binding = %s WHERE id = %s",
            (fresh.serial, made.key_id, made.mac, fresh.user_id),
        )
        report.bound.append(record.username)
    return report


def _not_bindable(record: binding.PasswordRecord, at_upgrade: object) -> str | None:
    """Why an unbound hash may not be bound now (None: it was there at the upgrade)."""
    if at_upgrade is None:
        return (
            "no binding, and the account was not there at the upgrade: written outside the "
            "application — reset its password"
        )
    digest = hashlib.sha256(record.password_hash.encode()).hexdigest()
    if record.serial != 0 or digest != at_upgrade:
        return (
            "no binding, and the hash is not the one present at the upgrade: written "
            "outside the application — reset its password"
        )
    return None
