"""The database-written audit trail: capture, append-only, hash chain and its verification.

A demo table created here (by the owner, as a migration would) is audited with
``erp.audit_table``, exactly as a new regulated table would be; the changes are made as
the application role. Tampering is done as the PostgreSQL superuser, the one who can get
past the triggers and privileges; ``coldtrace audit verify`` must then name the entry.
What a consistent re-hash of the whole chain does, and how the external anchor catches
it, is in test_audit_anchor.py.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from erp_core.audit import service
from erp_core.audit.chain import ChainEntry, entry_hash
from erp_core.audit.errors import NoTransactionError


@pytest.fixture
def demo(db_url: str, owner_db_url: str) -> Iterator[str]:
    with psycopg.connect(owner_db_url) as conn:
        conn.execute(
            "CREATE TABLE erp.demo_records (id integer PRIMARY KEY, name text NOT NULL, "
            "qty numeric NOT NULL, note text)"
        )
        conn.execute("SELECT erp.audit_table('erp.demo_records')")
        conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON erp.demo_records TO coldtrace_app")
    return db_url


def change(
    db_url: str, sql: str, params: tuple[object, ...] = (), *, user: str, reason: str
) -> None:
    with psycopg.connect(db_url) as conn:
        service.set_actor(conn, user=user, reason=reason)
        conn.execute(sql, params)


def entries(db_url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT id, seq, table_name, action, row_key, old_values, new_values, actor, "
            "reason, at FROM erp.audit_log WHERE table_name = 'erp.demo_records' ORDER BY seq"
        ).fetchall()


def cli_verify(db_url: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["audit", "verify"],
        env={"COLDTRACE_DATABASE_URL": db_url, "COLUMNS": "200", **env},
    )
    return result.exit_code, result.output


def fill(db_url: str) -> None:
    for i in range(1, 6):
        change(
            db_url,
            "INSERT INTO erp.demo_records VALUES (%s, %s, %s)",
            (i, f"item {i}", i * 10),
            user="alice",
            reason=f"create {i}",
        )


def test_changes_are_captured_with_who_what_when_and_why(demo: str) -> None:
    before = datetime.now(UTC)
    change(
        demo,
        "INSERT INTO erp.demo_records VALUES (1, 'saline', 10, 'first')",
        user="alice",
        reason="received",
    )
    change(
        demo,
        "UPDATE erp.demo_records SET qty = 8, note = 'two damaged' WHERE id = 1",
        user="bob",
        reason="inspection",
    )
    change(demo, "UPDATE erp.demo_records SET qty = 8 WHERE id = 1", user="bob", reason="no-op")
    change(demo, "DELETE FROM erp.demo_records WHERE id = 1", user="carol", reason="scrapped")
    after = datetime.now(UTC)
    rows = entries(demo)
    assert [(r[3], r[7], r[8]) for r in rows] == [
        ("INSERT", "alice", "received"),
        ("UPDATE", "bob", "inspection"),  # the no-op update left no entry
        ("DELETE", "carol", "scrapped"),
    ]
    assert all(r[4] == {"id": 1} for r in rows)
    assert rows[0][5] is None
    assert rows[0][6] == {"id": 1, "name": "saline", "qty": 10, "note": "first"}
    # UPDATE: only the changed columns, plus the key.
    assert rows[1][5] == {"id": 1, "qty": 10, "note": "first"}
    assert rows[1][6] == {"id": 1, "qty": 8, "note": "two damaged"}
    assert rows[2][5] == {"id": 1, "name": "saline", "qty": 8, "note": "two damaged"}
    assert rows[2][6] is None
    times = [r[9] for r in rows]
    assert before <= times[0] < times[1] < times[2] <= after


def test_regulated_change_without_a_user_is_refused(demo: str) -> None:
    with psycopg.connect(demo) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
        conn.execute("INSERT INTO erp.demo_records VALUES (1, 'saline', 10)")
    assert "without a user" in str(err.value)
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT count(*) FROM erp.demo_records").fetchone() == (0,)


def test_set_actor_needs_a_transaction(demo: str) -> None:
    with psycopg.connect(demo, autocommit=True) as conn:
        with pytest.raises(NoTransactionError):
            service.set_actor(conn, user="alice", reason="x")
        with conn.transaction():
            service.set_actor(conn, user="alice", reason="inside a transaction block")
            conn.execute("INSERT INTO erp.demo_records VALUES (1, 'saline', 10)")
        with conn.transaction():
            assert service.current_actor(conn) is None  # SET LOCAL ended with the transaction


def test_truncate_of_an_audited_table_is_refused(demo: str) -> None:
    fill(demo)
    with psycopg.connect(demo) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("TRUNCATE erp.demo_records")


def test_audit_log_is_append_only_for_the_app_role(demo: str, superuser_db_url: str) -> None:
    fill(demo)
    for sql in (
        "UPDATE erp.audit_log SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM erp.audit_log WHERE seq = 1",
        "TRUNCATE erp.audit_log",
        "DELETE FROM erp.audit_head",
        "INSERT INTO erp.audit_head VALUES (false, 0, 'x')",
    ):
        with psycopg.connect(demo) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql)
    # Even the superuser is stopped by the trigger while it is enabled.
    with (
        psycopg.connect(superuser_db_url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege) as err,
    ):
        conn.execute("UPDATE erp.audit_log SET actor = 'mallory' WHERE seq = 1")
    assert "append-only" in str(err.value)


def test_entry_hash_is_sha256_over_the_documented_serialisation(demo: str) -> None:
    change(demo, "INSERT INTO erp.demo_records VALUES (7, 'ä', 1.5)", user="alice", reason=None)
    with psycopg.connect(demo) as conn:
        seq, at, key, new, prev, stored, db_role = conn.execute(
            "SELECT seq, at, row_key::text, new_values::text, prev_hash, hash, db_role "
            "FROM erp.audit_log WHERE table_name = 'erp.demo_records'"
        ).fetchone()
        (last_before,) = conn.execute(
            "SELECT hash FROM erp.audit_log WHERE seq = %s", (seq - 1,)
        ).fetchone() or ("0" * 64,)
    assert prev == last_before
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = (
        f"{len(str(seq))}:{seq};{len(stamp)}:{stamp};16:erp.demo_records;6:INSERT;"
        f"{len(key)}:{key};~;{len(new)}:{new};5:alice;~;64:{prev};"
    )
    assert key == '{"id": 7}'
    # The database login that wrote it (the application role) is the eleventh field.
    assert db_role == "coldtrace_app"
    assert hashlib.sha256((text + "13:coldtrace_app;").encode()).hexdigest() == stored


def test_entries_from_before_the_database_role_still_hash_as_they_did(owner_db_url: str) -> None:
    """Entries written before migration 0018 have no db_role and keep their hash."""
    at = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
    args = (1, at, "erp.lots", "INSERT", '{"id": 1}', None, '{"id": 1}', "alice", None, "0" * 64)
    with psycopg.connect(owner_db_url) as conn:
        (old,) = conn.execute(
            "SELECT erp.audit_hash(%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s, %s)",
            args,
        ).fetchone()
        (with_null,) = conn.execute(
            "SELECT erp.audit_hash(%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s, %s,"
            " NULL)",
            args,
        ).fetchone()
        (with_role,) = conn.execute(
            "SELECT erp.audit_hash(%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s, %s,"
            " 'coldtrace_app')",
            args,
        ).fetchone()
    entry = ChainEntry(
        1, 1, at, "erp.lots", "INSERT", '{"id": 1}', None, '{"id": 1}', "alice", None, "0" * 64, old
    )
    assert old == with_null == entry_hash(entry, prev_hash="0" * 64)
    assert with_role != old
    with_db_role = ChainEntry(*[*vars_of(entry)[:-1], "coldtrace_app"])
    assert entry_hash(with_db_role, prev_hash="0" * 64) == with_role


def vars_of(entry: ChainEntry) -> list[object]:
    return [getattr(entry, f) for f in entry.__slots__]


def test_verify_passes_on_an_intact_chain(demo: str) -> None:
    fill(demo)
    change(demo, "UPDATE erp.demo_records SET qty = qty + 1", user="bob", reason="recount")
    with psycopg.connect(demo) as conn:
        result = service.verify(conn)
        (count,) = conn.execute("SELECT count(*) FROM erp.audit_log").fetchone()
    assert result.ok
    assert result.entries == count >= 10
    assert result.head.seq == count
    # Consistent, but with nothing outside the database to hold it against: exit 3.
    code, output = cli_verify(demo)
    assert code == 3
    assert "UNANCHORED" in output


def test_superuser_edit_with_trigger_disabled_is_named(demo: str, superuser_db_url: str) -> None:
    fill(demo)
    victim_id, victim_seq = entries(demo)[2][:2]
    with psycopg.connect(superuser_db_url) as conn:
        conn.execute("ALTER TABLE erp.audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(
            "UPDATE erp.audit_log SET new_values = jsonb_set(new_values, '{qty}', '999') "
            "WHERE id = %s",
            (victim_id,),
        )
        conn.execute("ALTER TABLE erp.audit_log ENABLE TRIGGER audit_log_append_only")
    with psycopg.connect(demo) as conn:
        result = service.verify(conn)
    assert result.broken is not None
    assert result.broken.entry_id == victim_id
    assert result.broken.seq == victim_seq
    assert "altered" in result.broken.problem
    code, output = cli_verify(demo)
    assert code != 0
    assert f"entry id {victim_id} " in output


def test_superuser_edit_with_rehash_still_breaks_the_next_link(
    demo: str, superuser_db_url: str
) -> None:
    fill(demo)
    rows = entries(demo)
    victim_id = rows[1][0]
    with psycopg.connect(superuser_db_url) as conn:
        conn.execute("SET session_replication_role = replica")  # triggers off for this session
        conn.execute(
            "UPDATE erp.audit_log SET actor = 'mallory', hash = erp.audit_hash(seq, at, "
            "table_name, action, row_key, old_values, new_values, 'mallory', reason, prev_hash,"
            " db_role) WHERE id = %s",
            (victim_id,),
        )
    with psycopg.connect(demo) as conn:
        broken = service.verify(conn).broken
    assert broken is not None
    assert broken.entry_id == rows[2][0]  # its own hash is consistent; the next link is not
    assert "previous-hash link" in broken.problem


def test_deleting_an_entry_in_the_middle_is_detected(demo: str, superuser_db_url: str) -> None:
    fill(demo)
    rows = entries(demo)
    with psycopg.connect(superuser_db_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM erp.audit_log WHERE id = %s", (rows[2][0],))
    with psycopg.connect(demo) as conn:
        broken = service.verify(conn).broken
    assert broken is not None
    assert broken.entry_id == rows[3][0]
    assert f"entries {rows[2][1]}..{rows[2][1]} are missing" in broken.problem
    code, output = cli_verify(demo)
    assert code != 0
    assert f"entry id {rows[3][0]} " in output


def test_deleting_the_last_entry_is_detected(demo: str, superuser_db_url: str) -> None:
    fill(demo)
    rows = entries(demo)
    with psycopg.connect(superuser_db_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM erp.audit_log WHERE id = %s", (rows[-1][0],))
    with psycopg.connect(demo) as conn:
        broken = service.verify(conn).broken
    assert broken is not None
    assert "chain head" in broken.problem


def test_concurrent_writers_do_not_fork_the_chain(demo: str) -> None:
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for i in range(start, start + 15):
                change(
                    demo,
                    "INSERT INTO erp.demo_records VALUES (%s, 'x', %s)",
                    (i, Decimal(i)),
                    user=f"writer-{start}",
                    reason="parallel",
                )
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(s,)) for s in (100, 200, 300)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(demo) as conn:
        result = service.verify(conn)
        seqs = [r[0] for r in conn.execute("SELECT seq FROM erp.audit_log ORDER BY seq")]
    assert result.ok, result.broken
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(entries(demo)) == 45


def test_repeatable_read_writer_fails_instead_of_forking(demo: str) -> None:
    with psycopg.connect(demo) as slow, psycopg.connect(demo) as fast:
        slow.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        service.set_actor(slow, user="slow", reason="late")
        slow.execute("SELECT 1 FROM erp.demo_records")  # the snapshot is taken here
        service.set_actor(fast, user="fast", reason="early")
        fast.execute("INSERT INTO erp.demo_records VALUES (1, 'a', 1)")
        fast.commit()
        with pytest.raises(psycopg.errors.SerializationFailure):
            slow.execute("INSERT INTO erp.demo_records VALUES (2, 'b', 2)")
    with psycopg.connect(demo) as conn:
        assert service.verify(conn).ok
