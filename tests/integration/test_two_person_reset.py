"""Two-person resets of accounts that sign: an administrator asks, a QA manager confirms.

Against the real database, API and CLI: the administrator never gets a usable password
for an account that signs; the confirmer is never the account or the requester (the
service refuses it and so does the database); accounts that sign nothing keep the
one-step reset.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from erp_core.app import create_app
from erp_core.audit.service import set_actor
from erp_core.auth import resets
from erp_core.auth.models import LoginPolicy
from erp_core.settings import ApiSettings
from erp_core.signatures import service as signatures
from tests.integration.access_helpers import (
    PASSWORDS,
    FakeClock,
    add_user,
    bearer,
    session_keyring,
    token_for,
)

SECRET = "two-person-reset-secret-0123456789abcdef"
QA = "Quality-First-2026"
ADMIN_CHOSEN = "Admin-Knows-This-One-7"
NEW = "Tulip Secret Garden 99"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(db_url: str, clock: FakeClock) -> Iterator[TestClient]:
    add_user(db_url, "ida", ["admin"], PASSWORDS["admin"], full_name="Ida Admin")
    add_user(db_url, "mei", ["qa_manager"], PASSWORDS["qa_manager"], full_name="Mei Chen")
    add_user(db_url, "uwe", ["qa_manager"], "Second-Manager-Pass-1", full_name="Uwe Berg")
    add_user(db_url, "lena", ["qa"], QA, full_name="Lena Holm")
    add_user(db_url, "tom", ["warehouse"], PASSWORDS["warehouse"], full_name="Tom Lind")
    settings = ApiSettings(database_url=db_url, jwt_secret=SecretStr(SECRET))
    with TestClient(create_app(settings, clock=clock)) as c:
        yield c


def tokens(client: TestClient) -> tuple[dict[str, str], dict[str, str]]:
    """Headers of ida (admin) and mei (QA manager)."""
    return (
        bearer(token_for(client, "ida", PASSWORDS["admin"])),
        bearer(token_for(client, "mei", PASSWORDS["qa_manager"])),
    )


def audit(db_url: str, table: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT action, actor, reason FROM erp.audit_log WHERE table_name = %s ORDER BY seq",
            (table,),
        ).fetchall()


def test_a_qa_reset_takes_an_admin_and_a_qa_manager_who_alone_sees_the_password(
    client: TestClient, db_url: str, clock: FakeClock
) -> None:
    admin, mei = tokens(client)
    lena_before = token_for(client, "lena", QA)
    clock.advance(seconds=5)
    asked = client.post(
        "/api/users/lena/reset-password", json={"reason": "forgot it, ticket 42"}, headers=admin
    )
    assert asked.status_code == 200, asked.text
    body = asked.json()
    assert (body["temporary_password"], body["confirmation_required"]) == (None, True)
    reset_id = body["reset_id"]
    # nothing changed yet: her password and session still work
    assert client.get("/api/auth/me", headers=bearer(lena_before)).status_code == 200
    waiting = client.get("/api/password-resets", headers=mei).json()
    assert [(r["id"], r["username"], r["requested_by"]) for r in waiting] == [
        (reset_id, "lena", "ida")
    ]
    # a wrong password of the QA manager: a refused signature, nothing done
    wrong = client.post(
        f"/api/password-resets/{reset_id}/confirm", json={"password": "not-mine-123"}, headers=mei
    )
    assert wrong.status_code == 403
    assert client.get("/api/auth/me", headers=bearer(lena_before)).status_code == 200
    clock.advance(seconds=5)
    done = client.post(
        f"/api/password-resets/{reset_id}/confirm",
        json={"password": PASSWORDS["qa_manager"], "comment": "badge checked at the desk"},
        headers=mei,
    )
    assert done.status_code == 200, done.text
    temporary = done.json()["temporary_password"]
    assert len(temporary) >= 16
    assert done.json()["signature"].startswith("Signed by Mei Chen (mei) on ")
    assert done.json()["signature"].endswith("meaning: Password reset confirmed")
    # her old password and token are over; the one-time password must be replaced first
    assert client.get("/api/auth/me", headers=bearer(lena_before)).status_code == 401
    clock.advance(seconds=5)
    first = client.post("/api/auth/token", data={"username": "lena", "password": temporary})
    assert first.json()["password_change_required"] is True
    changed = client.post(
        "/api/auth/password",
        json={"current_password": temporary, "new_password": NEW},
        headers=bearer(first.json()["access_token"]),
    )
    assert changed.status_code == 204
    token_for(client, "lena", NEW)
    # once only: confirmed is confirmed
    again = client.post(
        f"/api/password-resets/{reset_id}/confirm",
        json={"password": PASSWORDS["qa_manager"]},
        headers=mei,
    )
    assert again.status_code == 409
    assert client.get("/api/password-resets", headers=mei).json() == []
    # both steps audited, each by its own person; the confirmation is a signature that verifies
    assert audit(db_url, "erp.password_resets") == [
        ("INSERT", "ida", "forgot it, ticket 42"),
        ("UPDATE", "mei", f"password reset {reset_id} of lena confirmed"),
    ]
    assert ("UPDATE", "mei", f"password reset {reset_id} of lena confirmed") in audit(
        db_url, "erp.users"
    )
    with psycopg.connect(db_url) as conn:
        (signature_id,) = conn.execute(
            "SELECT signature_id FROM erp.password_resets WHERE id = %s", (reset_id,)
        ).fetchone()
        check = signatures.verify_signature(
            conn,
            signature_id=signature_id,
            record_table=resets.RECORD_TABLE,
            record_key={"id": reset_id},
            record_content=resets.get(conn, reset_id=reset_id).content(),
            keyring=session_keyring(),
        )
    assert check.valid, check.problems
    assert check.signature.comment == "badge checked at the desk"


def test_the_confirmer_is_neither_the_target_nor_the_requester(
    client: TestClient, db_url: str
) -> None:
    admin, mei = tokens(client)
    own = client.post("/api/users/mei/reset-password", json={"reason": "x"}, headers=admin)
    r = client.post(
        f"/api/password-resets/{own.json()['reset_id']}/confirm",
        json={"password": PASSWORDS["qa_manager"]},
        headers=mei,
    )
    assert r.status_code == 403
    assert "nobody confirms the reset of their own password" in r.json()["detail"]
    # a request by mei herself (written as a database writer could) is not hers to confirm
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="mei", reason="x")
        (by_mei,) = conn.execute(
            "INSERT INTO erp.password_resets (user_id, username, requested_by, requested_at,"
            " reason) SELECT id, 'lena', 'mei', now(), 'x' FROM erp.users"
            " WHERE username = 'lena' RETURNING id"
        ).fetchone()
    r = client.post(
        f"/api/password-resets/{by_mei}/confirm",
        json={"password": PASSWORDS["qa_manager"]},
        headers=mei,
    )
    assert r.status_code == 403
    assert "requested the reset cannot also confirm it" in r.json()["detail"]
    # an administrator or a QA user may not confirm at all
    lena = bearer(token_for(client, "lena", QA))
    for who in (admin, lena):
        r = client.post(
            f"/api/password-resets/{own.json()['reset_id']}/confirm",
            json={"password": "whatever-123"},
            headers=who,
        )
        assert r.status_code == 403
    # the database refuses the same, whoever writes the rows
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="mei", reason="forged")
        (sig,) = conn.execute(
            "INSERT INTO erp.signatures (user_id, username, full_name, signed_at, meaning,"
            " record_table, record_key, record_hash, signature_hash, algorithm, key_id)"
            " SELECT id, username, full_name, now(), 'Password reset confirmed',"
            " 'erp.password_resets', jsonb_build_object('id', %s::bigint), repeat('0', 64),"
            " repeat('0', 64), 'hmac-sha256', 'test-1' FROM erp.users WHERE username = 'mei'"
            " RETURNING id",
            (by_mei,),
        ).fetchone()
        conn.commit()
        confirm = (
            "UPDATE erp.password_resets SET confirmed_by = %s, confirmed_by_id ="
            " (SELECT id FROM erp.users WHERE username = %s), confirmed_at = now(),"
            " signature_id = %s WHERE id = %s"
        )
        refusals = {
            "password_reset_confirmer_not_requester": ("mei", "mei", sig, by_mei),
            "password_reset_confirmer_not_target": ("lena", "lena", sig, by_mei),
            "password_reset_confirmer_role": ("tom", "tom", sig, by_mei),
            "password_reset_confirmer_signature": ("uwe", "uwe", sig, by_mei),
        }
        for constraint, args in refusals.items():
            with pytest.raises(psycopg.errors.CheckViolation) as info:
                conn.execute(confirm, args)
            assert info.value.diag.constraint_name == constraint
            conn.rollback()
            set_actor(conn, user="mei", reason="forged")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM erp.password_resets WHERE id = %s", (by_mei,))
        conn.rollback()
        set_actor(conn, user="mei", reason="forged")
        with pytest.raises(psycopg.errors.CheckViolation, match="not edited"):
            conn.execute("UPDATE erp.password_resets SET reason = 'y' WHERE id = %s", (by_mei,))


def test_an_administrator_alone_gets_no_usable_password_for_an_account_that_signs(
    client: TestClient, db_url: str, clock: FakeClock
) -> None:
    admin, _ = tokens(client)
    # created with a signing role: no password from the administrator
    new = {"username": "nina", "full_name": "Nina Qu", "roles": ["qa"], "reason": "new hire"}
    refused = client.post("/api/users", json={**new, "password": ADMIN_CHOSEN}, headers=admin)
    assert refused.status_code == 409
    assert "never set by an administrator" in refused.json()["detail"]
    made = client.post("/api/users", json=new, headers=admin)
    assert made.status_code == 201
    assert made.json()["password_reset_id"] is not None
    # a one-time password of the administrator's choosing is refused too
    chosen = client.post(
        "/api/users/lena/reset-password",
        json={"reason": "x", "temporary_password": ADMIN_CHOSEN},
        headers=admin,
    )
    assert chosen.status_code == 409
    # The long way round: reset an account that does not sign (one step, the administrator
    # learns it), make it their own, then give it a signing role. The grant withdraws it.
    clock.advance(seconds=5)
    r = client.post("/api/users/tom/reset-password", json={"reason": "x"}, headers=admin)
    temporary = r.json()["temporary_password"]
    clock.advance(seconds=5)
    as_tom = client.post("/api/auth/token", data={"username": "tom", "password": temporary})
    r = client.post(
        "/api/auth/password",
        json={"current_password": temporary, "new_password": ADMIN_CHOSEN},
        headers=bearer(as_tom.json()["access_token"]),
    )
    assert r.status_code == 204
    tom = token_for(client, "tom", ADMIN_CHOSEN)
    clock.advance(seconds=5)
    granted = client.put(
        "/api/users/tom/roles", json={"roles": ["qa"], "reason": "moved to QA"}, headers=admin
    )
    assert granted.status_code == 200
    assert granted.json()["password_reset_id"] is not None
    assert client.get("/api/auth/me", headers=bearer(tom)).status_code == 401
    r = client.post("/api/auth/token", data={"username": "tom", "password": ADMIN_CHOSEN})
    assert r.status_code == 401
    waiting = {r["username"] for r in client.get("/api/password-resets", headers=admin).json()}
    assert waiting == {"nina", "tom"}


def test_an_account_that_does_not_sign_keeps_the_one_step_reset(
    client: TestClient, db_url: str, clock: FakeClock
) -> None:
    admin, _ = tokens(client)
    clock.advance(seconds=5)
    r = client.post("/api/users/tom/reset-password", json={"reason": "ticket 5"}, headers=admin)
    assert r.status_code == 200
    assert (r.json()["confirmation_required"], r.json()["reset_id"]) == (False, None)
    temporary = r.json()["temporary_password"]
    clock.advance(seconds=5)
    first = client.post("/api/auth/token", data={"username": "tom", "password": temporary})
    assert first.status_code == 200
    assert first.json()["password_change_required"] is True
    assert audit(db_url, "erp.password_resets") == []


def test_an_unconfirmed_request_expires_and_a_new_one_replaces_it(
    client: TestClient, db_url: str, clock: FakeClock
) -> None:
    admin, mei = tokens(client)
    first = client.post("/api/users/lena/reset-password", json={"reason": "a"}, headers=admin)
    second = client.post("/api/users/lena/reset-password", json={"reason": "b"}, headers=admin)
    r = client.post(
        f"/api/password-resets/{first.json()['reset_id']}/confirm",
        json={"password": PASSWORDS["qa_manager"]},
        headers=mei,
    )
    assert r.status_code == 409
    assert "cancelled" in r.json()["detail"]
    assert second.json()["expires_at"].startswith("2026-11-28T12:00:00")  # 72 h
    clock.advance(hours=72)
    mei = bearer(token_for(client, "mei", PASSWORDS["qa_manager"]))
    r = client.post(
        f"/api/password-resets/{second.json()['reset_id']}/confirm",
        json={"password": PASSWORDS["qa_manager"]},
        headers=mei,
    )
    assert r.status_code == 409
    assert "expired" in r.json()["detail"]
    assert client.get("/api/password-resets", headers=mei).json() == []


def test_cli_resets_follow_the_same_rule(client: TestClient, db_url: str) -> None:
    env = {"COLDTRACE_DATABASE_URL": db_url, "COLUMNS": "300"}
    runner = CliRunner()
    asked = runner.invoke(cli, ["users", "reset-password", "lena", "--reason", "ticket 8"], env=env)
    assert asked.exit_code == 0, asked.output
    assert "shown once" not in asked.output
    with psycopg.connect(db_url) as conn:
        (reset_id,) = conn.execute(
            "SELECT id FROM erp.password_resets WHERE reason = 'ticket 8'"
        ).fetchone()
    assert f"confirms reset {reset_id}" in asked.output
    chose = runner.invoke(cli, ["users", "reset-password", "lena", "--choose"], env=env)
    assert chose.exit_code == 1
    listed = runner.invoke(cli, ["users", "resets"], env=env)
    assert f"{reset_id} " in listed.output
    assert "lena" in listed.output
    # the administrator's console account is no QA manager; the target is not either
    for who, password in (("ida", PASSWORDS["admin"]), ("lena", QA)):
        r = runner.invoke(
            cli,
            ["users", "confirm-reset", str(reset_id), "--username", who],
            env=env,
            input=f"{password}\n",
        )
        assert r.exit_code == 1, r.output
        assert "may not confirm" in r.output
    done = runner.invoke(
        cli,
        ["users", "confirm-reset", str(reset_id), "--username", "mei"],
        env=env,
        input=f"{PASSWORDS['qa_manager']}\n",
    )
    assert done.exit_code == 0, done.output
    assert "meaning: Password reset confirmed" in done.output
    temporary = done.output.split("first sign-in): ")[1].split()[0]
    r = client.post("/api/auth/token", data={"username": "lena", "password": temporary})
    assert r.json()["password_change_required"] is True
    # a QA account added at the console while QA managers exist: no password typed
    added = runner.invoke(
        cli,
        ["users", "add", "--username", "ole", "--full-name", "Ole Sund", "--role", "qa"],
        env={**env, "COLDTRACE_NEW_USER_PASSWORD": ADMIN_CHOSEN},
    )
    assert added.exit_code == 0, added.output
    assert "has no usable password until a QA manager" in added.output
    r = client.post("/api/auth/token", data={"username": "ole", "password": ADMIN_CHOSEN})
    assert r.status_code == 401


def test_console_bootstrap_only_while_no_other_qa_manager_could_confirm(db_url: str) -> None:
    env = {"COLDTRACE_DATABASE_URL": db_url, "COLUMNS": "300"}
    runner = CliRunner()
    first = runner.invoke(
        cli,
        ["users", "add", "--username", "mei", "--full-name", "Mei Chen", "--role", "qa_manager"],
        env=env,
        input="Lantern-Typed-Here-2026\nLantern-Typed-Here-2026\n",
    )
    assert first.exit_code == 0, first.output
    assert "console bootstrap" in first.output
    # the only QA manager forgot her password: nobody could confirm, so she types one
    reset = runner.invoke(
        cli,
        ["users", "reset-password", "mei", "--reason", "forgot it"],
        env=env,
        input="Harbour-Typed-Again-2026\nHarbour-Typed-Again-2026\n",
    )
    assert reset.exit_code == 0, reset.output
    assert "console bootstrap" in reset.output
    # with her there, a second QA manager is not bootstrapped: mei confirms
    second = runner.invoke(
        cli,
        ["users", "add", "--username", "uwe", "--full-name", "Uwe Berg", "--role", "qa_manager"],
        env=env,
    )
    assert second.exit_code == 0, second.output
    assert "has no usable password until a QA manager" in second.output
    settings = ApiSettings(database_url=db_url, jwt_secret=SecretStr(SECRET))
    with TestClient(create_app(settings, clock=FakeClock())) as c:
        token_for(c, "mei", "Harbour-Typed-Again-2026")
    with psycopg.connect(db_url) as conn:
        waiting = resets.open_requests(conn, now=FakeClock().now, policy=LoginPolicy())
    assert [w.username for w in waiting] == ["uwe"]
