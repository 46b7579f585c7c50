"""The notifier never logs or stores a webhook URL, a provider token or an SMTP password."""

from __future__ import annotations

import asyncio
import json
import logging
import string
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldtrace.broker import free_port
from ingest.notify.main import open_notifier
from ingest.notify.redact import redact_url, scrub
from tests.integration.test_notifier import (
    T0,
    FakeClock,
    add_alert,
    add_event,
    add_recipient,
    add_route,
    settings,
)

HOOK_TOKEN = "T0001-B0002-hookSecret42"
PROVIDER_TOKEN = "prov-Token-7777-abcd"
URL_TOKEN = "qs-Token-5555"


class EchoServer:
    """Answers every POST with ``status`` and a body that quotes the request (as some
    servers' error pages do): path, query and Authorization header."""

    def __init__(self, status: int) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                text = f"bad request to {self.path} with {self.headers.get('Authorization')}"
                self.send_response(outer.status)
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.status = status
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer(status=400)
    yield server
    server.server.shutdown()


def stored_errors(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT error FROM telemetry.notify_attempts WHERE error IS NOT NULL"
            " UNION ALL SELECT last_error FROM telemetry.notify_deliveries"
            " WHERE last_error IS NOT NULL"
        ).fetchall()
    return [str(r[0]) for r in rows]


def run_passes(db_url: str, **kw: object) -> None:
    clock = FakeClock(T0)

    async def scenario() -> None:
        async with open_notifier(settings(**kw), db_url, clock=clock) as notifier:
            for _ in range(3):
                await notifier.run_once()
                clock.advance(3600)

    asyncio.run(scenario())


def test_webhook_urls_and_tokens_stay_out_of_logs_and_errors(
    db_url: str, echo: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook?token={URL_TOKEN}"
    with psycopg.connect(db_url) as conn:
        add_recipient(conn, "Chat", webhook_url=f"{echo.url}/services/{HOOK_TOKEN}", role="system")
        add_recipient(conn, "Down", webhook_url=down, role="system")
        add_recipient(conn, "Broken", webhook_url=f"http://[::1/x?token={URL_TOKEN}", role="system")
        add_recipient(conn, "Pager", phone="+8613800000001", role="system")
        add_route(conn, "webhook", role="system")
        add_route(conn, "sms", role="system")
        add_event(conn, add_alert(conn))
    provider = f"{echo.url}/sms?key={URL_TOKEN}"
    with caplog.at_level(logging.DEBUG):
        run_passes(db_url, sms_url=provider, provider_token=PROVIDER_TOKEN, max_attempts=2)
    errors = stored_errors(db_url)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert len(errors) >= 4  # every channel failed and said why
    for secret in (HOOK_TOKEN, URL_TOKEN, PROVIDER_TOKEN):
        assert secret not in logged
        assert not any(secret in e for e in errors), secret
    # what is shown still helps: the host, a fingerprint, the HTTP status
    assert any("HTTP 400" in e and "127.0.0.1" in e for e in errors)
    assert f"#{redact_url(echo.url + '/services/' + HOOK_TOKEN)[-8:]}" in logged + json.dumps(
        errors
    )


def test_smtp_password_stays_out_of_errors(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with psycopg.connect(db_url) as conn:
        add_recipient(conn, "Li Wei", email="li.wei@example.com", role="qa")
        add_route(conn, "email", role="qa")
        add_event(conn, add_alert(conn))
    password = "smtp-Pass-9999-xyz"
    with caplog.at_level(logging.DEBUG):
        run_passes(
            db_url,
            smtp_host="127.0.0.1",
            smtp_port=free_port(),
            smtp_username="alerts",
            smtp_password=password,
            max_attempts=2,
        )
    assert stored_errors(db_url)
    assert password not in "\n".join(r.getMessage() for r in caplog.records)
    assert not any(password in e for e in stored_errors(db_url))


def test_redact_url_keeps_only_scheme_host_and_port() -> None:
    shown = redact_url("https://user:pw@hooks.example.org:8443/services/T0/B0/XYZ?token=abc#frag")
    assert shown.startswith("https://hooks.example.org:8443/…#")
    for part in ("user", "pw", "services", "XYZ", "token", "abc", "frag"):
        assert part not in shown.split("#")[0].replace("hooks.example.org", "")
    assert redact_url("not a url at all").startswith("…#")
    assert redact_url("http://[::1/bad") == redact_url("http://[::1/bad")  # stable


_SECRET = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=4, max_size=30)


@given(_SECRET, st.text(max_size=60), st.text(max_size=60))
def test_scrub_removes_every_copy_of_a_secret(secret: str, before: str, after: str) -> None:
    text = f"{before}{secret} and again {secret}{after}"
    assert secret not in scrub(text, [secret, None])
