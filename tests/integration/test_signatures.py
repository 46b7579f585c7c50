"""Part 11 signatures: re-entered password, manifestation, binding to the record's hash."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from erp_core.audit.service import set_actor, verify
from erp_core.auth import service as auth_service
from erp_core.auth.errors import AccountLockedError
from erp_core.auth.models import LoginAttempt, LoginPolicy, User
from erp_core.signatures import service
from erp_core.signatures.errors import SignatureRefusedError
from erp_core.signatures.models import Meaning, SignatureRequest
from tests.integration.access_helpers import START, add_user

POLICY = LoginPolicy()
PASSWORD = "Quality-First-2026"
SIGNED_AT = datetime(2026, 11, 25, 13, 45, 10, 123456, tzinfo=UTC)

LOT_A = {"lot_no": "A-1001", "expiry": "2027-06-30", "status": "quarantine", "qty": 120}
LOT_B = {"lot_no": "B-2002", "expiry": "2027-06-30", "status": "quarantine", "qty": 120}


@pytest.fixture
def qa(db_url: str) -> User:
    return add_user(db_url, "qa-lena", ["qa"], PASSWORD, full_name="Lena Holm")


def recorder(db_url: str):  # type: ignore[no-untyped-def]
    def record(attempt: LoginAttempt) -> None:
        with psycopg.connect(db_url) as conn:
            auth_service.record_attempt(conn, attempt=attempt)

    return record


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
            comment="all loggers within 2-8 °C",
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
        )
        # Lot A changed after signing: no longer valid.
        changed = service.verify_signature(
            conn,
            signature_id=sig.id,
            record_table="erp.lots",
            record_key={"id": 1},
            record_content={**LOT_A, "qty": 119},
        )
        # Same key and content in another table: not valid either.
        other_table = service.verify_signature(
            conn,
            signature_id=sig.id,
            record_table="erp.deviations",
            record_key={"id": 1},
            record_content=LOT_A,
        )
        assert (
            service.checked_signatures(
                conn, record_table="erp.lots", record_key={"id": 2}, record_content=LOT_B
            )
            == []
        )
    assert not moved.valid
    assert "another record" in " ".join(moved.problems)
    assert not changed.valid
    assert changed.problems == ("the record differs from the signed content",)
    assert not other_table.valid


def test_superuser_moving_a_signature_row_is_detected(db_url: str, qa: User) -> None:
    sig = sign_lot(db_url, qa, key={"id": 1}, content=LOT_A)
    su = "postgresql://postgres@" + db_url.split("@", 1)[1]
    with psycopg.connect(su) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "UPDATE erp.signatures SET record_key = '{\"id\": 2}' WHERE id = %s", (sig.id,)
        )
    with psycopg.connect(db_url) as conn:
        (check,) = service.checked_signatures(
            conn, record_table="erp.lots", record_key={"id": 2}, record_content=LOT_B
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
            )


def test_signature_request_model() -> None:
    req = SignatureRequest.model_validate(
        {"password": "x", "meaning": "Approved override", "comment": None}
    )
    assert req.meaning is Meaning.APPROVED_OVERRIDE
    with pytest.raises(ValueError, match="meaning"):
        SignatureRequest.model_validate({"password": "x", "meaning": "Whatever"})
