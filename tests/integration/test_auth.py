"""Logins, tokens, login limiting, role checks and separation of duties over real HTTP + DB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from erp_core.app import create_app
from erp_core.audit.service import set_actor
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import (
    PASSWORDS,
    START,
    FakeClock,
    add_user,
    bearer,
    token_for,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(db_url: str, clock: FakeClock) -> Iterator[TestClient]:
    settings = ApiSettings(
        database_url=db_url,
        pool_min_size=1,
        pool_max_size=4,
        jwt_secret=SecretStr("test-secret-for-auth-tests-0123456789"),
        jwt_lifetime_minutes=30,
    )
    with TestClient(create_app(settings, clock=clock)) as c:
        yield c


@pytest.fixture
def tokens(db_url: str, client: TestClient) -> dict[str, str]:
    """One user per role, each with only that role; their tokens by role name."""
    result = {}
    for role, password in PASSWORDS.items():
        add_user(db_url, f"{role.replace('_', '-')}-1", [role], password)
        result[role] = token_for(client, f"{role.replace('_', '-')}-1", password)
    return result


def test_login_and_me(db_url: str, client: TestClient) -> None:
    add_user(db_url, "anna", ["qa", "warehouse"], "Tulip-Secret-99", full_name="Anna Berg")
    token = token_for(client, "anna", "Tulip-Secret-99")
    r = client.get("/api/auth/me", headers=bearer(token))
    assert r.status_code == 200
    assert r.json()["username"] == "anna"
    assert r.json()["full_name"] == "Anna Berg"
    assert sorted(r.json()["roles"]) == ["qa", "warehouse"]


def test_bad_credentials_and_tokens_are_refused(db_url: str, client: TestClient) -> None:
    add_user(db_url, "anna", ["qa"], "Tulip-Secret-99")
    wrong = client.post("/api/auth/token", data={"username": "anna", "password": "nope-nope-1"})
    assert wrong.status_code == 401
    unknown = client.post("/api/auth/token", data={"username": "ghost", "password": "x" * 12})
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]  # no user enumeration
    assert client.get("/api/auth/me").status_code == 401
    assert client.get("/api/auth/me", headers=bearer("not.a.jwt")).status_code == 401
    # A token signed with another secret is refused.
    other = ApiSettings(
        database_url=db_url, jwt_secret=SecretStr("another-secret-0123456789-0123456789")
    )
    with TestClient(create_app(other, clock=lambda: START)) as other_client:
        foreign = token_for(other_client, "anna", "Tulip-Secret-99")
    assert client.get("/api/auth/me", headers=bearer(foreign)).status_code == 401


def test_token_expires_after_its_lifetime(
    db_url: str, client: TestClient, clock: FakeClock
) -> None:
    add_user(db_url, "anna", ["qa"], "Tulip-Secret-99")
    r = client.post("/api/auth/token", data={"username": "anna", "password": "Tulip-Secret-99"})
    assert r.json()["expires_in"] == 30 * 60
    token = r.json()["access_token"]
    clock.advance(minutes=29, seconds=59)
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    clock.advance(seconds=1)  # exactly 30 minutes after issue
    r = client.get("/api/auth/me", headers=bearer(token))
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_five_failures_lock_the_account_for_fifteen_minutes(
    db_url: str, client: TestClient, clock: FakeClock, tokens: dict[str, str]
) -> None:
    add_user(db_url, "anna", ["qa"], "Tulip-Secret-99")
    for _ in range(4):
        clock.advance(minutes=1)
        r = client.post("/api/auth/token", data={"username": "anna", "password": "wrong-pw-123"})
        assert r.status_code == 401
    # Four failures: the right password still works, and resets the count.
    clock.advance(minutes=1)
    token_for(client, "anna", "Tulip-Secret-99")
    for _ in range(5):
        clock.advance(minutes=2)
        client.post("/api/auth/token", data={"username": "anna", "password": "wrong-pw-123"})
    fifth_failure = clock.now
    clock.advance(minutes=1)
    r = client.post("/api/auth/token", data={"username": "anna", "password": "Tulip-Secret-99"})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) == 14 * 60  # locked until 15 min after the 5th
    # Administrators see the lock and the attempts with time and source address.
    users = client.get("/api/users", headers=bearer(tokens["admin"])).json()
    anna = next(u for u in users if u["username"] == "anna")
    assert datetime.fromisoformat(anna["locked_until"]) == fifth_failure + timedelta(minutes=15)
    assert anna["recent_failures"] == 5
    attempts = client.get("/api/users/anna/login-attempts", headers=bearer(tokens["admin"]))
    outcomes = [a["outcome"] for a in attempts.json()]
    assert outcomes == ["bad_password"] * 4 + ["success"] + ["bad_password"] * 5 + ["locked"]
    assert {a["source"] for a in attempts.json()} == {"testclient"}
    # Still locked one second before the end, open at the end.
    clock.now = fifth_failure + timedelta(minutes=15) - timedelta(seconds=1)
    r = client.post("/api/auth/token", data={"username": "anna", "password": "Tulip-Secret-99"})
    assert r.status_code == 429
    clock.now = fifth_failure + timedelta(minutes=15)
    token_for(client, "anna", "Tulip-Secret-99")


def test_failures_spread_beyond_the_window_do_not_lock(
    db_url: str, client: TestClient, clock: FakeClock
) -> None:
    add_user(db_url, "anna", ["qa"], "Tulip-Secret-99")
    for _ in range(8):
        clock.advance(minutes=4)  # at most 4 failures in any 15 minutes
        r = client.post("/api/auth/token", data={"username": "anna", "password": "wrong-pw-123"})
        assert r.status_code == 401
    token_for(client, "anna", "Tulip-Secret-99")


# (method, path, JSON body, roles allowed). Bodies are valid so an allowed role gets 2xx.
ENDPOINTS = [
    ("GET", "/api/auth/me", None, {"operator", "warehouse", "qa", "qa_manager", "admin"}),
    ("GET", "/api/users", None, {"admin"}),
    (
        "POST",
        "/api/users",
        {"username": "new-{role}", "full_name": "New Person", "password": "Fresh-Pass-123"},
        {"admin"},
    ),
    ("PUT", "/api/users/operator-1/roles", {"roles": ["operator"], "reason": "r"}, {"admin"}),
    ("POST", "/api/users/warehouse-1/enable", {"reason": "r"}, {"admin"}),
    ("GET", "/api/users/qa-1/login-attempts", None, {"admin"}),
    ("GET", "/api/audit?table=erp.users", None, {"qa", "qa_manager", "admin"}),
    ("GET", "/api/audit/verify", None, {"qa_manager", "admin"}),
]


def test_each_role_is_refused_what_it_may_not_do(
    client: TestClient, tokens: dict[str, str]
) -> None:
    for method, path, body, allowed in ENDPOINTS:
        assert client.request(method, path, json=body).status_code == 401, path
        for role, token in tokens.items():
            payload = None
            if body is not None:
                payload = {
                    k: v.format(role=role.replace("_", "-")) if isinstance(v, str) else v
                    for k, v in body.items()
                }
            r = client.request(method, path, json=payload, headers=bearer(token))
            if role in allowed:
                assert r.status_code in (200, 201), (path, role, r.text)
            else:
                assert r.status_code == 403, (path, role, r.text)


def test_admin_manages_users_and_changes_are_audited(
    client: TestClient, tokens: dict[str, str], db_url: str, clock: FakeClock
) -> None:
    admin = bearer(tokens["admin"])
    r = client.post(
        "/api/users",
        headers=admin,
        json={
            "username": "bert",
            "full_name": "Bert Lund",
            "password": "Rose-Pass-2026",
            "roles": ["warehouse"],
            "reason": "new hire, ticket 17",
        },
    )
    assert r.status_code == 201, r.text
    bert_token = token_for(client, "bert", "Rose-Pass-2026")
    r = client.put(
        "/api/users/bert/roles",
        headers=admin,
        json={"roles": ["warehouse", "operator"], "reason": "also floor"},
    )
    assert r.json()["password_reset_id"] is None  # no signing role: nothing else changes
    assert client.get("/api/auth/me", headers=bearer(bert_token)).status_code == 200
    clock.advance(seconds=5)  # tokens carry whole seconds
    r = client.put(
        "/api/users/bert/roles", headers=admin, json={"roles": ["qa"], "reason": "moved to QA"}
    )
    assert r.json()["roles"] == ["qa"]
    # Bert signs from now on: the password the administrator gave him is withdrawn (his
    # token with it) until a QA manager confirms the reset (test_two_person_reset.py).
    assert r.json()["password_reset_id"] is not None
    assert client.get("/api/auth/me", headers=bearer(bert_token)).status_code == 401
    r = client.post("/api/users/bert/disable", headers=admin, json={"reason": "left"})
    assert r.json()["active"] is False
    # A disabled user cannot log in.
    r = client.post("/api/auth/token", data={"username": "bert", "password": "Rose-Pass-2026"})
    assert r.status_code == 401
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT table_name, action, actor, reason, old_values, new_values "
            "FROM erp.audit_log WHERE actor = 'admin-1' ORDER BY seq"
        ).fetchall()
    assert [(t, a, reason) for t, a, _, reason, _, _ in rows] == [
        ("erp.users", "INSERT", "new hire, ticket 17"),
        ("erp.users", "UPDATE", "new hire, ticket 17"),  # the hash bound (the id is known)
        ("erp.user_roles", "INSERT", "new hire, ticket 17"),
        ("erp.user_roles", "INSERT", "also floor"),
        ("erp.user_roles", "DELETE", "moved to QA"),
        ("erp.user_roles", "DELETE", "moved to QA"),
        ("erp.user_roles", "INSERT", "moved to QA"),
        ("erp.users", "UPDATE", "moved to QA"),  # the password withdrawn
        ("erp.password_resets", "INSERT", "moved to QA"),
        ("erp.users", "UPDATE", "left"),
    ]
    assert rows[0][5]["password_hash"] == "(redacted)"
    assert rows[0][5]["full_name"] == "Bert Lund"
    assert rows[1][5]["password_binding"] == "(redacted)"
    assert rows[1][5]["password_key_id"] == "test-1"
    assert {rows[4][4]["role"], rows[5][4]["role"]} == {"warehouse", "operator"}
    assert rows[7][5]["password_hash"] == "(redacted)"
    assert rows[7][5]["password_serial"] == rows[7][4]["password_serial"] + 1
    assert rows[8][5]["username"] == "bert"
    assert rows[9][4]["active"] is True
    assert rows[9][5]["active"] is False


def test_separation_of_duties(client: TestClient, tokens: dict[str, str], db_url: str) -> None:
    admin = bearer(tokens["admin"])
    r = client.post(
        "/api/users",
        headers=admin,
        json={
            "username": "carl",
            "full_name": "Carl",
            "password": "Lily-Pass-2026",
            "roles": ["admin", "qa_manager"],
        },
    )
    assert r.status_code == 409
    assert "separation of duties" in r.json()["detail"]
    r = client.put(
        "/api/users/qa-1/roles", headers=admin, json={"roles": ["qa", "admin"], "reason": "x"}
    )
    assert r.status_code == 409
    r = client.put("/api/users/admin-1/roles", headers=admin, json={"roles": ["qa"], "reason": "x"})
    assert r.status_code == 200  # swapping roles entirely is allowed
    # The database refuses it too, whatever client writes the roles.
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="sql-client", reason="bypass attempt")
        with pytest.raises(psycopg.errors.CheckViolation) as info:
            conn.execute(
                "INSERT INTO erp.user_roles (user_id, role, granted_at) "
                "SELECT id, 'admin', now() FROM erp.users WHERE username = 'qa-manager-1'"
            )
    assert info.value.diag.constraint_name == "separation_of_duties"


def test_users_are_never_deleted(db_url: str) -> None:
    add_user(db_url, "dora", ["operator"], "Iris-Pass-2026")
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="sql-client", reason="cleanup")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM erp.users WHERE username = 'dora'")


def test_cli_bootstraps_and_manages_users(db_url: str, client: TestClient) -> None:
    env = {"COLDTRACE_DATABASE_URL": db_url, "COLUMNS": "200"}
    runner = CliRunner()
    add = [
        "users",
        "add",
        "--username",
        "root-admin",
        "--full-name",
        "Ida Admin",
        "--role",
        "admin",
    ]
    r = runner.invoke(cli, add, env={**env, "COLDTRACE_NEW_USER_PASSWORD": "Boot-Strap-2026"})
    assert r.exit_code == 0, r.output
    token_for(client, "root-admin", "Boot-Strap-2026")
    # Without the variable the password is prompted for, twice.
    r = runner.invoke(
        cli,
        ["users", "add", "--username", "ole", "--full-name", "Ole", "--role", "qa"],
        env=env,
        input="Prompted-Pass-1\nPrompted-Pass-1\n",
    )
    assert r.exit_code == 0, r.output
    token_for(client, "ole", "Prompted-Pass-1")
    r = runner.invoke(
        cli,
        [
            "users",
            "set-roles",
            "--username",
            "ole",
            "--role",
            "qa",
            "--role",
            "admin",
            "--reason",
            "try",
        ],
        env=env,
    )
    assert r.exit_code == 1
    assert "separation of duties" in r.output
    r = runner.invoke(cli, ["users", "disable", "--username", "ole", "--reason", "left"], env=env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["users", "list"], env=env)
    assert r.exit_code == 0
    ole_line = next(line for line in r.output.splitlines() if " ole " in line)
    assert " no " in ole_line
    with psycopg.connect(db_url) as conn:
        actors = {a for (a,) in conn.execute("SELECT DISTINCT actor FROM erp.audit_log")}
    assert any(a.startswith("cli:") for a in actors)
