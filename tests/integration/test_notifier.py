"""The notifier against real servers: PostgreSQL, aiosmtpd, HTTP servers, Mosquitto.

Alerts and their events are inserted with plain SQL, as the alert evaluation would
write them, so these tests depend on nothing but the 0002 contract tables.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from coldtrace.broker import free_port
from coldtrace.cli import app
from coldtrace.supervise import Child, coldtrace_args
from erp_core.audit.service import set_actor
from erp_core.lots import service as lots
from erp_core.lots.models import LotIn
from erp_core.masterdata import service as master
from erp_core.masterdata.models import AssignmentIn, ItemIn, LocationIn
from erp_core.movements import service as movements
from erp_core.movements.models import MovementIn
from ingest.notify.jobs import alert_jobs
from ingest.notify.main import open_notifier
from ingest.notify.settings import NotifySettings
from tests.integration.stock_fixtures import sensor as make_sensor
from tests.mqtt_helpers import Collector, wait_until

T0 = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)  # 10:30 in Berlin (CET)


# ---------------------------------------------------------------- real servers


class SmtpSink:
    """aiosmtpd handler that records every accepted message; can stall once at RCPT or DATA."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()
        self.stall_at: str | None = None
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def _stall(self, where: str) -> None:
        if self.stall_at == where and not self.stalled.is_set():
            self.stalled.set()
            while not self.release.is_set():  # noqa: ASYNC110 - a threading.Event of the test
                await asyncio.sleep(0.02)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        await self._stall("RCPT")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:  # the server has the message from here on
            self.messages.append(
                (
                    list(envelope.rcpt_tos),
                    message_from_bytes(envelope.content, policy=policy.default),
                )
            )
        await self._stall("DATA")
        return "250 Message accepted for delivery"

    def received(self) -> list[tuple[list[str], EmailMessage]]:
        with self.lock:
            return list(self.messages)


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    sink.release.set()
    controller.stop()


class HttpSink:
    """A local HTTP server recording JSON POSTs; answers with ``status``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.status = 200
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.requests.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(sink.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts_to(self, path: str) -> list[Any]:
        return [body for p, _, body in list(self.requests) if p == path]


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink()
    yield sink
    sink.server.shutdown()


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# ---------------------------------------------------------- rows, as the alert side writes them


def add_recipient(conn: psycopg.Connection, name: str, **cols: Any) -> int:
    cols = {"name": name, **cols}
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    row = conn.execute(
        f"INSERT INTO telemetry.recipients ({names}) VALUES ({marks}) RETURNING id",
        list(cols.values()),
    ).fetchone()
    return row[0]


def add_route(conn: psycopg.Connection, channel: str, **cols: Any) -> int:
    cols = {"channel": channel, **cols}
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    row = conn.execute(
        f"INSERT INTO telemetry.notify_routes ({names}) VALUES ({marks}) RETURNING id",
        list(cols.values()),
    ).fetchone()
    return row[0]


def add_alert(
    conn: psycopg.Connection, *, site: str | None = "plant-1", severity: str = "critical",
    kind: str = "excursion",
) -> int:  # fmt: skip
    row = conn.execute(
        "INSERT INTO telemetry.alerts (kind, severity, site, started_at, peak, duration_s,"
        " summary) VALUES (%s, %s, %s, %s, 9.5, 1800, 'too warm') RETURNING id",
        (kind, severity, site, T0),
    ).fetchone()
    return row[0]


def add_event(
    conn: psycopg.Connection, alert_id: int, event: str = "opened", level: int = 0,
    detail: dict[str, Any] | None = None,
) -> int:  # fmt: skip
    if detail is None:
        detail = {
            "sensor": "fridge-a", "quantity": "temperature", "unit": "Cel",
            "location": "Cold room 2 / Fridge 7", "peak": 9.5, "duration_s": 1805,
            "late": True, "started_at": T0.isoformat(), "limits": {"low": 2.0, "high": 8.0},
        }  # fmt: skip
    # as the evaluator does: the level is the alert's, the event appended by ingest's function
    conn.execute(
        "UPDATE telemetry.alerts SET escalation_level = %s WHERE id = %s", (level, alert_id)
    )
    row = conn.execute(
        "SELECT telemetry.alert_append_event(%s, %s, now(), NULL, %s)",
        (alert_id, event, json.dumps(detail)),
    ).fetchone()
    return row[0]


def two_qa_people(conn: psycopg.Connection, site: str = "plant-1") -> None:
    add_recipient(conn, "Li Wei", email="li.wei@example.com", site=site)
    add_recipient(conn, "Anna Berg", email="anna.berg@example.com", site=site)
    add_route(conn, "email", role="qa", events=["opened", "escalated", "closed"])


def deliveries(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT d.event_id, r.name, d.channel, d.status, d.attempts, d.last_error"
            " FROM telemetry.notify_deliveries d JOIN telemetry.recipients r"
            " ON r.id = d.recipient_id ORDER BY d.event_id, r.name, d.channel"
        ).fetchall()


def settings(**kw: Any) -> NotifySettings:
    base = {
        "base_url": "https://coldtrace.example.com/",
        "site_timezones": {"plant-1": "Europe/Berlin"},
        "backoff_base_s": 10.0,
        "backoff_cap_s": 600.0,
        "send_timeout_s": 5.0,
        "lease_s": 30.0,
        "run_alert_jobs": False,
    }
    return NotifySettings(**{**base, **kw})


async def passes(db_url: str, s: NotifySettings, n: int = 3, clock: Any = None) -> None:
    kw = {"clock": clock} if clock else {}
    async with open_notifier(s, db_url, **kw) as notifier:
        for _ in range(n):
            await notifier.run_once()


# ---------------------------------------------------------------- tests


def test_one_email_per_event_and_recipient_with_every_fact(db_url: str, smtp) -> None:
    sink, port = smtp
    with psycopg.connect(db_url) as conn:
        two_qa_people(conn)
        # a second route to the same people and channel must not double the e-mail
        add_route(conn, "email", role="qa", min_severity="info")
        alert = add_alert(conn)
        event = add_event(conn, alert)
    s = settings(smtp_host="127.0.0.1", smtp_port=port)
    asyncio.run(passes(db_url, s))
    asyncio.run(passes(db_url, s))  # a second notifier run routes and sends nothing new

    got = sink.received()
    assert sorted(r[0][0] for r in got) == ["anna.berg@example.com", "li.wei@example.com"]
    _, mail = got[0]
    subject, body = mail["Subject"], mail.get_content()
    for fact in ("plant-1", "Cold room 2 / Fridge 7", "fridge-a", "temperature", "9.5 °C",
                 "30 min 5 s", "LATE", f"#{alert}"):  # fmt: skip
        assert fact in subject, fact
    assert "2026-01-15 09:30:00 UTC" in body
    assert "2026-01-15 10:30:00 CET" in body  # Berlin is UTC+1 in January
    assert f"https://coldtrace.example.com/alerts/{alert}" in body
    assert "2 – 8 °C" in body
    assert mail["X-ColdTrace-Event"] == str(event)
    assert [d[3] for d in deliveries(db_url)] == ["sent", "sent"]


def test_routing_by_site_severity_and_escalation_level(db_url: str, smtp, http_sink, broker):
    sink, port = smtp
    with psycopg.connect(db_url) as conn:
        two_qa_people(conn, "plant-1")
        add_recipient(conn, "Chen Jing", email="chen@example.com", site="plant-2")
        add_recipient(conn, "Meng Hao", email="meng@example.com", phone="+8613800000001",
                      role="qa_manager", site="plant-1")  # fmt: skip
        add_recipient(conn, "ERP", webhook_url=f"{http_sink.url}/hook", role="system")
        add_route(conn, "sms", role="qa_manager", min_level=1)
        add_route(conn, "voice", role="qa_manager", min_level=2)
        add_route(conn, "webhook", role="system", min_severity="info")
        add_route(conn, "mqtt", role="system", min_severity="info")
        warn1 = add_alert(conn, site="plant-1", severity="warning")
        info2 = add_alert(conn, site="plant-2", severity="info")
        e_open = add_event(conn, warn1, "opened", 0)
        e_info = add_event(conn, info2, "opened", 0)
        e_l1 = add_event(conn, warn1, "escalated", 1)
        e_l2 = add_event(conn, warn1, "escalated", 2)
        e_upd = add_event(conn, warn1, "updated", 2)  # no route listens to 'updated' by email
    mqtt_sub = Collector(broker, "ct/v1/+/alerts")
    time.sleep(0.3)
    s = settings(smtp_host="127.0.0.1", smtp_port=port, sms_url=f"{http_sink.url}/sms",
                 voice_url=f"{http_sink.url}/voice", mqtt_host="127.0.0.1",
                 mqtt_port=broker.port, mqtt_username=broker.notifier_credentials.username,
                 mqtt_password=broker.notifier_credentials.password)  # fmt: skip
    asyncio.run(passes(db_url, s, n=4))

    got = {(e, name, ch) for e, name, ch, status, *_ in deliveries(db_url) if status == "sent"}
    expected = {
        (e_open, "Li Wei", "email"), (e_open, "Anna Berg", "email"),
        (e_l1, "Li Wei", "email"), (e_l1, "Anna Berg", "email"), (e_l1, "Meng Hao", "sms"),
        (e_l2, "Li Wei", "email"), (e_l2, "Anna Berg", "email"), (e_l2, "Meng Hao", "sms"),
        (e_l2, "Meng Hao", "voice"),
    }  # fmt: skip
    expected |= {(e, "ERP", ch) for e in (e_open, e_info, e_l1, e_l2) for ch in ("webhook", "mqtt")}
    assert got == expected
    assert len(sink.received()) == 6  # Chen (plant-2) and the 'info' alert got no e-mail
    sms = http_sink.posts_to("/sms")
    assert sorted(b["to"] for b in sms) == ["+8613800000001"] * 2
    assert all("plant-1" in b["text"] and "fridge-a" in b["text"] for b in sms)
    assert len(http_sink.posts_to("/voice")) == 1
    hooks = http_sink.posts_to("/hook")
    assert sorted(h["event_id"] for h in hooks) == sorted([e_open, e_info, e_l1, e_l2])
    opened = next(h for h in hooks if h["event_id"] == e_open)
    assert opened["alert_id"] == warn1
    assert opened["site"] == "plant-1"
    assert opened["peak"] == 9.5
    assert opened["late"] is True
    assert opened["started_at"] == "2026-01-15T09:30:00Z"
    assert mqtt_sub.wait_for(lambda p: len(p) == 4, timeout=5)
    docs = [json.loads(p) for p in mqtt_sub.payloads]
    assert sorted(d["event_id"] for d in docs) == sorted([e_open, e_info, e_l1, e_l2])
    assert e_upd not in {d["event_id"] for d in docs}
    mqtt_sub.close()


def test_retry_with_exponential_backoff_while_smtp_is_down(db_url: str) -> None:
    port = free_port()  # nothing listens yet
    with psycopg.connect(db_url) as conn:
        two_qa_people(conn)
        add_event(conn, add_alert(conn))
    clock = FakeClock(T0)
    s = settings(smtp_host="127.0.0.1", smtp_port=port, backoff_base_s=10, max_attempts=8)

    def attempts() -> set[int]:
        return {d[4] for d in deliveries(db_url)}

    async def scenario() -> None:
        async with open_notifier(s, db_url, clock=clock) as n:
            await n.run_once()  # attempt 1 fails → next at +10 s
            assert attempts() == {1}
            clock.advance(9.9)
            await n.run_once()
            assert attempts() == {1}  # not due yet
            clock.advance(0.1)
            await n.run_once()  # attempt 2 fails → next at +20 s
            assert attempts() == {2}
            clock.advance(19.9)
            await n.run_once()
            assert attempts() == {2}
            sink = SmtpSink()
            controller = Controller(sink, hostname="127.0.0.1", port=port)
            controller.start()
            try:
                clock.advance(0.1)
                await n.run_once()  # attempt 3 succeeds
                assert len(sink.received()) == 2
                clock.advance(3600)
                await n.run_once()
                assert len(sink.received()) == 2
            finally:
                controller.stop()

    asyncio.run(scenario())
    assert [(d[3], d[4]) for d in deliveries(db_url)] == [("sent", 3), ("sent", 3)]
    with psycopg.connect(db_url) as conn:
        log = conn.execute(
            "SELECT attempt, ok, error FROM telemetry.notify_attempts ORDER BY delivery_id, attempt"
        ).fetchall()
    assert [(a, ok) for a, ok, _ in log] == [(1, False), (2, False), (3, True)] * 2
    assert all("Connect" in err or "refused" in err for _, ok, err in log if not ok)


def test_gives_up_after_n_attempts_and_says_so(db_url: str, caplog) -> None:
    with psycopg.connect(db_url) as conn:
        two_qa_people(conn)
        alert = add_alert(conn)
        add_event(conn, alert)
    clock = FakeClock(T0)
    s = settings(smtp_host="127.0.0.1", smtp_port=free_port(), max_attempts=3, backoff_base_s=1)

    async def scenario() -> None:
        async with open_notifier(s, db_url, clock=clock) as n:
            for _ in range(6):
                await n.run_once()
                clock.advance(100)

    with caplog.at_level(logging.ERROR, logger="ingest.notify"):
        asyncio.run(scenario())
    assert [(d[3], d[4]) for d in deliveries(db_url)] == [("failed", 3), ("failed", 3)]
    with psycopg.connect(db_url) as conn:
        problems = conn.execute(
            "SELECT problem, alert_id, recipient, channel, attempts FROM telemetry.notify_problems"
            " ORDER BY recipient"
        ).fetchall()
    assert problems == [
        ("delivery failed", alert, "Anna Berg", "email", 3),
        ("delivery failed", alert, "Li Wei", "email", 3),
    ]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "FAILED" in r.message]
    assert len(errors) == 2
    result = CliRunner().invoke(
        app, ["recipients", "check"], env={"COLDTRACE_DATABASE_URL": db_url}
    )
    assert result.exit_code == 1
    assert "delivery failed" in result.output


def test_an_event_that_reaches_nobody_is_a_problem(db_url: str, caplog) -> None:
    with psycopg.connect(db_url) as conn:
        add_recipient(conn, "Li Wei", email="li.wei@example.com", site="plant-1")
        add_route(conn, "email", role="qa", site="plant-1")
        lost = add_event(conn, add_alert(conn, site="plant-9"))
        add_event(conn, add_alert(conn, site="plant-9", severity="info"))  # info may go unheard
    asyncio.run(passes(db_url, settings(), n=1))
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT problem, event_id FROM telemetry.notify_problems").fetchall()
    assert rows == [("reached no recipient", lost)]


def test_recipients_cli_and_two_person_rule(db_url: str) -> None:
    env = {"COLDTRACE_DATABASE_URL": db_url}
    run = CliRunner().invoke
    assert run(app, ["recipients", "add", "Li Wei", "--email", "li@example.com",
                     "--site", "plant-1"], env=env).exit_code == 0  # fmt: skip
    assert run(app, ["recipients", "route", "email", "--role", "qa"], env=env).exit_code == 0
    one = run(app, ["recipients", "check"], env=env)
    assert one.exit_code == 1
    assert "plant-1" in one.output
    assert "Li Wei" in one.output
    anna = ["Anna Berg", "--phone", "+491700000", "--site", "plant-1", "--role", "qa_manager"]
    assert run(app, ["recipients", "add", *anna], env=env).exit_code == 0
    assert run(app, ["recipients", "route", "sms", "--to", "Anna Berg"], env=env).exit_code == 0
    two = run(app, ["recipients", "check"], env=env)
    assert two.exit_code == 0, two.output
    listing = run(app, ["recipients", "list"], env=env)
    assert "Anna Berg" in listing.output
    assert "sms" in listing.output
    bad = run(app, ["recipients", "route", "fax", "--role", "qa"], env=env)
    assert bad.exit_code == 2


def test_two_notifiers_share_the_work_without_duplicates(db_url: str, smtp) -> None:
    sink, port = smtp
    with psycopg.connect(db_url) as conn:
        two_qa_people(conn)
        for _ in range(15):
            add_event(conn, add_alert(conn))

    async def both() -> None:
        s1 = settings(smtp_host="127.0.0.1", smtp_port=port, worker="n1", batch_size=3)
        s2 = settings(smtp_host="127.0.0.1", smtp_port=port, worker="n2", batch_size=3)
        async with open_notifier(s1, db_url) as a, open_notifier(s2, db_url) as b:
            for _ in range(8):
                await asyncio.gather(a.run_once(), b.run_once())
        assert a.totals.sent > 0
        assert b.totals.sent > 0

    asyncio.run(both())
    ids = [(m["X-ColdTrace-Event"], rcpt[0]) for rcpt, m in sink.received()]
    assert len(ids) == 30
    assert len(set(ids)) == 30


# ---------------------------------------------------------------- crashes of a real process


def _start_notifier(tmp_path: Path, db_url: str, port: int) -> Child:
    env = {
        "COLDTRACE_DATABASE_URL": db_url,
        "COLDTRACE_NOTIFY_SMTP_HOST": "127.0.0.1",
        "COLDTRACE_NOTIFY_SMTP_PORT": str(port),
        "COLDTRACE_NOTIFY_SEND_TIMEOUT_S": "2",
        "COLDTRACE_NOTIFY_LEASE_S": "3",
        "COLDTRACE_NOTIFY_POLL_INTERVAL_S": "0.2",
        "COLDTRACE_NOTIFY_RUN_ALERT_JOBS": "false",
    }
    child = Child("notifier", coldtrace_args("notifier", "--plain-logs"), tmp_path / "n.log", env)
    child.start()
    return child


def _crash_scenario(tmp_path: Path, db_url: str, smtp, stall_at: str) -> list:
    sink, port = smtp
    sink.stall_at = stall_at
    with psycopg.connect(db_url) as conn:
        add_recipient(conn, "Li Wei", email="li.wei@example.com", site="plant-1")
        add_route(conn, "email", role="qa")
        add_event(conn, add_alert(conn))
    child = _start_notifier(tmp_path, db_url, port)
    try:
        assert sink.stalled.wait(20), (tmp_path / "n.log").read_text()
        child.kill()  # SIGKILL while the SMTP conversation hangs
        sink.release.set()
        assert [d[3] for d in deliveries(db_url)] == ["sending"]
        child.start()
        assert wait_until(lambda: [d[3] for d in deliveries(db_url)] == ["sent"], timeout=20), (
            tmp_path / "n.log"
        ).read_text()
        time.sleep(1.0)  # room for a (wrong) further send
    finally:
        child.stop()
    return sink.received()


def test_killed_after_the_server_has_the_message_sends_it_at_most_twice(
    tmp_path: Path, db_url: str, smtp
) -> None:
    got = _crash_scenario(tmp_path, db_url, smtp, "DATA")
    # The server had the message when the notifier died before its 250: the restarted
    # notifier cannot know and sends once more. One duplicate, same Message-ID, no loss.
    assert 1 <= len(got) <= 2
    assert len({m["Message-ID"] for _, m in got}) == 1


def test_killed_before_data_sends_it_exactly_once(tmp_path: Path, db_url: str, smtp) -> None:
    got = _crash_scenario(tmp_path, db_url, smtp, "RCPT")
    assert len(got) == 1
    with psycopg.connect(db_url) as conn:
        attempts = conn.execute(
            "SELECT attempt, finished_at IS NOT NULL, ok FROM telemetry.notify_attempts"
            " ORDER BY attempt"
        ).fetchall()
    assert attempts == [(1, False, None), (2, True, True)]  # the killed attempt stays open


def test_escalation_job_of_the_alert_side_reaches_the_sms_step(db_url: str, http_sink) -> None:
    with psycopg.connect(db_url) as conn:
        add_recipient(conn, "Meng Hao", phone="+8613800000001", role="qa_manager")
        add_route(conn, "sms", role="qa_manager", min_level=1)
        alert = add_alert(conn)
        conn.execute(
            "UPDATE telemetry.alerts SET opened_at = now() - interval '20 minutes' WHERE id = %s",
            (alert,),
        )
        add_event(conn, alert)  # level 0: no SMS yet
    s = settings(sms_url=f"{http_sink.url}/sms")

    async def scenario() -> None:
        jobs = alert_jobs(db_url, escalate_after_minutes=15)
        async with open_notifier(s, db_url, jobs=jobs) as n:
            await n.run_once()
            assert http_sink.posts_to("/sms") == []
            await n.run_jobs()  # escalate_due: 20 min unacknowledged > 15 → level 1
            await n.run_once()

    asyncio.run(scenario())
    sms = http_sink.posts_to("/sms")
    assert len(sms) == 1
    assert sms[0]["to"] == "+8613800000001"
    assert f"Alert {alert}" in sms[0]["text"]


def test_http_4xx_fails_at_once_and_5xx_is_retried(db_url: str, http_sink) -> None:
    with psycopg.connect(db_url) as conn:
        add_recipient(conn, "ERP", webhook_url=f"{http_sink.url}/hook", role="system")
        add_route(conn, "webhook", role="system")
        add_event(conn, add_alert(conn))
    clock = FakeClock(T0)

    async def scenario() -> None:
        async with open_notifier(settings(), db_url, clock=clock) as n:
            http_sink.status = 503
            await n.run_once()
            assert [(d[3], d[4]) for d in deliveries(db_url)] == [("pending", 1)]
            http_sink.status = 400
            clock.advance(10)
            await n.run_once()

    asyncio.run(scenario())
    ((*_, status, attempts, error),) = deliveries(db_url)
    assert (status, attempts) == ("failed", 2)
    assert "HTTP 400" in error
    assert len(http_sink.posts_to("/hook")) == 2
    keys = {h["Idempotency-Key"] for p, h, _ in http_sink.requests}
    assert len(keys) == 1  # the same key on every attempt of one delivery


def test_the_email_names_the_lots_in_the_sensors_custody_during_the_alert(
    db_url: str, smtp
) -> None:
    """A real notifier run names exactly the lots exposed, in words and °C (issue 11).

    Fridge 7's sensor alarms from T0 to T0 + 30 min. Lot A has been in the fridge since
    before; lot D comes in during the alert; lot B left before it; lot C is in another
    fridge. The e-mail names A and D with product and GTIN — the lots the deviation
    trigger would open on (one definition, ``erp.sensor_lots``) — and not B or C.
    """
    sink, port = smtp
    fridge_sensor = make_sensor(db_url, "fridge-7")
    day = timedelta(days=1)
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test-setup")
        site = master.create_location(conn, location=LocationIn(code="P1", name="P1", kind="site"))
        fridge, other = (
            master.create_location(
                conn, location=LocationIn(code=c, name=c, kind="fridge", parent_id=site.id)
            ).id
            for c in ("F7", "F8")
        )
        master.assign_sensor(
            conn,
            assignment=AssignmentIn(
                sensor_id=fridge_sensor, location_id=fridge, valid_from=T0 - 2 * day
            ),
        )
        item = master.create_item(
            conn,
            item=ItemIn(gtin="04006381333931", name="Vascular graft 6 mm", range_low=2.0,
                        range_high=8.0),
        )  # fmt: skip

        def lot(number: str, *moves: tuple[int | None, int | None, datetime]) -> None:
            new = LotIn(item_id=item.id, lot_number=number, expires_on=(T0 + 400 * day).date(),
                        quantity=10)  # fmt: skip
            lot_id = lots.create_lot(conn, lot=new, now=T0 - 3 * day).id
            for src, dst, when in moves:
                movements.record_movement(
                    conn,
                    movement=MovementIn(lot_id=lot_id, quantity=10, from_location_id=src,
                                        to_location_id=dst, moved_at=when),
                )  # fmt: skip

        hour = timedelta(hours=1)
        lot("LOT-A", (None, fridge, T0 - 2 * hour))
        lot("LOT-B", (None, fridge, T0 - 3 * hour), (fridge, other, T0 - hour))
        lot("LOT-C", (None, other, T0 - 2 * hour))
        lot("LOT-D", (None, fridge, T0 + timedelta(minutes=10)))
        two_qa_people(conn)
        (alert,) = conn.execute(
            "INSERT INTO telemetry.alerts (kind, severity, site, sensor_id, started_at,"
            " ended_at, peak, duration_s, summary) VALUES ('excursion_high', 'critical',"
            " 'plant-1', %s, %s, %s, 8.1, 1800, 'too warm') RETURNING id",
            (fridge_sensor, T0, T0 + timedelta(minutes=30)),
        ).fetchone()
        add_event(conn, alert)
        exposed = conn.execute(
            "SELECT l.lot_number FROM erp.sensor_lots(%s, %s, %s) s"
            " JOIN erp.lots l ON l.id = s.lot_id ORDER BY 1",
            (fridge_sensor, T0, T0 + timedelta(minutes=30, milliseconds=1)),
        ).fetchall()
    assert [r[0] for r in exposed] == ["LOT-A", "LOT-D"]
    asyncio.run(passes(db_url, settings(smtp_host="127.0.0.1", smtp_port=port)))

    got = sink.received()
    assert len(got) == 2
    _, mail = got[0]
    subject, body = mail["Subject"], mail.get_content()
    assert "lots LOT-A, LOT-D" in subject
    assert "above the upper limit" in subject
    assert "peak 9.5 °C" in subject  # the event's detail wins over the alert column
    assert "LOT-A (Vascular graft 6 mm, GTIN 04006381333931)" in body
    assert "LOT-D (Vascular graft 6 mm, GTIN 04006381333931)" in body
    for absent in ("LOT-B", "LOT-C", "Cel", "excursion_high"):
        assert absent not in subject + body, absent
    assert f"https://coldtrace.example.com/alerts/{alert}" in body


def test_an_unreadable_lot_view_never_holds_back_the_email(
    db_url: str, owner_db_url: str, smtp
) -> None:
    """Without SELECT on erp.alert_lots the e-mail still goes out, saying lots are unknown."""
    sink, port = smtp
    fridge_sensor = make_sensor(db_url, "fridge-9")
    with psycopg.connect(owner_db_url) as conn:
        conn.execute("REVOKE SELECT ON erp.alert_lots FROM coldtrace_app")
    with psycopg.connect(db_url) as conn:
        two_qa_people(conn)
        (alert,) = conn.execute(
            "INSERT INTO telemetry.alerts (kind, severity, site, sensor_id, started_at, summary)"
            " VALUES ('excursion_low', 'critical', 'plant-1', %s, %s, 'too cold') RETURNING id",
            (fridge_sensor, T0),
        ).fetchone()
        add_event(conn, alert)
    asyncio.run(passes(db_url, settings(smtp_host="127.0.0.1", smtp_port=port)))
    got = sink.received()
    assert len(got) == 2
    body = got[0][1].get_content()
    assert "Lots:        unknown" in body
    assert "below the lower limit" in body
    assert [d[3] for d in deliveries(db_url)] == ["sent", "sent"]
