"""Part 11 signatures: re-entered password, manifestation, binding to the record's hash,
and the server key that makes a row written by anyone else fail verification."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from erp_core.audit import keys
from erp_core.audit.service import set_actor, verify
from erp_core.auth import service as auth_service
from erp_core.auth.errors import AccountLockedError
from erp_core.auth.models import LoginAttempt, LoginPolicy, User
from erp_core.signatures import canonical, service
from erp_core.signatures.errors import SignatureRefusedError
from erp_core.signatures.models import Meaning, SignatureRequest
from tests.integration.access_helpers import START, add_user

POLICY = LoginPolicy()
PASSWORD = "Quality-First-2026"
SIGNED_AT = datetime(2026, 11, 25, 13, 45, 10, 123456, tzinfo=UTC)

LOT_A = {"lot_no": "A-1001", "expiry": "2027-06-30", "status": "quarantine", "qty": 120}
LOT_B = {"lot_no": "B-2002", "expiry": "2027-06-30", "status": "quarantine", "qty": 120}


@pytest.fixture
def keyring(tmp_path: Path) -> keys.Keyring:
    path = tmp_path / "record.key"
    keys.new_key_file(path, key_id="k1")
    return keys.load(path)


def recorder(db_url: str):  # type: ignore[no-untyped-def]
    def record(attempt: LoginAttempt) -> None:
        with psycopg.connect(db_url) as conn:
            auth_service.record_attempt(conn, attempt=attempt)

    return record


SERVER_KEY = keys.RecordKey("k1", bytes(range(32)))
KEYS = keys.Keyring((SERVER_KEY,))


@pytest.fixture
def qa(db_url: str) -> User:
    return add_user(db_url, "qa-lena", ["qa"], PASSWORD, full_name="Lena Holm", keyring=KEYS)


def sign_lot(
    db_url: str, user: User, *, key: dict[str, object], content: dict[str, object], **kw: object
):  # type: ignore[no-untyped-def]
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user=user.username, reason="QA batch release")
        return service.sign(
            conn,
            user=user,
            password=kw.pop("password", PASSWORD),
            record_table="erp.lots",
            record_key=key,
            record_content=content,
            meaning=kw.pop("meaning", Meaning.RELEASED),
            clock=lambda: kw.get("at", SIGNED_AT),
            policy=POLICY,
            record_attempt=recorder(db_url),
            signing_key=kw.get("signing_key", SERVER_KEY),
            comment="all loggers within 2-8 °C",
            keyring=KEYS,  # the ring that bound qa-lena's password
        )


def test_signature_carries_name_time_meaning_and_manifestation(db_url: str, qa: User) -> None:
    sig = sign_lot(db_url, qa, key={"id": 1}, content=LOT_A)
    assert (sig.username, sig.full_name, sig.meaning) == ("qa-lena", "Lena Holm", "Released")
    assert sig.signed_at == SIGNED_AT
    assert sig.manifestation == (
        "Signed by Lena Holm (qa-lena) on 2026-11-25 13:45:10 UTC, meaning: Released"
    )
    with psycopg.connect(db_url) as conn:
        check = service.verify_signature(
            conn,
            signature_id=sig.id,
            record_table="erp.lots",
            record_key={"id": 1},
            record_content=dict(reversed(list(LOT_A.items()))),  # key order does not matter
            keyring=KEYS,
        )
        stored = conn.execute(
            "SELECT record_hash, actor, reason, table_name FROM erp.signatures s "
            "JOIN erp.audit_log a ON a.table_name = 'erp.signatures' "
            "AND a.row_key = jsonb_build_object('id', s.id)"
        ).fetchone()
    assert check.valid, check.problems
    # The record hash is sha256 over the canonical JSON of table, key and content.
    canonical = json.dumps(
        {"content": LOT_A, "key": {"id": 1}, "table": "erp.lots"},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert stored[0] == hashlib.sha256(canonical.encode()).hexdigest()
    # The signature itself is audited like every regulated record.
    assert stored[1:] == ("qa-lena", "QA batch release", "erp.signatures")


def test_moved_or_outdated_signature_is_invalid(db_url: str, qa: User) -> None:
    sig = sign_lot(db_url, qa, key={"id": 1}, content=LOT_A)
    with psycopg.connect(db_url) as conn:
        # Shown with another record (lot B): not valid there.
        moved = service.verify_signature(
            conn,
            signature_id=sig.id,
            record_table="erp.lots",
            record_key={"id": 2},
            record_content=LOT_B,
            keyring=KEYS,
        )
        # Lot A changed after signing: no longer valid.
        changed = service.verify_signature(
            conn,
            signature_id=sig.id,
            record_table="erp.lots",
            record_key={"id": 1},
            record_content={**LOT_A, "qty": 119},
            keyring=KEYS,
        )
        # Same key and content in another table: not valid either.
        other_table = service.verify_signature(
            conn,
            signature_id=sig.id,
            record_table="erp.deviations",
            record_key={"id": 1},
            record_content=LOT_A,
            keyring=KEYS,
        )
        assert (
            service.checked_signatures(
                conn,
                record_table="erp.lots",
                record_key={"id": 2},
                record_content=LOT_B,
                keyring=KEYS,
            )
            == []
        )
    assert not moved.valid
    assert "another record" in " ".join(moved.problems)
    assert not changed.valid
    assert changed.problems == ("the record differs from the signed content",)
    assert not other_table.valid


def test_superuser_moving_a_signature_row_is_detected(
    db_url: str, superuser_db_url: str, qa: User
) -> None:
    sig = sign_lot(db_url, qa, key={"id": 1}, content=LOT_A)
    with psycopg.connect(superuser_db_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "UPDATE erp.signatures SET record_key = '{\"id\": 2}' WHERE id = %s", (sig.id,)
        )
    with psycopg.connect(db_url) as conn:
        (check,) = service.checked_signatures(
            conn,
            record_table="erp.lots",
            record_key={"id": 2},
            record_content=LOT_B,
            keyring=KEYS,
        )
        assert not check.valid
        # The edit bypassed the triggers, so the chain is intact and still records the
        # original key: the signature's own hashes are what expose the move.
        assert verify(conn).ok
        (audited_key,) = conn.execute(
            "SELECT new_values -> 'record_key' FROM erp.audit_log "
            "WHERE table_name = 'erp.signatures' AND action = 'INSERT'"
        ).fetchone()
    assert audited_key == {"id": 1}


def test_signatures_are_append_only(db_url: str, qa: User) -> None:
    sig = sign_lot(db_url, qa, key={"id": 1}, content=LOT_A)
    for sql in ("UPDATE erp.signatures SET meaning = 'Rejected'", "DELETE FROM erp.signatures"):
        with psycopg.connect(db_url) as conn:
            set_actor(conn, user="qa-lena", reason="edit")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
    with psycopg.connect(db_url) as conn:
        assert service.get_signature(conn, signature_id=sig.id).meaning == "Released"


def test_wrong_password_is_refused_and_counted(db_url: str, qa: User) -> None:
    for n in range(5):
        with pytest.raises(SignatureRefusedError, match="password incorrect"):
            sign_lot(
                db_url,
                qa,
                key={"id": 1},
                content=LOT_A,
                password="guess-guess-1",
                at=SIGNED_AT + timedelta(minutes=n),
            )
    with psycopg.connect(db_url) as conn:
        attempts = auth_service.attempts_since(conn, username="qa-lena", since=START)
        assert conn.execute("SELECT count(*) FROM erp.signatures").fetchone() == (0,)
    assert [(a.channel, a.outcome) for a in attempts] == [("signature", "bad_password")] * 5
    # Five wrong signature passwords lock the account, for signing and for logging in.
    with pytest.raises(AccountLockedError):
        sign_lot(db_url, qa, key={"id": 1}, content=LOT_A, at=SIGNED_AT + timedelta(minutes=5))


def test_signer_must_be_the_acting_user(db_url: str, qa: User) -> None:
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="someone-else", reason="release")
        with pytest.raises(SignatureRefusedError, match="acting user"):
            service.sign(
                conn,
                user=qa,
                password=PASSWORD,
                record_table="erp.lots",
                record_key={"id": 1},
                record_content=LOT_A,
                meaning="Released",
                clock=lambda: SIGNED_AT,
                policy=POLICY,
                record_attempt=recorder(db_url),
                signing_key=SERVER_KEY,
            )


def test_signature_request_model() -> None:
    req = SignatureRequest.model_validate(
        {"password": "x", "meaning": "Approved override", "comment": None}
    )
    assert req.meaning is Meaning.APPROVED_OVERRIDE
    with pytest.raises(ValueError, match="meaning"):
        SignatureRequest.model_validate({"password": "x", "meaning": "Whatever"})


def _forged_row(conn: psycopg.Connection, user: User, **overrides: object) -> int:
    """A 'Released' signature by ``user`` written straight into the table, the way a
    database writer would: every field right, the hash computed as the old code did."""
    key = {"id": 1}
    record_hash = canonical.record_hash(table="erp.lots", key=key, content=LOT_A)
    fields = {
        "user_id": user.id,
        "username": user.username,
        "full_name": user.full_name,
        "signed_at": SIGNED_AT,
        "meaning": "Released",
        "comment": None,
        "record_table": "erp.lots",
        "record_key": key,
        "record_hash": record_hash,
    }
    row = {
        **fields,
        "signature_hash": canonical.signature_hash(**fields),
        "algorithm": "hmac-sha256",
        "key_id": SERVER_KEY.key_id,
        **overrides,
    }
    set_actor(conn, user=user.username, reason="forged")
    (sid,) = conn.execute(
        "INSERT INTO erp.signatures (user_id, username, full_name, signed_at, meaning, comment,"
        " record_table, record_key, record_hash, signature_hash, algorithm, key_id)"
        " VALUES (%(user_id)s, %(username)s, %(full_name)s, %(signed_at)s, %(meaning)s,"
        " %(comment)s, %(record_table)s, %(record_key)s, %(record_hash)s, %(signature_hash)s,"
        " %(algorithm)s, %(key_id)s) RETURNING id",
        {**row, "record_key": json.dumps(row["record_key"])},
    ).fetchone()
    return int(sid)


def _check(db_url: str, sid: int, keyring: keys.Keyring = KEYS) -> service.SignatureCheck:
    with psycopg.connect(db_url) as conn:
        return service.verify_signature(
            conn,
            signature_id=sid,
            record_table="erp.lots",
            record_key={"id": 1},
            record_content=LOT_A,
            keyring=keyring,
        )


@pytest.mark.parametrize("writer", ["app", "owner"])
def test_a_signature_row_written_by_a_database_writer_does_not_verify(
    db_url: str, owner_db_url: str, qa: User, writer: str
) -> None:
    url = db_url if writer == "app" else owner_db_url
    with psycopg.connect(url) as conn:
        forged = _forged_row(conn, qa)
    # Even a copy of a real signature's MAC, moved to a new row, does not fit its fields.
    real = sign_lot(db_url, qa, key={"id": 1}, content=LOT_A)
    with psycopg.connect(url) as conn:
        copied = _forged_row(conn, qa, signature_hash=real.signature_hash, meaning="Rejected")
    assert _check(db_url, real.id).valid
    for sid in (forged, copied):
        check = _check(db_url, sid)
        assert not check.valid
        assert "does not verify with the server key" in " ".join(check.problems)


def test_new_unkeyed_signatures_are_refused_and_old_ones_are_not_verifiable(
    db_url: str, superuser_db_url: str, qa: User
) -> None:
    with psycopg.connect(db_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        _forged_row(conn, qa, algorithm="sha256", key_id=None)
    # A row from before keyed signatures (written here by the superuser, triggers off).
    with psycopg.connect(superuser_db_url) as conn:
        conn.execute("SET session_replication_role = replica")
        legacy = _forged_row(conn, qa, algorithm="sha256", key_id=None)
    check = _check(db_url, legacy)
    assert not check.valid
    assert check.problems == (
        (
            "not verifiable with a key: an unkeyed signature (sha256) from before keyed "
            "signatures; anyone with database access could have made it"
        ),
    )


def test_rotated_keys_keep_verifying_old_signatures(db_url: str, qa: User, tmp_path: Path) -> None:
    path = tmp_path / "record.key"
    first = keys.new_key_file(path, key_id="2026a")
    old = sign_lot(db_url, qa, key={"id": 1}, content=LOT_A, signing_key=first)
    second = keys.new_key_file(path, key_id="2026b")  # rotation: a new line, the old one stays
    ring = keys.load(path)
    assert ring.current == second
    new = sign_lot(
        db_url,
        qa,
        key={"id": 1},
        content=LOT_A,
        signing_key=ring.current,
        at=SIGNED_AT + timedelta(minutes=1),
    )
    assert (old.key_id, new.key_id) == ("2026a", "2026b")
    assert _check(db_url, old.id, ring).valid
    assert _check(db_url, new.id, ring).valid
    # A server that dropped the old key cannot vouch for it, and says so.
    without_old = keys.Keyring((second,))
    check = _check(db_url, old.id, without_old)
    assert not check.valid
    assert check.problems == (
        "not verifiable: signed with key 2026a, which this server does not hold",
    )
