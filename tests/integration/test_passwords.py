"""Password change by the user, reset by an administrator, the forced change, the policy."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from erp_core.app import create_app
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import PASSWORDS, FakeClock, add_user, bearer, token_for
from tests.integration.web_helpers import csrf_of, sign_in_response

SECRET = "password-tests-secret-0123456789abcdef"
LENA = "Quality-First-2026"
NEW = "Tulip Secret Garden 99"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(db_url: str, clock: FakeClock) -> Iterator[TestClient]:
    # lena signs nothing: the one-step reset (accounts that sign: test_two_person_reset.py)
    add_user(db_url, "lena", ["warehouse"], LENA, full_name="Lena Holm")
    add_user(db_url, "ida", ["admin"], PASSWORDS["admin"], full_name="Ida Admin")
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=4, jwt_secret=SecretStr(SECRET)
    )
    with TestClient(create_app(settings, clock=clock)) as c:
        yield c


def change(client: TestClient, token: str, current: str, new: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/auth/password",
        json={"current_password": current, "new_password": new},
        headers=bearer(token),
    )


def audit_rows(db_url: str, actor: str) -> list[tuple[str, str, dict, dict]]:  # type: ignore[type-arg]
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT action, reason, old_values, new_values FROM erp.audit_log"
            " WHERE table_name = 'erp.users' AND actor = %s ORDER BY seq",
            (actor,),
        ).fetchall()


def test_user_changes_own_password(client: TestClient, db_url: str, clock: FakeClock) -> None:
    token = token_for(client, "lena", LENA)
    wrong = change(client, token, "not-my-password-1", NEW)
    assert wrong.status_code == 401
    weak = change(client, token, LENA, "1234567890")
    assert weak.status_code == 422
    assert "at least 12 characters" in weak.json()["detail"][0]["msg"]
    common = change(client, token, LENA, "Password2026!")
    assert common.status_code == 422
    assert "common password" in common.json()["detail"][0]["msg"]
    same = change(client, token, LENA, LENA)
    assert same.status_code == 422
    clock.advance(seconds=5)
    assert change(client, token, LENA, NEW).status_code == 204
    # every token from before the change is dead; the new password works, the old not
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401
    assert (
        client.post("/api/auth/token", data={"username": "lena", "password": LENA}).status_code
        == 401
    )
    fresh = token_for(client, "lena", NEW)
    assert client.get("/api/sensors", headers=bearer(fresh)).status_code == 200
    # audited by the user, hash redacted; the wrong current password was a recorded failure
    ((action, reason, old, new),) = audit_rows(db_url, "lena")
    assert (action, reason) == ("UPDATE", "password changed by the user")
    assert old["password_hash"] == new["password_hash"] == "(redacted)"
    with psycopg.connect(db_url) as conn:
        tried = conn.execute(
            "SELECT channel, outcome FROM erp.login_attempts WHERE username = 'lena' ORDER BY id"
        ).fetchall()
    assert ("password_change", "bad_password") in tried
    assert tried.count(("password_change", "success")) == 4  # the three refused + the change


def test_admin_reset_forces_a_change_before_anything_else(
    client: TestClient, db_url: str, clock: FakeClock
) -> None:
    admin = token_for(client, "ida", PASSWORDS["admin"])
    lena_before = token_for(client, "lena", LENA)
    clock.advance(seconds=5)
    r = client.post(
        "/api/users/lena/reset-password",
        json={"reason": "forgot it, ticket 42"},
        headers=bearer(admin),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    temporary = body["temporary_password"]
    assert body["must_change_password"] is True
    assert len(temporary) >= 16
    assert body["expires_at"].startswith("2026-11-28T12:00:05")  # 72 h
    # her old token stopped working; the old password too
    assert client.get("/api/auth/me", headers=bearer(lena_before)).status_code == 401
    clock.advance(seconds=5)
    r = client.post("/api/auth/token", data={"username": "lena", "password": temporary})
    assert r.status_code == 200
    assert r.json()["password_change_required"] is True
    lena = r.json()["access_token"]
    refused = client.get("/api/sensors", headers=bearer(lena))
    assert refused.status_code == 403
    assert "password change required" in refused.json()["detail"]
    me = client.get("/api/auth/me", headers=bearer(lena))
    assert me.status_code == 200
    assert me.json()["must_change_password"] is True
    clock.advance(seconds=5)
    assert change(client, lena, temporary, NEW).status_code == 204
    final = token_for(client, "lena", NEW)
    assert client.get("/api/sensors", headers=bearer(final)).status_code == 200
    # the temporary password is gone: it was one-time
    assert (
        client.post("/api/auth/token", data={"username": "lena", "password": temporary}).status_code
        == 401
    )
    actions = [(a, reason) for a, reason, _, _ in audit_rows(db_url, "ida")]
    assert actions == [("UPDATE", "forgot it, ticket 42")]
    assert [reason for _, reason, _, _ in audit_rows(db_url, "lena")] == [
        "password changed by the user"
    ]


def test_admin_chosen_temporary_password_expires(client: TestClient, clock: FakeClock) -> None:
    admin = token_for(client, "ida", PASSWORDS["admin"])
    chosen = "Hand-Over-Sheet-77"
    r = client.post(
        "/api/users/lena/reset-password",
        json={"reason": "new badge", "temporary_password": chosen},
        headers=bearer(admin),
    )
    assert r.status_code == 200
    assert r.json()["temporary_password"] is None  # not echoed: the admin typed it
    weak = client.post(
        "/api/users/lena/reset-password",
        json={"reason": "x", "temporary_password": "1234567890"},
        headers=bearer(admin),
    )
    assert weak.status_code == 422
    clock.advance(hours=72)
    r = client.post("/api/auth/token", data={"username": "lena", "password": chosen})
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_only_admins_reset(client: TestClient) -> None:
    lena = token_for(client, "lena", LENA)
    r = client.post("/api/users/ida/reset-password", json={"reason": "x"}, headers=bearer(lena))
    assert r.status_code == 403


def test_users_created_by_an_admin_choose_their_own_password(client: TestClient) -> None:
    admin = token_for(client, "ida", PASSWORDS["admin"])
    new = {
        "username": "ole",
        "full_name": "Ole Sund",
        "password": "Start-Sheet-2026",
        "roles": ["operator"],
    }
    assert client.post("/api/users", json=new, headers=bearer(admin)).status_code == 201
    r = client.post("/api/auth/token", data={"username": "ole", "password": "Start-Sheet-2026"})
    assert r.json()["password_change_required"] is True
    weak = {**new, "username": "olga", "password": "1234567890"}
    assert client.post("/api/users", json=weak, headers=bearer(admin)).status_code == 422


def test_cli_reset_prints_a_one_time_password(client: TestClient, db_url: str) -> None:
    env = {"COLDTRACE_DATABASE_URL": db_url}
    r = CliRunner().invoke(
        cli, ["users", "reset-password", "lena", "--reason", "ticket 7"], env=env
    )
    assert r.exit_code == 0, r.output
    temporary = r.output.split("one-time password (shown once): ")[1].split()[0]
    token = client.post("/api/auth/token", data={"username": "lena", "password": temporary})
    assert token.json()["password_change_required"] is True
    with psycopg.connect(db_url) as conn:
        (actor,) = conn.execute(
            "SELECT actor FROM erp.audit_log WHERE reason = 'ticket 7'"
        ).fetchone()
    assert actor.startswith("cli:")
    chosen = CliRunner().invoke(
        cli,
        ["users", "reset-password", "lena", "--choose"],
        env=env,
        input="Chosen-Sheet-2026\nChosen-Sheet-2026\n",
    )
    assert chosen.exit_code == 0, chosen.output
    assert "shown once" not in chosen.output
    unknown = CliRunner().invoke(cli, ["users", "reset-password", "nobody"], env=env)
    assert unknown.exit_code == 1


def test_web_forced_change_and_password_page(
    client: TestClient, db_url: str, clock: FakeClock
) -> None:
    admin = token_for(client, "ida", PASSWORDS["admin"])
    other_browser = TestClient(client.app)
    assert sign_in_response(other_browser, "lena", LENA).status_code == 303
    clock.advance(seconds=5)
    r = client.post(
        "/api/users/lena/reset-password", json={"reason": "ticket 9"}, headers=bearer(admin)
    )
    temporary = r.json()["temporary_password"]
    # the reset ended her session in the other browser
    gone = other_browser.get("/", follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"].startswith("/sign-in")
    clock.advance(seconds=5)
    browser = TestClient(client.app)
    signed = sign_in_response(browser, "lena", temporary, next_url="/alerts")
    assert signed.status_code == 303
    assert signed.headers["location"].startswith("/account/password?")
    # every other page sends her to the password page
    r = browser.get("/alerts", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/account/password?next=%2Falerts")
    form = browser.get("/account/password")
    assert form.status_code == 200
    assert "set by an administrator" in form.text
    csrf = csrf_of(form.text)
    data = {"current_password": temporary, "new_password": NEW, "new_password_again": NEW}
    assert browser.post("/account/password", data=data, follow_redirects=False).status_code == 403
    differ = {**data, "new_password_again": NEW + "x", "csrf_token": csrf}
    assert browser.post("/account/password", data=differ).status_code == 422
    weak = {**data, "new_password": "qwertyuiopas", "new_password_again": "qwertyuiopas"}
    assert browser.post("/account/password", data={**weak, "csrf_token": csrf}).status_code == 422
    done = browser.post(
        "/account/password",
        data={**data, "csrf_token": csrf, "next": "/alerts"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/alerts"
    assert browser.get("/alerts").status_code == 200  # still signed in, with a new session
    with psycopg.connect(db_url) as conn:
        ends = conn.execute(
            "SELECT reason FROM erp.web_session_ends e JOIN erp.web_sessions s USING (sid)"
            " WHERE s.username = 'lena' ORDER BY e.ended_at"
        ).fetchall()
    assert ends == [("password_changed",), ("password_changed",)]


def test_secure_cookies_and_hsts_only_over_tls(db_url: str, clock: FakeClock) -> None:
    add_user(db_url, "lena", ["qa"], LENA)
    trusting = ApiSettings(
        database_url=db_url, jwt_secret=SecretStr(SECRET), trusted_proxies=["testclient"]
    )
    with TestClient(create_app(trusting, clock=clock)) as c:
        plain = sign_in_response(c, "lena", LENA)
        assert "secure" not in plain.headers["set-cookie"].lower()
        assert "strict-transport-security" not in plain.headers
        tls = TestClient(c.app, base_url="https://testserver")
        r = sign_in_response(tls, "lena", LENA)
        assert r.status_code == 303
        assert "secure" in r.headers["set-cookie"].lower()
        assert r.headers["strict-transport-security"].startswith("max-age=")
        # TLS ended at a trusted proxy: the forwarded scheme counts
        proxied = c.get("/sign-in", headers={"X-Forwarded-Proto": "https"})
        assert "secure" in proxied.headers["set-cookie"].lower()
        assert "strict-transport-security" in proxied.headers
    untrusting = ApiSettings(database_url=db_url, jwt_secret=SecretStr(SECRET))
    with TestClient(create_app(untrusting, clock=clock)) as c:
        forged = c.get("/sign-in", headers={"X-Forwarded-Proto": "https"})
        assert "secure" not in forged.headers["set-cookie"].lower()
        assert "strict-transport-security" not in forged.headers
