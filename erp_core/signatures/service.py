"""Sign a record (re-entering the password) and verify signatures against the record now.

``sign`` runs in the caller's transaction, so the signed decision, the signature and
their audit entries commit or roll back together. A wrong password is recorded through
the ``AttemptRecorder`` (its own transaction) and counts towards the login lock.

The signature is an HMAC with the server's record key (``erp_core.audit.keys``), passed
in by the caller (the API holds it; the database does not). Checking needs the key
ring: a signature by a key the server no longer holds, or an unkeyed one made before
revision 0018, is reported as not verifiable — never as valid.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from erp_core.audit.keys import Keyring, RecordKey
from erp_core.audit.service import current_actor, set_actor
from erp_core.auth import service as auth_service
from erp_core.auth.errors import (
    AccountDisabledError,
    InvalidCredentialsError,
    PasswordNotBoundError,
)
from erp_core.auth.models import AttemptRecorder, Channel, LoginPolicy, User
from erp_core.errors import InvalidArgumentError, NotFoundError
from erp_core.signatures import canonical
from erp_core.signatures.errors import SignatureRefusedError
from erp_core.signatures.models import Signature, SignatureCheck

Conn = psycopg.Connection[TupleRow]

_COLUMNS = (
    "id, user_id, username, full_name, signed_at, meaning, comment, record_table, "
    "record_key, record_hash, signature_hash, algorithm, key_id"
)


def sign(  # noqa: PLR0913 - every input of a Part 11 signature is explicit
    conn: Conn,
    *,
    user: User,
    password: str,
    record_table: str,
    record_key: Mapping[str, Any],
    record_content: Mapping[str, Any],
    meaning: str,
    clock: Callable[[], datetime],
    policy: LoginPolicy,
    record_attempt: AttemptRecorder,
    signing_key: RecordKey,
    comment: str | None = None,
    source: str | None = None,
    keyring: Keyring | None = None,
) -> Signature:
    """Sign a record as ``user`` (the logged-in user), who re-enters ``password``.

    ``signing_key`` is the server's current record key: the signature is an HMAC with it.
    ``keyring`` (default: ``signing_key`` alone) verifies the binding of the signer's
    stored password (``erp_core.auth.binding``): pass the server's whole ring, so a
    password bound before a key rotation still signs.

    Raises SignatureRefusedError for a wrong password (recorded as a failed attempt) or a
    signer who is not the acting user, AccountLockedError if the account is locked.
    """
    if not meaning.strip():
        raise InvalidArgumentError("meaning", meaning, "a signature needs a meaning")
    if not record_table.strip() or not record_key:
        raise InvalidArgumentError("record_key", record_key, "name the signed record")
    now = clock().astimezone(UTC)
    try:
        signer = auth_service.authenticate(
            conn,
            username=user.username,
            password=password,
            source=source,
            channel=Channel.SIGNATURE,
            now=now,
            policy=policy,
            record=record_attempt,
            keyring=keyring if keyring is not None else Keyring((signing_key,)),
        )
    except InvalidCredentialsError as err:
        raise SignatureRefusedError(user.username, "password incorrect") from err
    except PasswordNotBoundError as err:
        raise SignatureRefusedError(user.username, str(err)) from err
    except AccountDisabledError as err:
        raise SignatureRefusedError(user.username, "account disabled") from err
    if signer.id != user.id:  # pragma: no cover - the same username names the same user
        raise SignatureRefusedError(user.username, "the signer is not the logged-in user")
    actor = current_actor(conn)
    if actor is None:
        set_actor(conn, user=signer.username, reason=f"electronic signature: {meaning}")
    elif actor != signer.username:
        raise SignatureRefusedError(
            signer.username, f"the acting user of this transaction is {actor}, not the signer"
        )
    key = canonical.normalise(record_key)
    record_hash = canonical.record_hash(table=record_table, key=key, content=record_content)
    signature_hash = canonical.signature_mac(
        signing_key,
        user_id=signer.id,
        username=signer.username,
        full_name=signer.full_name,
        signed_at=now,
        meaning=meaning,
        comment=comment,
        record_table=record_table,
        record_key=key,
        record_hash=record_hash,
    )
    row = conn.execute(
        f"INSERT INTO erp.signatures (user_id, username, full_name, signed_at, meaning, "  # noqa: S608 - constant column list
        f"comment, record_table, record_key, record_hash, signature_hash, algorithm, key_id) "
        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (
            signer.id,
            signer.username,
            signer.full_name,
            now,
            meaning,
            comment,
            record_table,
            Jsonb(key),
            record_hash,
            signature_hash,
            canonical.KEYED,
            signing_key.key_id,
        ),
    ).fetchone()
    if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
        raise RuntimeError("INSERT returned no row")
    return _signature(row)


def get_signature(conn: Conn, *, signature_id: int) -> Signature:
    """The stored signature ``signature_id``; NotFoundError if there is none."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM erp.signatures WHERE id = %s",  # noqa: S608 - constant columns
        (signature_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError("signature", signature_id)
    return _signature(row)


MISSING = "the signature it names does not exist"
"""The problem reported for a record whose signature row is gone (``named_signature``)."""


def named_signature(conn: Conn, signature_id: int | None) -> Signature | None:
    """The signature a record names, or None if it names none or that row does not exist."""
    if signature_id is None:
        return None
    try:
        return get_signature(conn, signature_id=signature_id)
    except NotFoundError:
        return None


def signatures_for(
    conn: Conn, *, record_table: str, record_key: Mapping[str, Any]
) -> list[Signature]:
    """The signatures stored for a record, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM erp.signatures "  # noqa: S608 - constant columns
        "WHERE record_table = %s AND record_key = %s ORDER BY signed_at, id",
        (record_table, Jsonb(canonical.normalise(record_key))),
    ).fetchall()
    return [_signature(r) for r in rows]


def check(
    signature: Signature,
    *,
    record_table: str,
    record_key: Mapping[str, Any],
    record_content: Mapping[str, Any],
    keyring: Keyring,
) -> SignatureCheck:
    """Whether ``signature`` is bound to this record with this content (pure)."""
    problems: list[str] = []
    key = canonical.normalise(record_key)
    if signature.record_table != record_table or canonical.canonical_json(
        signature.record_key
    ) != canonical.canonical_json(key):
        problems.append("the signature belongs to another record")
    now_hash = canonical.record_hash(table=record_table, key=key, content=record_content)
    if now_hash != signature.record_hash:
        problems.append("the record differs from the signed content")
    problems.extend(_binding_problems(signature, keyring))
    return SignatureCheck(signature=signature, problems=tuple(problems))


def _binding_problems(signature: Signature, keyring: Keyring) -> list[str]:
    """Why the signature's own fields are not bound by the server key ([] when they are)."""
    fields: dict[str, Any] = {
        "user_id": signature.user_id,
        "username": signature.username,
        "full_name": signature.full_name,
        "signed_at": signature.signed_at,
        "meaning": signature.meaning,
        "comment": signature.comment,
        "record_table": signature.record_table,
        "record_key": signature.record_key,
        "record_hash": signature.record_hash,
    }
    if signature.algorithm == canonical.LEGACY:
        problems = [
            (
                "not verifiable with a key: an unkeyed signature (sha256) from before keyed "
                "signatures; anyone with database access could have made it"
            )
        ]
        if canonical.signature_hash(**fields) != signature.signature_hash:
            problems.append("the signature's own fields were altered")
        return problems
    if signature.algorithm != canonical.KEYED or signature.key_id is None:
        return [f"unknown signature algorithm {signature.algorithm!r}"]
    key = keyring.get(signature.key_id)
    if key is None:
        return [
            f"not verifiable: signed with key {signature.key_id}, which this server does not hold"
        ]
    expected = canonical.signature_mac(key, **fields)
    if not hmac.compare_digest(expected.encode(), signature.signature_hash.encode()):
        return [
            (
                "the signature does not verify with the server key: its fields were altered "
                "or it was not made by this server"
            )
        ]
    return []


def verify_signature(  # noqa: PLR0913 - the record and the key ring are explicit
    conn: Conn,
    *,
    signature_id: int,
    record_table: str,
    record_key: Mapping[str, Any],
    record_content: Mapping[str, Any],
    keyring: Keyring,
) -> SignatureCheck:
    """Load signature ``signature_id`` and check it against the record's current content."""
    return check(
        get_signature(conn, signature_id=signature_id),
        record_table=record_table,
        record_key=record_key,
        record_content=record_content,
        keyring=keyring,
    )


def checked_signatures(
    conn: Conn,
    *,
    record_table: str,
    record_key: Mapping[str, Any],
    record_content: Mapping[str, Any],
    keyring: Keyring,
) -> list[SignatureCheck]:
    """Every signature of a record, each checked against the record's current content."""
    return [
        check(
            s,
            record_table=record_table,
            record_key=record_key,
            record_content=record_content,
            keyring=keyring,
        )
        for s in signatures_for(conn, record_table=record_table, record_key=record_key)
    ]


def _signature(row: tuple[Any, ...]) -> Signature:
    return Signature(
        id=row[0],
        user_id=row[1],
        username=row[2],
        full_name=row[3],
        signed_at=row[4],
        meaning=row[5],
        comment=row[6],
        record_table=row[7],
        record_key=row[8],
        record_hash=row[9],
        signature_hash=row[10],
        algorithm=row[11],
        key_id=row[12],
    )
