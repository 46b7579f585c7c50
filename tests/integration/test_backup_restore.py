"""Backup and restore as docs/backup-restore.md describes it, with the real tools.

``pg_dump -Fc`` as the owner, a fresh database, ``pg_restore --exit-on-error`` as the
owner, ``coldtrace db upgrade``, then ``coldtrace audit verify`` as a separate process
against the anchor file kept apart from the database: the newest dump restores
"intact"; an older dump (it lacks the newest audit entries) is caught by the anchor.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from db import migrate
from erp_core.audit import anchoring, keys
from erp_core.auth.models import LoginAttempt, LoginPolicy, User
from erp_core.signatures import service as signatures
from tests.fix_services import ADMIN_URL, APP_LOGIN, SUPERUSER_URL, as_login
from tests.integration.access_helpers import add_user

PASSWORD = "Quality-First-2026"
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
LOT = {"lot_no": "A-1001", "status": "released", "qty": 120}


def on(url: str, dbname: str) -> str:
    return f"{url.rsplit('/', 1)[0]}/{dbname}"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
        check=False,
    )


@pytest.fixture
def fresh_databases() -> Iterator[list[str]]:
    """Names of databases the test creates (as the owner), dropped afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        migrate.drop_database(on(ADMIN_URL, name))


def restore(dump: Path, made: list[str], *, timescale: bool = False) -> str:
    """Restore ``dump`` into a new, empty database as the owner; its name.

    A TimescaleDB dump is restored as docs/backup-restore.md ("TimescaleDB") says: by a
    superuser, the extension created first, in TimescaleDB's restore mode.
    """
    name = f"ct_restored_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    made.append(name)
    if not timescale:
        done = run("pg_restore", "--exit-on-error", "--dbname", on(ADMIN_URL, name), str(dump))
        assert done.returncode == 0, done.stderr
        return name
    superuser = on(SUPERUSER_URL, name)
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timescaledb")
        conn.execute("SELECT timescaledb_pre_restore()")
    done = run("pg_restore", "--exit-on-error", "--dbname", superuser, str(dump))
    assert done.returncode == 0, done.stderr
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute("SELECT timescaledb_post_restore()")
    return name


def coldtrace(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "coldtrace", *args, env=env)


def sign(db_url: str, user: User, key: keys.RecordKey, at: datetime) -> int:
    def record(attempt: LoginAttempt) -> None:
        del attempt

    with psycopg.connect(db_url) as conn:
        return signatures.sign(
            conn,
            user=user,
            password=PASSWORD,
            record_table="erp.lots",
            record_key={"id": 1},
            record_content=LOT,
            meaning="Released",
            clock=lambda: at,
            policy=LoginPolicy(),
            record_attempt=record,
            signing_key=key,
        ).id


def test_a_restored_dump_verifies_and_an_older_one_is_caught_by_the_anchor(
    db_url: str, owner_db_url: str, tmp_path: Path, fresh_databases: list[str]
) -> None:
    key_file, anchor_file = tmp_path / "keys" / "record.key", tmp_path / "anchors.jsonl"
    key_file.parent.mkdir()
    keys.new_key_file(key_file, key_id="k1")
    keyring = keys.load(key_file)
    qa = add_user(db_url, "qa-lena", ["qa"], PASSWORD, full_name="Lena Holm", keyring=keyring)
    first_signature = sign(db_url, qa, keyring.current, T0)
    with psycopg.connect(db_url) as conn:
        anchoring.checkpoint(conn, keyring=keyring, anchor_file=anchor_file, now=T0, start=True)

    older = tmp_path / "older.dump"
    dumped = run("pg_dump", "--format=custom", "--file", str(older), owner_db_url)
    assert dumped.returncode == 0, dumped.stderr

    # Work goes on after that backup and is anchored: a user, a second signature.
    add_user(db_url, "wh-tom", ["warehouse"], "wh-Pass-4711!")
    sign(db_url, qa, keyring.current, T0 + timedelta(minutes=5))
    with psycopg.connect(db_url) as conn:
        newest = anchoring.checkpoint(
            conn, keyring=keyring, anchor_file=anchor_file, now=T0 + timedelta(minutes=6)
        )
    assert newest is not None
    latest = tmp_path / "latest.dump"
    dumped = run("pg_dump", "--format=custom", "--file", str(latest), owner_db_url)
    assert dumped.returncode == 0, dumped.stderr

    records = {"COLDTRACE_RECORD_KEY_FILE": str(key_file)}
    records["COLDTRACE_RECORD_ANCHOR_FILE"] = str(anchor_file)
    with psycopg.connect(owner_db_url) as conn:
        timescale = bool(
            conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        )

    # The newest dump: restored, privileges applied again, verified by the CLI.
    name = restore(latest, fresh_databases, timescale=timescale)
    app_url = as_login(on(ADMIN_URL, name), APP_LOGIN)
    upgraded = coldtrace("db", "upgrade", env={"COLDTRACE_DATABASE_OWNER_URL": on(ADMIN_URL, name)})
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    verified = coldtrace("audit", "verify", env={"COLDTRACE_DATABASE_URL": app_url, **records})
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit trail intact" in verified.stdout
    assert f"the newest at entry {newest.seq}" in verified.stdout
    with psycopg.connect(app_url) as conn:
        check = signatures.verify_signature(
            conn,
            signature_id=first_signature,
            record_table="erp.lots",
            record_key={"id": 1},
            record_content=LOT,
            keyring=keyring,
        )
        assert check.valid, check.problems
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE erp.audit_log SET actor = 'mallory'")  # still the app role

    # The older dump lacks the newest entries: the anchor file knows they existed.
    name = restore(older, fresh_databases, timescale=timescale)
    app_url = as_login(on(ADMIN_URL, name), APP_LOGIN)
    verified = coldtrace("audit", "verify", env={"COLDTRACE_DATABASE_URL": app_url, **records})
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert "FAILS its anchor" in verified.stdout
    assert "are missing (deleted, or a restore from an older backup)" in verified.stdout
