"""Password hashes bound to the record key, against the real database, API and CLI.

A database writer (the application role's login) can write ``erp.users``; what they
write must not become a password the API accepts — neither at sign-in nor at a signature.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from db import migrate
from erp_core.app import create_app
from erp_core.audit import keys
from erp_core.audit.service import set_actor
from erp_core.audit.settings import RecordConfig
from erp_core.auth import binding
from erp_core.settings import ApiSettings
from tests.fix_services import ADMIN_URL, APP_LOGIN, as_login
from tests.integration.access_helpers import (
    CHEAP,
    PASSWORDS,
    START,
    FakeClock,
    add_user,
    bearer,
    session_keyring,
    token_for,
)
from tests.integration.test_release import (  # noqa: F401
    PASSWORD,
    USERS,
    Api,
    api,
    fridge_with_lot,
)

SECRET = "binding-tests-secret-0123456789abcdef"
NOT_BOUND = "not bound to this server's record key"

ROW = (
    "password_hash, password_key_id, password_binding, password_serial,"
    " password_changed_at, must_change_password"
)


def row_of(conn: psycopg.Connection, username: str) -> tuple:  # type: ignore[type-arg]
    found = conn.execute(
        f"SELECT {ROW} FROM erp.users WHERE username = %s",
        (username,),
    ).fetchone()
    assert found is not None
    return tuple(found)


def write_row(conn: psycopg.Connection, username: str, row: tuple) -> None:  # type: ignore[type-arg]
    """What a database writer does: put a password record onto ``username``'s row."""
    conn.execute(
        "UPDATE erp.users SET password_hash = %s, password_key_id = %s, password_binding = %s,"
        " password_serial = %s, password_changed_at = %s, must_change_password = %s"
        " WHERE username = %s",
        (*row, username),
    )


def release(api: Api, lot: int, who: str, password: str):  # type: ignore[no-untyped-def]  # noqa: F811
    return api.client.post(
        f"/api/lots/{lot}/release",
        json={"action": "release", "password": password},
        headers=api.headers(who),  # a token of ``who`` (stolen, or from before the write)
    )


def test_a_hash_copied_from_another_user_is_refused_at_sign_in_and_signature(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
) -> None:
    """op (an operator who knows his own password) copies his password record onto qa."""
    lot, _ = fridge_with_lot(api, db_url, code="FC", lot_number="COPY-1")
    mine = "Operators-Own-Pass-2026"
    changed = api.client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": mine},
        headers=api.headers("op"),
    )
    assert changed.status_code == 204  # op's serial is now above qa's: the trigger allows it
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="qa", reason="password changed by the user")
        write_row(conn, "qa", row_of(conn, "op"))
        assert row_of(conn, "qa")[:3] == row_of(conn, "op")[:3]
    token = api.client.post("/api/auth/token", data={"username": "qa", "password": mine})
    assert token.status_code == 401
    assert NOT_BOUND in token.json()["detail"]
    signed = release(api, lot, "qa", mine)
    assert signed.status_code == 403
    assert NOT_BOUND in signed.json()["detail"]
    # op himself still signs in: his own record is untouched
    assert (
        api.client.post("/api/auth/token", data={"username": "op", "password": mine}).status_code
        == 200
    )


def test_a_hash_without_a_binding_fails_closed_with_a_clear_message(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
) -> None:
    lot, _ = fridge_with_lot(api, db_url, code="FN", lot_number="UNBOUND-1")
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="qa", reason="maintenance")
        conn.execute(
            "UPDATE erp.users SET password_key_id = NULL, password_binding = NULL,"
            " password_serial = password_serial + 1 WHERE username = 'qa'"
        )
    wrong = api.client.post("/api/auth/token", data={"username": "qa", "password": "nope-x-12345"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "incorrect username or password"  # a guess learns nothing
    right = api.client.post("/api/auth/token", data={"username": "qa", "password": PASSWORD})
    assert right.status_code == 401
    assert NOT_BOUND in right.json()["detail"]
    assert "coldtrace users bind-passwords" in right.json()["detail"]
    signed = release(api, lot, "qa", PASSWORD)
    assert signed.status_code == 403
    assert NOT_BOUND in signed.json()["detail"]
    with psycopg.connect(db_url) as conn:
        outcomes = conn.execute(
            "SELECT channel, outcome FROM erp.login_attempts WHERE username = 'qa' ORDER BY id"
        ).fetchall()
        status = conn.execute("SELECT status FROM erp.lots WHERE id = %s", (lot,)).fetchone()
    assert outcomes == [
        ("login", "bad_password"),
        ("login", "unbound"),
        ("signature", "unbound"),
    ]
    assert status == ("quarantine",)


def test_a_binding_under_a_key_the_server_does_not_hold_is_refused(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
) -> None:
    """Bound genuinely — with a key of someone else's (a made-up key file)."""
    mine = "Someone-Elses-Key-2026"
    foreign = keys.RecordKey("test-2", bytes(range(7, 39)))
    with psycopg.connect(db_url) as conn:
        (uid, serial, changed) = conn.execute(
            "SELECT id, password_serial, password_changed_at FROM erp.users WHERE username = 'boss'"
        ).fetchone()
        hashed = CHEAP.hash(mine)
        record = binding.PasswordRecord(uid, "boss", hashed, changed, False, serial + 1)
        made = binding.bind(foreign, record)
        set_actor(conn, user="boss", reason="password changed by the user")
        write_row(conn, "boss", (hashed, made.key_id, made.mac, serial + 1, changed, False))
    token = api.client.post("/api/auth/token", data={"username": "boss", "password": mine})
    assert token.status_code == 401
    assert NOT_BOUND in token.json()["detail"]
    # the administrators' view names the reason
    checked = CliRunner().invoke(
        cli, ["users", "bind-passwords"], env={"COLDTRACE_DATABASE_URL": db_url, "COLUMNS": "300"}
    )
    assert checked.exit_code == 1, checked.output
    assert "boss: NOT bound" in checked.output
    assert "record key test-2, which this server's key file does not hold" in checked.output
    assert f"{len(USERS) - 1} already bound" in checked.output  # every user of the api but boss


def test_a_rotated_key_keeps_old_bindings_and_binds_new_ones(db_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "record.key"
    first = keys.new_key_file(key_file, key_id="2026a")
    add_user(db_url, "lena", ["qa"], PASSWORDS["qa"], keyring=keys.load(key_file))
    add_user(db_url, "tom", ["warehouse"], PASSWORDS["warehouse"], keyring=keys.load(key_file))
    keys.new_key_file(key_file, key_id="2026b")  # rotation: appended, the old key stays
    ring = keys.load(key_file)
    assert ring.current.key_id == "2026b"
    clock = FakeClock()
    settings = ApiSettings(database_url=db_url, jwt_secret=SecretStr(SECRET))
    with TestClient(create_app(settings, clock=clock, records=RecordConfig(ring, None))) as c:
        lena = token_for(c, "lena", PASSWORDS["qa"])  # bound with 2026a: still good
        clock.advance(seconds=5)
        new = "Rotated-Key-Passphrase-1"
        r = c.post(
            "/api/auth/password",
            json={"current_password": PASSWORDS["qa"], "new_password": new},
            headers=bearer(lena),
        )
        assert r.status_code == 204
    with psycopg.connect(db_url) as conn:
        key_ids = dict(conn.execute("SELECT username, password_key_id FROM erp.users").fetchall())
    assert key_ids == {"lena": "2026b", "tom": "2026a"}
    # a server that no longer holds 2026a: lena (re-bound) signs in, tom is refused
    only_new = keys.Keyring((ring.current,))
    assert only_new.get(first.key_id) is None
    with TestClient(create_app(settings, clock=clock, records=RecordConfig(only_new, None))) as c:
        token_for(c, "lena", new)
        r = c.post("/api/auth/token", data={"username": "tom", "password": PASSWORDS["warehouse"]})
        assert r.status_code == 401
        assert NOT_BOUND in r.json()["detail"]


def test_an_old_temporary_password_written_back_is_refused_or_expired(
    db_url: str, owner_db_url: str
) -> None:
    add_user(db_url, "ida", ["admin"], PASSWORDS["admin"])
    add_user(db_url, "tom", ["warehouse"], PASSWORDS["warehouse"])
    clock = FakeClock()
    settings = ApiSettings(database_url=db_url, jwt_secret=SecretStr(SECRET))
    with TestClient(create_app(settings, clock=clock)) as c:
        admin = token_for(c, "ida", PASSWORDS["admin"])
        clock.advance(seconds=5)
        r = c.post("/api/users/tom/reset-password", json={"reason": "x"}, headers=bearer(admin))
        temporary = r.json()["temporary_password"]
        with psycopg.connect(db_url) as conn:
            old = row_of(conn, "tom")  # the one-time password's record, as a writer saw it
        assert old[5] is True
        clock.advance(hours=1)
        tom = token_for(c, "tom", temporary)
        mine = "Quiet-Harbour-Lantern-99"
        r = c.post(
            "/api/auth/password",
            json={"current_password": temporary, "new_password": mine},
            headers=bearer(tom),
        )
        assert r.status_code == 204
        # the application role cannot write the old record back: its serial is lower
        with psycopg.connect(db_url) as conn:
            set_actor(conn, user="tom", reason="restore")
            with pytest.raises(psycopg.errors.CheckViolation, match="cannot go back"):
                write_row(conn, "tom", old)
        # the schema owner can (it may disable the trigger); the binding still holds the
        # old time and the one-time flag, so past its lifetime the password has expired
        with psycopg.connect(owner_db_url) as conn:
            conn.execute("ALTER TABLE erp.users DISABLE TRIGGER users_password_serial")
            set_actor(conn, user="tom", reason="restore")
            write_row(conn, "tom", old)
            conn.execute("ALTER TABLE erp.users ENABLE TRIGGER users_password_serial")
        clock.advance(hours=72)
        r = c.post("/api/auth/token", data={"username": "tom", "password": temporary})
        assert r.status_code == 401
        assert "expired" in r.json()["detail"]
        # a fresh timestamp on the old record breaks its binding instead
        with psycopg.connect(owner_db_url) as conn:
            conn.execute("ALTER TABLE erp.users DISABLE TRIGGER users_password_serial")
            set_actor(conn, user="tom", reason="restore")
            write_row(conn, "tom", (*old[:4], clock.now, True))
            conn.execute("ALTER TABLE erp.users ENABLE TRIGGER users_password_serial")
        r = c.post("/api/auth/token", data={"username": "tom", "password": temporary})
        assert r.status_code == 401
        assert NOT_BOUND in r.json()["detail"]
    with psycopg.connect(db_url) as conn:
        writes = conn.execute(
            "SELECT db_role FROM erp.audit_log WHERE table_name = 'erp.users'"
            " AND reason = 'restore'"
        ).fetchall()
    assert writes == [("coldtrace",), ("coldtrace",)]  # the owner's login shows


@pytest.fixture
def upgraded_db() -> Iterator[tuple[str, str]]:
    """A database at 0018 with users in it (owner's URL, app's URL), not upgraded yet."""
    name = f"ct_bind_{uuid.uuid4().hex[:10]}"
    owner = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        yield owner, as_login(owner, APP_LOGIN)
    finally:
        migrate.drop_database(owner)


def test_bind_passwords_binds_the_hashes_present_at_the_upgrade_and_no_others(
    upgraded_db: tuple[str, str],
) -> None:
    owner, app = upgraded_db
    migrate.upgrade(owner, revision="0018")
    with psycopg.connect(app) as conn:
        set_actor(conn, user="cli:root", reason="before the upgrade")
        for name, role, password in (
            ("old-qa", "qa", PASSWORDS["qa"]),
            ("old-op", "operator", PASSWORDS["operator"]),
        ):
            (uid,) = conn.execute(
                "INSERT INTO erp.users (username, full_name, password_hash, created_at,"
                " password_changed_at) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (name, name.title(), CHEAP.hash(password), START, START),
            ).fetchone()
            conn.execute(
                "INSERT INTO erp.user_roles (user_id, role, granted_at) VALUES (%s, %s, %s)",
                (uid, role, START),
            )
    migrate.upgrade(owner)
    with psycopg.connect(owner) as conn:
        listed = conn.execute(
            "SELECT u.username, s.password_hash_sha256 FROM erp.users_unbound_at_upgrade s"
            " JOIN erp.users u ON u.id = s.user_id ORDER BY 1"
        ).fetchall()
        hashes = dict(conn.execute("SELECT username, password_hash FROM erp.users").fetchall())
    assert listed == [
        (n, hashlib.sha256(hashes[n].encode()).hexdigest()) for n in ("old-op", "old-qa")
    ]
    settings = ApiSettings(database_url=app, jwt_secret=SecretStr(SECRET))
    with TestClient(create_app(settings, clock=lambda: START + timedelta(days=1))) as c:
        r = c.post("/api/auth/token", data={"username": "old-qa", "password": PASSWORDS["qa"]})
        assert r.status_code == 401
        assert "coldtrace users bind-passwords" in r.json()["detail"]
    # After the upgrade, before the administrator binds: a writer puts their own hash on
    # old-op (the trigger makes them move the serial) and adds an account of their own.
    writer = "Writers-Own-Pass-2026"
    with psycopg.connect(app) as conn:
        set_actor(conn, user="old-op", reason="password changed by the user")
        conn.execute(
            "UPDATE erp.users SET password_hash = %s, password_serial = password_serial + 1"
            " WHERE username = 'old-op'",
            (CHEAP.hash(writer),),
        )
        conn.execute(
            "INSERT INTO erp.users (username, full_name, password_hash, created_at,"
            " password_changed_at) VALUES ('late', 'Late', %s, %s, %s)",
            (CHEAP.hash(writer), START, START),
        )
    env = {"COLDTRACE_DATABASE_URL": app, "COLUMNS": "300"}
    bound = CliRunner().invoke(cli, ["users", "bind-passwords"], env=env)
    assert bound.exit_code == 1, bound.output
    assert "bound 1 password(s) with key test-1: old-qa" in bound.output
    assert "old-op: NOT bound: no binding, and the hash is not the one present" in bound.output
    assert "late: NOT bound: no binding, and the account was not there at the upgrade" in (
        bound.output
    )
    settings = ApiSettings(database_url=app, jwt_secret=SecretStr(SECRET))
    with TestClient(create_app(settings, clock=lambda: START + timedelta(days=1))) as c:
        token_for(c, "old-qa", PASSWORDS["qa"])
        for name in ("old-op", "late"):
            r = c.post("/api/auth/token", data={"username": name, "password": writer})
            assert r.status_code == 401
    with psycopg.connect(app) as conn:
        (entry,) = conn.execute(
            "SELECT actor, reason, new_values FROM erp.audit_log WHERE table_name = 'erp.users'"
            " AND reason LIKE '%%bound to the record key%%'"
        ).fetchall()
        key_of = dict(conn.execute("SELECT username, password_key_id FROM erp.users").fetchall())
    assert entry[0].startswith("cli:")
    assert entry[2]["password_binding"] == "(redacted)"
    assert entry[2]["password_key_id"] == session_keyring().current.key_id
    assert key_of == {"old-qa": "test-1", "old-op": None, "late": None}
    again = CliRunner().invoke(cli, ["users", "bind-passwords"], env=env)
    assert "bound 0 password(s)" in again.output
    assert "1 already bound" in again.output
