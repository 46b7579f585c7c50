"""Web-UI sessions against a real PostgreSQL: sign-in, roles, CSRF, inactivity, signing.

Every page sends an anonymous browser to sign-in; forms need the session's CSRF token
and the API's roles; the signature form signs as the session's user only; the failed-login
limit of the API applies to the web form too. Time comes from a fake clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.types import Message, Receive, Scope, Send

from erp_core.alerts.signed_close import MEANING
from erp_core.app import create_app
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import PASSWORDS, START, FakeClock, add_user
from tests.integration.api_client import Api
from tests.integration.test_release import fridge_with_lot
from tests.integration.web_helpers import csrf_of, sign_in, sign_in_response

SECRET = "web-session-test-secret-0123456789abcdef"
USERS = {"admin": "admin", "wh": "warehouse", "qa": "qa", "boss": "qa_manager", "op": "operator"}
IDLE_MINUTES = 15


@dataclass
class Web:
    client: TestClient
    clock: FakeClock
    db_url: str
    lot: int
    sensor: int
    alert: int

    def fresh(self) -> TestClient:
        """Another browser (its own cookie jar) on the same app."""
        return TestClient(self.client.app)

    def count(self, sql: str, *args: object) -> int:
        with psycopg.connect(self.db_url) as conn:
            row = conn.execute(sql, args).fetchone()
        assert row is not None
        return int(row[0])


def password(username: str) -> str:
    return PASSWORDS[USERS[username]]


@pytest.fixture
def web(db_url: str) -> Iterator[Web]:
    for name, role in USERS.items():
        add_user(db_url, name, [role], password(name))
    clock = FakeClock()
    settings = ApiSettings(
        database_url=db_url,
        pool_min_size=1,
        pool_max_size=4,
        jwt_secret=SecretStr(SECRET),
        web_idle_minutes=IDLE_MINUTES,
    )
    with TestClient(create_app(settings, clock=clock)) as client:
        lot, sensor = fridge_with_lot(
            Api(client, secret=SECRET, now=clock.now), db_url, code="FW", lot_number="WEB-7"
        )
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, sensor_id, status, started_at,"
                " ended_at, summary, peak) VALUES ('excursion_high', 'critical', %s, 'open', %s,"
                " %s, 'Fridge FW above 8 °C for 20 min', 9.1) RETURNING id",
                (sensor, START - timedelta(hours=2), START - timedelta(hours=1)),
            ).fetchone()
        assert row is not None
        yield Web(client, clock, db_url, lot, sensor, int(row[0]))


def _location(response: object) -> tuple[str, dict[str, list[str]]]:
    location = response.headers["location"]  # type: ignore[attr-defined]
    parts = urlsplit(location)
    return parts.path, parse_qs(parts.query)


def test_every_page_sends_an_anonymous_browser_to_sign_in(web: Web) -> None:
    pages = ["/", "/lots", f"/lots/{web.lot}", "/alerts", f"/sensors/{web.sensor}?hours=24"]
    pages.append("/dead-letters")
    for url in pages:
        r = web.client.get(url, follow_redirects=False)
        assert r.status_code == 303, url
        assert _location(r) == ("/sign-in", {"next": [url]}), url
    forms = {
        f"/lots/{web.lot}/release": {"action": "reject", "password": password("qa")},
        f"/alerts/{web.alert}/ack": {"comment": "seen"},
        f"/alerts/{web.alert}/close": {
            "disposition": "no impact",
            "comment": "x",
            "password": password("qa"),
        },
        "/sign-out": {},
    }
    for url, data in forms.items():
        r = web.client.post(url, data=data, follow_redirects=False)
        assert r.status_code == 303, url
        assert _location(r)[0] == "/sign-in", url
    assert web.count("SELECT count(*) FROM erp.signatures") == 0
    assert web.count("SELECT count(*) FROM telemetry.alerts WHERE status = 'open'") == 1


def test_sign_in_sets_a_strict_http_only_cookie_and_shows_who_is_signed_in(web: Web) -> None:
    r = sign_in_response(web.client, "qa", password("qa"), next_url=f"/lots/{web.lot}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/lots/{web.lot}"
    cookie = next(h for h in r.headers.get_list("set-cookie") if "coldtrace_session=" in h)
    attributes = {a.strip().lower() for a in cookie.split(";")}
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert not any(a.startswith(("max-age", "expires")) for a in attributes)
    page = web.client.get(f"/lots/{web.lot}")
    assert page.status_code == 200
    assert "Signed in: <strong>Qa Person</strong> (qa) · role QA" in page.text
    assert 'action="/sign-out"' in page.text
    # a session cookie is no bearer token for the API
    token = web.client.cookies["coldtrace_session"]
    api = web.fresh().get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401


def test_next_may_only_be_a_path_on_this_site(web: Web) -> None:
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = sign_in_response(web.fresh(), "op", password("op"), next_url=evil)
        assert r.status_code == 303
        assert r.headers["location"] == "/", evil


def test_wrong_password_and_sign_out(web: Web) -> None:
    r = sign_in_response(web.client, "qa", "not-the-password")
    assert r.status_code == 401
    assert "incorrect username or password" in r.text
    assert "coldtrace_session" not in web.client.cookies
    sign_in(web.client, "qa", password("qa"))
    overview = web.client.get("/")
    assert overview.status_code == 200
    cookie = web.client.cookies["coldtrace_session"]
    missing = web.client.post("/sign-out", data={}, follow_redirects=False)
    assert missing.status_code == 403  # sign-out is a form like any other
    out = web.client.post(
        "/sign-out", data={"csrf_token": csrf_of(overview.text)}, follow_redirects=False
    )
    assert out.status_code == 303
    assert _location(out) == ("/sign-in", {"why": ["signed_out"]})
    assert web.client.get("/", follow_redirects=False).status_code == 303
    assert "You have signed out." in web.client.get("/sign-in?why=signed_out").text
    # a copy of the cookie taken before sign-out is dead too: the server knows it ended
    replay = web.fresh()
    replay.cookies.set("coldtrace_session", cookie)
    assert replay.get("/", follow_redirects=False).status_code == 303
    replay.cookies.set("coldtrace_session", cookie)
    landed = replay.get("/")  # following the redirects ends on the form, not in a loop
    assert (landed.status_code, landed.url.path) == (200, "/sign-in")
    assert landed.headers["cache-control"] == "no-store"
    with psycopg.connect(web.db_url) as conn:
        rows = conn.execute(
            "SELECT s.username, s.started_at, e.ended_at, e.reason FROM erp.web_sessions s"
            " LEFT JOIN erp.web_session_ends e USING (sid)"
        ).fetchall()
        assert rows == [("qa", web.clock.now, web.clock.now, "signed_out")]
        with pytest.raises(psycopg.Error, match=r"permission denied|append-only"):
            conn.execute("DELETE FROM erp.web_session_ends")


def test_sign_in_form_needs_its_csrf_token_and_nothing_is_checked_without_it(web: Web) -> None:
    browser = web.fresh()
    data = {"username": "qa", "password": password("qa"), "next": "/"}
    no_page = browser.post("/sign-in", data=data, follow_redirects=False)
    assert no_page.status_code == 403
    browser.get("/sign-in")  # now the nonce cookie is set, but the field is still wrong
    wrong = browser.post("/sign-in", data={**data, "csrf_token": "0" * 64})
    assert wrong.status_code == 403
    other = web.fresh()  # a token from another browser's form does not fit this cookie
    stolen = csrf_of(other.get("/sign-in").text)
    assert browser.post("/sign-in", data={**data, "csrf_token": stolen}).status_code == 403
    assert "coldtrace_session" not in browser.cookies
    assert web.count("SELECT count(*) FROM erp.login_attempts") == 0


def test_roles_of_the_api_apply_to_the_forms(web: Web) -> None:
    sign_in(web.client, "wh", password("wh"))
    page = web.client.get(f"/lots/{web.lot}")
    assert page.status_code == 200  # any signed-in user reads the lot, as in the API
    assert 'name="password"' not in page.text
    assert "you can read this lot but not sign" in page.text
    token = csrf_of(page.text)
    release = {"action": "reject", "password": password("wh"), "csrf_token": token}
    refused = web.client.post(f"/lots/{web.lot}/release", data=release, follow_redirects=False)
    assert refused.status_code == 403
    assert "needs the role qa or qa_manager" in refused.text
    ack = {"comment": "seen", "csrf_token": token}
    refused = web.client.post(f"/alerts/{web.alert}/ack", data=ack, follow_redirects=False)
    assert refused.status_code == 403
    alerts = web.client.get("/alerts").text
    assert "Acknowledging and closing needs the role qa or qa_manager." in alerts
    assert "/ack" not in alerts
    assert web.count("SELECT count(*) FROM erp.signatures") == 0
    assert web.count("SELECT count(*) FROM telemetry.alerts WHERE status = 'open'") == 1
    assert web.count("SELECT count(*) FROM erp.lots WHERE status = 'quarantine'") == 1


@pytest.mark.parametrize("token", [None, "", "f" * 64, "other-session"])
def test_forms_without_the_sessions_csrf_token_change_nothing(web: Web, token: str | None) -> None:
    if token == "other-session":  # the token of another user's valid session
        other = web.fresh()
        sign_in(other, "boss", password("boss"))
        token = csrf_of(other.get("/alerts").text)
    sign_in(web.client, "qa", password("qa"))
    forms = {
        f"/lots/{web.lot}/release": {"action": "reject", "password": password("qa")},
        f"/alerts/{web.alert}/ack": {"comment": "seen"},
        f"/alerts/{web.alert}/close": {
            "disposition": "no impact",
            "comment": "fine",
            "password": password("qa"),
        },
    }
    for url, data in forms.items():
        sent = data if token is None else {**data, "csrf_token": token}
        r = web.client.post(url, data=sent, follow_redirects=False)
        assert r.status_code == 403, url
        assert "CSRF" in r.text
    assert web.count("SELECT count(*) FROM erp.signatures") == 0
    assert web.count("SELECT count(*) FROM erp.release_decisions") == 0
    assert web.count("SELECT count(*) FROM telemetry.alerts WHERE status = 'open'") == 1
    # the password was never checked: the only attempts are the sign-ins
    assert web.count("SELECT count(*) FROM erp.login_attempts WHERE channel = 'signature'") == 0


def test_session_ends_after_inactivity_and_each_request_restarts_the_count(web: Web) -> None:
    sign_in(web.client, "op", password("op"))
    for _ in range(3):  # 3 x 14 min of activity: longer than one time-out in total
        web.clock.advance(minutes=IDLE_MINUTES - 1)
        assert web.client.get("/lots", follow_redirects=False).status_code == 200
    web.clock.advance(minutes=IDLE_MINUTES, seconds=1)
    r = web.client.get("/lots", follow_redirects=False)
    assert r.status_code == 303
    assert _location(r) == ("/sign-in", {"next": ["/lots"], "why": ["expired"]})
    note = web.client.get(r.headers["location"]).text
    assert f"Your session ended after {IDLE_MINUTES} min without activity" in note


def test_automatic_refresh_is_not_activity(web: Web) -> None:
    sign_in(web.client, "op", password("op"))
    page = web.client.get("/alerts")
    assert 'http-equiv="refresh" content="30;url=/alerts?auto=1"' in page.text
    web.clock.advance(minutes=IDLE_MINUTES - 1)
    refreshed = web.client.get("/alerts?auto=1", follow_redirects=False)
    assert refreshed.status_code == 200
    assert "set-cookie" not in refreshed.headers
    web.clock.advance(minutes=2)  # 16 min after the last real request
    r = web.client.get("/alerts?auto=1", follow_redirects=False)
    assert r.status_code == 303
    assert _location(r) == ("/sign-in", {"next": ["/alerts"], "why": ["expired"]})


def test_a_disabled_account_loses_its_session_at_the_next_request(web: Web) -> None:
    sign_in(web.client, "op", password("op"))
    with psycopg.connect(web.db_url) as conn:
        conn.execute("SELECT set_config('coldtrace.user', 'test-admin', true)")
        conn.execute("UPDATE erp.users SET active = false WHERE username = 'op'")
    r = web.client.get("/", follow_redirects=False)
    assert r.status_code == 303
    assert _location(r)[1]["why"] == ["disabled"]
    note = web.client.get(r.headers["location"])
    assert note.status_code == 200
    assert "Your account is unknown or disabled." in note.text


def test_signature_form_signs_as_the_session_user_only(web: Web) -> None:
    sign_in(web.client, "qa", password("qa"))
    page = web.client.get(f"/lots/{web.lot}")
    assert "Signing as <strong>Qa Person</strong> (qa)" in page.text
    assert 'name="username"' not in page.text
    token = csrf_of(page.text)
    # someone else's name and password in the form: the signer is still the session user
    boss = {"action": "reject", "username": "boss", "password": password("boss")}
    refused = web.client.post(f"/lots/{web.lot}/release", data={**boss, "csrf_token": token})
    assert refused.status_code == 409
    assert "Not signed" in refused.text
    assert web.count("SELECT count(*) FROM erp.signatures") == 0
    assert (
        web.count(
            "SELECT count(*) FROM erp.login_attempts WHERE username = 'qa'"
            " AND channel = 'signature' AND outcome = 'bad_password'"
        )
        == 1
    )
    web.clock.advance(minutes=3)
    ok = web.client.post(
        f"/lots/{web.lot}/release",
        data={**boss, "password": password("qa"), "csrf_token": token},
        follow_redirects=False,
    )
    assert ok.status_code == 303, ok.text
    with psycopg.connect(web.db_url) as conn:
        sig = conn.execute(
            "SELECT s.username, s.full_name, s.signed_at, d.lot_id, d.action"
            " FROM erp.release_decisions d JOIN erp.signatures s ON s.id = d.signature_id"
        ).fetchall()
        lot_audit = conn.execute(
            "SELECT actor FROM erp.audit_log WHERE table_name = 'erp.lots'"
            " AND new_values->>'status' = 'rejected'"
        ).fetchall()
        sig_audit = conn.execute(
            "SELECT actor FROM erp.audit_log WHERE table_name = 'erp.signatures'"
        ).fetchall()
    assert sig == [("qa", "Qa Person", web.clock.now, web.lot, "reject")]
    assert web.count("SELECT count(*) FROM erp.signatures") == 1
    assert lot_audit == [("qa",)]
    assert sig_audit == [("qa",)]
    after = web.client.get(f"/lots/{web.lot}").text
    assert "Signed by Qa Person (qa)" in after
    assert "REJECTED" in after


def test_failed_login_limit_applies_to_the_web_form(web: Web) -> None:
    for _ in range(5):
        r = sign_in_response(web.fresh(), "boss", "wrong-password-123")
        assert r.status_code == 401
        web.clock.advance(seconds=10)
    locked = sign_in_response(web.fresh(), "boss", password("boss"))
    assert locked.status_code == 429
    assert "locked after too many failed attempts" in locked.text
    assert "coldtrace_session" not in locked.headers.get("set-cookie", "")
    # the same limit as the API's token endpoint: it refuses too
    api = web.fresh().post("/api/auth/token", data={"username": "boss", "password": "x"})
    assert api.status_code == 429
    with psycopg.connect(web.db_url) as conn:
        outcomes = conn.execute(
            "SELECT channel, outcome FROM erp.login_attempts WHERE username = 'boss' ORDER BY id"
        ).fetchall()
    assert outcomes == [("login", "bad_password")] * 5 + [("login", "locked")] * 2


def test_qa_acknowledges_and_closes_an_alert_from_the_inbox(web: Web) -> None:
    sign_in(web.client, "boss", password("boss"))
    inbox = web.client.get("/alerts")
    assert f'action="/alerts/{web.alert}/ack"' in inbox.text
    token = csrf_of(inbox.text)
    early = web.client.post(
        f"/alerts/{web.alert}/close",
        data={
            "disposition": "no impact",
            "comment": "fine",
            "meaning": MEANING,
            "password": password("boss"),
            "csrf_token": token,
        },
    )
    assert early.status_code == 409
    assert "it must be acknowledged first" in early.text
    ack = web.client.post(
        f"/alerts/{web.alert}/ack",
        data={"comment": "Moved stock to fridge 2", "csrf_token": token},
        follow_redirects=False,
    )
    assert ack.status_code == 303
    inbox = web.client.get("/alerts").text
    # one place to sign: the inbox links to the alert's page, which has the close form
    assert f'action="/alerts/{web.alert}/close"' not in inbox
    assert f'class="button" href="/alerts/{web.alert}"' in inbox
    assert f'action="/alerts/{web.alert}/close"' in web.client.get(f"/alerts/{web.alert}").text
    web.clock.advance(minutes=5)
    closed = web.client.post(
        f"/alerts/{web.alert}/close",
        data={
            "disposition": "product assessed",
            "comment": "Within study S-14",
            "meaning": MEANING,
            "password": password("boss"),
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert closed.status_code == 303
    with psycopg.connect(web.db_url) as conn:
        row = conn.execute(
            "SELECT status, acknowledged_by, ack_comment, closed_by, closed_at, disposition,"
            " close_comment FROM telemetry.alerts WHERE id = %s",
            (web.alert,),
        ).fetchone()
    assert row == (
        "closed",
        "boss",
        "Moved stock to fridge 2",
        "boss",
        web.clock.now,
        "product assessed",
        "Within study S-14",
    )


def test_sign_in_and_signature_are_committed_before_the_answer_leaves(web: Web) -> None:
    """A browser follows the 303 at once: what it was told must already be in the database.

    The probe looks at the database when the answer starts, as a real server sends it
    (the test client alone would wait for the whole app, commit included).
    """
    app = web.client.app
    seen: dict[str, int] = {}

    async def probe(scope: Scope, receive: Receive, send: Send) -> None:
        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and scope["method"] == "POST":
                seen[scope["path"]] = web.count(
                    "SELECT (SELECT count(*) FROM erp.web_sessions)"
                    " + (SELECT count(*) FROM erp.signatures)"
                )
            await send(message)

        await app(scope, receive, watch)

    browser = TestClient(probe)
    sign_in(browser, "qa", password("qa"))
    assert seen["/sign-in"] == 1
    token = csrf_of(browser.get(f"/lots/{web.lot}").text)
    signed = browser.post(
        f"/lots/{web.lot}/release",
        data={"action": "reject", "password": password("qa"), "csrf_token": token},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    assert seen[f"/lots/{web.lot}/release"] == 2


def test_a_new_sign_in_over_a_live_session_ends_the_old_one_on_the_server(web: Web) -> None:
    """A sign-in form posted by a browser that still holds a live session (a form opened
    in another tab before) replaces that session; a copy of the old cookie is dead."""
    sign_in(web.client, "qa", password("qa"))
    old_cookie = web.client.cookies["coldtrace_session"]
    other = web.fresh()
    form = other.get("/sign-in")
    data = {"username": "boss", "password": password("boss"), "next": "/"}
    data["csrf_token"] = csrf_of(form.text)
    other.cookies.set("coldtrace_session", old_cookie)
    r = other.post("/sign-in", data=data, follow_redirects=False)
    assert r.status_code == 303
    replay = web.fresh()
    replay.cookies.set("coldtrace_session", old_cookie)
    assert replay.get("/", follow_redirects=False).status_code == 303
    with psycopg.connect(web.db_url) as conn:
        rows = conn.execute(
            "SELECT s.username, e.reason FROM erp.web_sessions s"
            " LEFT JOIN erp.web_session_ends e USING (sid) ORDER BY s.username"
        ).fetchall()
    assert rows == [("boss", None), ("qa", "replaced")]
