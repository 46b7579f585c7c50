"""Password hashes bound to the record key, so a database writer cannot choose a password.

The application role may UPDATE ``erp.users`` (it changes passwords), so whoever holds
its password could write an argon2 hash of a password of their own choosing into any
row — and then sign in and sign as that user. Every stored hash therefore carries a
*binding*: an HMAC-SHA256, under the record key's ``PASSWORD`` purpose
(``erp_core.audit.keys``), over the user id, the user name, the hash, when it was set,
whether it is a one-time password, and the row's password serial. The key lives in a
file outside the database, so only a process holding it (the API, the admin CLI) makes
a binding that verifies; a hash with a missing or wrong binding is refused at sign-in
and at every signature (docs/access-and-audit.md, "Passwords bound to the record key").

What each bound field stops:

* user id and user name — a (hash, binding) copied onto another user's row;
* when it was set and the one-time flag — an old temporary password written back is
  still a temporary password of its old age, so it has expired;
* the serial — together with the trigger ``users_password_serial`` (migration 0019),
  which refuses a serial going down or a password record changed without a higher one,
  an old (hash, binding) of the same user cannot be written back by the application role.

Pure: no I/O; the key ring comes from the caller.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from erp_core.audit.keys import PASSWORD, Keyring, RecordKey

VERSION = "coldtrace/password-binding/v1"


@dataclass(frozen=True, slots=True)
class PasswordRecord:
    """The fields of ``erp.users`` a binding covers."""

    user_id: int
    username: str
    password_hash: str
    changed_at: datetime
    must_change: bool
    serial: int


@dataclass(frozen=True, slots=True)
class Binding:
    """A binding as stored: the key that made it and the MAC (64 hex digits)."""

    key_id: str
    mac: str


@dataclass(frozen=True, slots=True)
class StoredPassword:
    """A user's password as stored: the hash, its binding (None: none) and the serial."""

    password_hash: str
    binding: Binding | None
    serial: int

    def __repr__(self) -> str:
        return f"StoredPassword(<hash>, {self.binding!r}, serial={self.serial})"


class Problem(StrEnum):
    """Why a stored password record is not bound by this server's key ring."""

    UNBOUND = "unbound"  # no binding: not bound since the upgrade, or written outside
    UNKNOWN_KEY = "unknown_key"  # bound with a key id this server does not hold
    MISMATCH = "mismatch"  # a field or the MAC differs from what the key computes


def _field(value: str) -> str:
    """One field of the serialisation: ``<length>:<text>;`` (no field runs into the next)."""
    return f"{len(value)}:{value};"


def _time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("a password record's time must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def message(record: PasswordRecord) -> str:
    """The canonical text the MAC is computed over (each field length-prefixed)."""
    return "".join(
        _field(v)
        for v in (
            VERSION,
            str(record.user_id),
            record.username,
            record.password_hash,
            _time(record.changed_at),
            "1" if record.must_change else "0",
            str(record.serial),
        )
    )


def bind(key: RecordKey, record: PasswordRecord) -> Binding:
    """The binding of ``record`` with ``key`` (the ring's current key for new ones)."""
    return Binding(key.key_id, key.mac(PASSWORD, message(record)))


def problem(keyring: Keyring, record: PasswordRecord, binding: Binding | None) -> Problem | None:
    """Why ``binding`` does not bind ``record`` under ``keyring``, or None when it does."""
    if binding is None:
        return Problem.UNBOUND
    key = keyring.get(binding.key_id)
    if key is None:
        return Problem.UNKNOWN_KEY
    expected = bind(key, record).mac
    if not hmac.compare_digest(expected.encode(), binding.mac.encode()):
        return Problem.MISMATCH
    return None


def explain(found: Problem, binding: Binding | None) -> str:
    """A sentence for people: what is wrong with the stored password record."""
    match found:
        case Problem.UNBOUND:
            return (
                "it carries no binding to the record key (an installation upgraded to 0019 "
                "binds its passwords once with `coldtrace users bind-passwords`)"
            )
        case Problem.UNKNOWN_KEY:
            key_id = binding.key_id if binding else "?"
            return (
                f"it is bound with record key {key_id}, which this server's key file does "
                "not hold (keep old keys in the file after a rotation)"
            )
        case _:
            return (
                "its binding does not verify with the record key: it was written outside "
                "the application (or another field of the account was changed)"
            )
