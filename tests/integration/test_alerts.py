"""Excursions to alerts against real PostgreSQL and Mosquitto, through the real ingest Worker."""

from __future__ import annotations

import getpass
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from coldchain.profiles import AlarmProfile
from coldtrace.broker import Broker
from coldtrace.cli import app
from erp_core.alerts import service
from erp_core.alerts.models import Disposition, Status
from erp_core.app import create_app
from erp_core.settings import ApiSettings
from ingest import alerts as ingest_alerts
from ingest.evaluate import evaluate_pending, sweep
from ingest.worker import Worker
from telemetry.payloads import VERSION, Reading, ReadingBatch
from tests.integration.access_helpers import PASSWORDS, add_user, bearer, token_for
from tests.mqtt_helpers import gateway_client, ingest_settings, publish, wait_until

TOPIC = "ct/v1/plant-1/gw-1/readings"
MIN = 60_000


def q(db_url: str, sql: str, args: tuple = ()) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, args).fetchall()


def one(db_url: str, sql: str, args: tuple = ()) -> object:
    rows = q(db_url, sql, args)
    return rows[0][0] if rows else None


def start_worker(
    broker: Broker, db_url: str, name: str
) -> tuple[Worker, threading.Event, threading.Thread]:
    settings = ingest_settings(broker, client_id=name, max_delay_ms=50)
    w = Worker(settings, db_url)  # real clock: device times below are relative to now
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,), daemon=True)
    t.start()
    assert w.ready.wait(15), "worker did not subscribe"
    return w, stop, t


def stop_worker(stop: threading.Event, t: threading.Thread) -> None:
    stop.set()
    t.join(15)
    assert not t.is_alive(), "worker did not stop"


@pytest.fixture
def worker(broker: Broker, db_url: str) -> Iterator[Worker]:
    w, stop, t = start_worker(broker, db_url, "ingest-alerts")
    yield w
    stop_worker(stop, t)


class Seq:
    """Gateway sequence numbers for one stream."""

    def __init__(self) -> None:
        self.next = 1

    def batch(
        self,
        points: list[tuple[int, float]],
        *,
        sensor: str = "fridge-a",
        qty: str = "temperature",
        unit: str = "Cel",
    ) -> ReadingBatch:
        items = [Reading(t=t, sensor=sensor, qty=qty, value=v, unit=unit) for t, v in points]
        first = self.next
        self.next += len(items)
        return ReadingBatch(
            v=VERSION,
            gateway="gw-1",
            stream="s1",
            seq=(first, self.next - 1),
            sent=int(time.time() * 1000),
            items=items,
        )


def assign_profile(db_url: str, uid: str, profile: AlarmProfile, qty: str = "temperature") -> int:
    """Create the sensor before any reading and give it ``profile``; returns its id."""
    with psycopg.connect(db_url) as conn:
        (sid,) = conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id) "
            "VALUES (%s, %s, 'Cel', 'gw-1') RETURNING id",
            (uid, qty),
        ).fetchone()
        (pid,) = conn.execute(
            "INSERT INTO telemetry.alarm_profiles (name, spec) VALUES (%s, %s::jsonb) RETURNING id",
            (profile.name + uid, json.dumps(profile.to_dict())),
        ).fetchone()
        conn.execute(
            "INSERT INTO telemetry.sensor_profiles (sensor_id, profile_id) VALUES (%s, %s)",
            (sid, pid),
        )
    return int(sid)


FAST = AlarmProfile(
    name="test-2-8", low=2.0, high=8.0, alarm_delay_s=120, abs_low=0.0, abs_high=15.0
)


def events(db_url: str, alert_id: int) -> list[str]:
    return [
        r[0]
        for r in q(
            db_url,
            "SELECT event FROM telemetry.alert_events WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        )
    ]


def now_ms() -> int:
    return int(time.time() * 1000)


def test_excursion_longer_than_delay_opens_one_alert_and_grows_it(broker, db_url, worker):
    sid = assign_profile(db_url, "fridge-a", FAST)
    base = now_ms() - 10 * MIN
    seq, pub = Seq(), gateway_client(broker)
    # 2 min at 5 °C, then 12 °C every 20 s for 4 min: beyond the 2 min delay
    points = [(base + i * 20_000, 5.0) for i in range(6)]
    points += [(base + 2 * MIN + i * 20_000, 12.0) for i in range(12)]
    publish(pub, TOPIC, seq.batch(points))
    assert wait_until(lambda: one(db_url, "SELECT count(*) FROM telemetry.alerts") == 1)
    (alert_id, kind, late, started, ended, peak) = q(
        db_url, "SELECT id, kind, late, started_at, ended_at, peak FROM telemetry.alerts"
    )[0]
    assert kind == "excursion_high"
    assert late is False
    assert ended is None
    assert peak == 12.0
    assert started == datetime.fromtimestamp((base + 2 * MIN) / 1000, UTC)
    assert events(db_url, alert_id) == ["opened"]
    detail = one(
        db_url, "SELECT detail FROM telemetry.alert_events WHERE alert_id = %s", (alert_id,)
    )
    assert detail["sensor"] == "fridge-a"
    assert detail["limits"]["high"] == 8.0
    assert detail["sensor_id"] == sid
    assert detail["quantity"] == "temperature"

    # more of the same episode, peak +0.3 °C: same alert, no new event
    publish(pub, TOPIC, seq.batch([(base + 6 * MIN + i * 20_000, 12.3) for i in range(3)]))
    assert wait_until(lambda: one(db_url, "SELECT peak FROM telemetry.alerts") == 12.3)
    assert one(db_url, "SELECT count(*) FROM telemetry.alerts") == 1
    assert events(db_url, alert_id) == ["opened"]
    # peak rises by 1 °C: one 'updated'; then back in range: 'updated' with the end
    publish(pub, TOPIC, seq.batch([(base + 7 * MIN, 13.3)]))
    assert wait_until(lambda: events(db_url, alert_id) == ["opened", "updated"])
    publish(pub, TOPIC, seq.batch([(base + 8 * MIN, 5.0)]))
    assert wait_until(lambda: events(db_url, alert_id) == ["opened", "updated", "updated"])
    ended = one(db_url, "SELECT ended_at FROM telemetry.alerts WHERE id = %s", (alert_id,))
    assert ended == datetime.fromtimestamp((base + 8 * MIN) / 1000, UTC)
    # duration: 12 °C from base+2 min to the return at base+8 min
    assert one(db_url, "SELECT duration_s FROM telemetry.alerts") == 360.0
    assert one(db_url, "SELECT count(*) FROM telemetry.alerts") == 1
    assert one(db_url, "SELECT count(*) FROM telemetry.eval_pending") == 0


def test_backlog_six_hours_old_raises_a_late_alert(broker, db_url, worker):
    # no profile assigned: the shipped default fridge-2-8 applies (15 min alarm delay)
    base = now_ms() - 6 * 3600_000
    seq, pub = Seq(), gateway_client(broker)
    points = [(base + i * MIN, 5.0) for i in range(5)] + [
        (base + (5 + i) * MIN, 11.0) for i in range(30)
    ]
    points += [(base + 35 * MIN + i * MIN, 5.0) for i in range(5)]
    for k in range(0, len(points), 7):  # a backlog comes in several batches
        publish(pub, TOPIC, seq.batch(points[k : k + 7]))
    exc = "FROM telemetry.alerts WHERE kind = 'excursion_high'"
    assert wait_until(lambda: one(db_url, f"SELECT count(*) {exc}") == 1)
    assert wait_until(lambda: one(db_url, f"SELECT ended_at IS NOT NULL {exc}"))
    late, duration = q(db_url, f"SELECT late, duration_s {exc}")[0]
    assert late is True
    assert duration == 30 * 60
    alert_id = one(db_url, f"SELECT id {exc}")
    assert events(db_url, alert_id).count("opened") == 1
    assert (
        one(
            db_url,
            "SELECT detail->>'late' FROM telemetry.alert_events "
            "WHERE event = 'opened' AND alert_id = %s",
            (alert_id,),
        )
        == "true"
    )
    # fridge-2-8 warns after 5 min beyond 7.5 °C; the alarm took over at 15 min
    (pre,) = q(db_url, "SELECT kind, severity, ended_at - started_at, detail->>'alarm_alert_id' "
               "FROM telemetry.alerts WHERE kind LIKE 'pre_alarm%%'")  # fmt: skip
    assert pre == ("pre_alarm_high", "warning", timedelta(minutes=15), str(alert_id))


def test_short_spike_is_no_alert_but_absolute_breach_alarms_at_once(broker, db_url, worker):
    assign_profile(db_url, "fridge-a", FAST)
    base = now_ms() - 10 * MIN
    seq, pub = Seq(), gateway_client(broker)
    # 40 s at 12 °C (delay is 120 s), then back in range
    publish(
        pub,
        TOPIC,
        seq.batch(
            [(base, 5.0), (base + 20_000, 12.0), (base + 40_000, 12.0), (base + 60_000, 5.0)]
        ),
    )
    assert wait_until(lambda: one(db_url, "SELECT count(*) FROM telemetry.excursion_episodes") == 1)
    assert one(db_url, "SELECT level FROM telemetry.excursion_episodes") == "pre_alarm"
    assert one(db_url, "SELECT count(*) FROM telemetry.alerts") == 0
    # one reading at 16 °C (absolute limit 15): alarm without waiting for the delay
    publish(pub, TOPIC, seq.batch([(base + 2 * MIN, 16.0)]))
    assert wait_until(lambda: one(db_url, "SELECT count(*) FROM telemetry.alerts") == 1)
    assert one(db_url, "SELECT peak FROM telemetry.alerts") == 16.0
    assert one(db_url, "SELECT detail->>'abs_breach' FROM telemetry.alerts") == "true"
    assert one(db_url, "SELECT count(*) FROM telemetry.alerts") == 1


def _insert_readings(conn: psycopg.Connection, sid: int, points: list[tuple[int, float]]) -> None:
    conn.cursor().executemany(
        "INSERT INTO telemetry.readings (time, sensor_id, value) VALUES (%s, %s, %s)",
        [(datetime.fromtimestamp(t / 1000, UTC), sid, v) for t, v in points],
    )


def test_two_evaluators_racing_on_one_sensor_raise_one_alert(db_url):
    now = datetime.now(UTC)
    base = int(now.timestamp() * 1000) - 30 * MIN
    sensors = [assign_profile(db_url, f"race-{i}", FAST) for i in range(6)]
    with psycopg.connect(db_url) as conn:
        for sid in sensors:
            pts = [(base + i * 20_000, 5.0 if i < 3 else 12.0) for i in range(30)]
            _insert_readings(conn, sid, pts)
            # two batches of the same episode, claimed by different evaluators
            for lo, hi in ((pts[0][0], pts[14][0]), (pts[15][0], pts[29][0])):
                conn.execute(
                    "INSERT INTO telemetry.eval_pending (sensor_id, min_t, max_t) "
                    "VALUES (%s, %s, %s)",
                    (
                        sid,
                        datetime.fromtimestamp(lo / 1000, UTC),
                        datetime.fromtimestamp(hi / 1000, UTC),
                    ),
                )
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(db_url) as conn:
                barrier.wait(10)
                while True:
                    with conn.transaction():
                        if evaluate_pending(conn, now=now, limit=1).ranges == 0:
                            return
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    per_sensor = dict(
        q(db_url, "SELECT sensor_id, count(*) FROM telemetry.alerts GROUP BY sensor_id")
    )
    assert per_sensor == dict.fromkeys(sensors, 1)
    assert one(db_url, "SELECT count(*) FROM telemetry.alert_events WHERE event = 'opened'") == len(
        sensors
    )
    assert one(
        db_url, "SELECT count(*) FROM telemetry.excursion_episodes WHERE status = 'active'"
    ) == len(sensors)


def _open_alert(db_url: str, *, ended: bool) -> tuple[int, datetime]:
    """An excursion alert made by the evaluator from stored readings; returns (id, opened)."""
    now = datetime.now(UTC)
    base = int(now.timestamp() * 1000) - 30 * MIN
    sid = assign_profile(db_url, f"lc-{time.monotonic_ns()}", FAST)
    pts = [(base + i * MIN, 12.0) for i in range(5)] + ([(base + 5 * MIN, 5.0)] if ended else [])
    with psycopg.connect(db_url) as conn:
        _insert_readings(conn, sid, pts)
        conn.execute(
            "INSERT INTO telemetry.eval_pending (sensor_id, min_t, max_t) VALUES (%s, %s, %s)",
            (
                sid,
                datetime.fromtimestamp(base / 1000, UTC),
                datetime.fromtimestamp(pts[-1][0] / 1000, UTC),
            ),
        )
        evaluate_pending(conn, now=now)
        (alert_id,) = conn.execute(
            "SELECT id FROM telemetry.alerts WHERE sensor_id = %s", (sid,)
        ).fetchone()
    return int(alert_id), now


def test_escalation_until_acknowledged_then_close_with_disposition(db_url):
    alert_id, opened = _open_alert(db_url, ended=True)
    with psycopg.connect(db_url) as conn:
        assert (
            ingest_alerts.escalate_due(conn, now=opened + timedelta(minutes=29), after_minutes=30)
            == []
        )
        assert ingest_alerts.escalate_due(
            conn, now=opened + timedelta(minutes=31), after_minutes=30
        ) == [alert_id]
        assert (
            ingest_alerts.escalate_due(conn, now=opened + timedelta(minutes=32), after_minutes=30)
            == []
        )
        assert ingest_alerts.escalate_due(
            conn, now=opened + timedelta(minutes=61), after_minutes=30
        ) == [alert_id]
        # closing before acknowledging is refused
        with pytest.raises(service.AlertTransitionError, match="acknowledged first"):
            service.close(
                conn,
                alert_id=alert_id,
                user="qa1",
                disposition=Disposition.NO_IMPACT,
                comment="x",
                now=opened,
            )
        service.acknowledge(
            conn,
            alert_id=alert_id,
            user="qa1",
            comment="checking the fridge",
            now=opened + timedelta(minutes=62),
        )
        assert (
            ingest_alerts.escalate_due(conn, now=opened + timedelta(hours=5), after_minutes=30)
            == []
        )
        service.close(
            conn,
            alert_id=alert_id,
            user="qa2",
            disposition=Disposition.PRODUCT_ASSESSED,
            comment="stability data covers 5 min at 12 °C",
            now=opened + timedelta(hours=6),
        )
        with pytest.raises(service.AlertTransitionError, match="already closed"):
            service.close(
                conn,
                alert_id=alert_id,
                user="qa2",
                disposition=Disposition.NO_IMPACT,
                comment="again",
                now=opened + timedelta(hours=7),
            )
    detail = service.get_alert(psycopg.connect(db_url), alert_id=alert_id)
    assert [(e.event, e.level) for e in detail.events] == [
        ("opened", 0),
        ("escalated", 1),
        ("escalated", 2),
        ("acknowledged", 2),
        ("closed", 2),
    ]
    assert detail.status is Status.CLOSED
    assert detail.escalation_level == 2
    assert detail.acknowledged_by == "qa1"
    assert detail.closed_by == "qa2"
    assert detail.disposition == "product assessed"
    assert [e.actor for e in detail.events][-2:] == ["qa1", "qa2"]


def test_an_excursion_in_progress_cannot_be_closed(db_url):
    alert_id, opened = _open_alert(db_url, ended=False)
    with psycopg.connect(db_url) as conn:
        service.acknowledge(conn, alert_id=alert_id, user="qa1", comment="on it", now=opened)
        with pytest.raises(service.AlertTransitionError, match="still in progress"):
            service.close(
                conn,
                alert_id=alert_id,
                user="qa1",
                disposition=Disposition.NO_IMPACT,
                comment="x",
                now=opened,
            )
        assert [a.id for a in service.list_alerts(conn, status=Status.ACKNOWLEDGED)] == [alert_id]
        assert service.list_alerts(conn, status=Status.OPEN) == []


def test_restarted_worker_continues_the_same_alert(broker, db_url):
    assign_profile(db_url, "fridge-a", FAST)
    base = now_ms() - 10 * MIN
    seq, pub = Seq(), gateway_client(broker)
    _w, stop, t = start_worker(broker, db_url, "ingest-a")
    publish(pub, TOPIC, seq.batch([(base + i * 20_000, 12.0) for i in range(10)]))
    assert wait_until(lambda: one(db_url, "SELECT count(*) FROM telemetry.alerts") == 1)
    stop_worker(stop, t)
    _w, stop, t = start_worker(broker, db_url, "ingest-a")  # a restart: same session
    try:
        publish(pub, TOPIC, seq.batch([(base + 5 * MIN, 14.0), (base + 6 * MIN, 5.0)]))
        assert wait_until(lambda: one(db_url, "SELECT ended_at IS NOT NULL FROM telemetry.alerts"))
    finally:
        stop_worker(stop, t)
    assert one(db_url, "SELECT count(*) FROM telemetry.alerts") == 1
    alert_id = one(db_url, "SELECT id FROM telemetry.alerts")
    assert events(db_url, alert_id) == ["opened", "updated"]  # peak +2 °C and ended: one event
    assert one(db_url, "SELECT peak FROM telemetry.alerts") == 14.0


def test_power_loss_and_offline_become_alerts_and_end(broker, db_url, worker):
    base = now_ms() - 5 * MIN
    seq, pub = Seq(), gateway_client(broker)
    publish(
        pub,
        TOPIC,
        seq.batch([(base, 1.0), (base + MIN, 0.0)], sensor="gw-1-mains", qty="power", unit="1"),
    )
    assert wait_until(
        lambda: one(db_url, "SELECT count(*) FROM telemetry.alerts WHERE kind = 'power_loss'") == 1
    )
    assert (
        one(db_url, "SELECT severity FROM telemetry.alerts WHERE kind = 'power_loss'") == "critical"
    )
    publish(
        pub, TOPIC, seq.batch([(base + 2 * MIN, 1.0)], sensor="gw-1-mains", qty="power", unit="1")
    )
    assert wait_until(
        lambda: (
            one(db_url, "SELECT ended_at FROM telemetry.alerts WHERE kind = 'power_loss'")
            is not None
        )
    )
    assert one(db_url, "SELECT ended_at FROM telemetry.alerts") == datetime.fromtimestamp(
        (base + 2 * MIN) / 1000, UTC
    )

    # a temperature sensor last heard 5 min ago; the default profile says offline after 30 min
    publish(pub, TOPIC, seq.batch([(base, 5.0)]))
    assert wait_until(
        lambda: one(db_url, "SELECT count(*) FROM telemetry.readings WHERE value = 5.0") == 1
    )
    now = datetime.now(UTC)
    with psycopg.connect(db_url) as conn:
        sweep(conn, now=now)
        assert conn.execute(
            "SELECT count(*) FROM telemetry.alerts WHERE kind = 'offline'"
        ).fetchone() == (0,)
        sweep(conn, now=now + timedelta(minutes=40))
        sweep(conn, now=now + timedelta(minutes=50))  # still offline: no second alert
        rows = conn.execute(
            "SELECT started_at FROM telemetry.alerts WHERE kind = 'offline'"
        ).fetchall()
    assert rows == [(datetime.fromtimestamp(base / 1000, UTC),)]


def test_low_battery_and_sensor_fault_open_and_clear(broker, db_url, worker):
    base = now_ms() - 5 * MIN
    seq, pub = Seq(), gateway_client(broker)
    publish(pub, TOPIC, seq.batch([(base, 40.0), (base + MIN, 12.0)], qty="battery", unit="%"))
    assert wait_until(
        lambda: one(db_url, "SELECT count(*) FROM telemetry.alerts WHERE kind = 'low_battery'") == 1
    )
    assert one(
        db_url, "SELECT started_at FROM telemetry.alerts WHERE kind = 'low_battery'"
    ) == datetime.fromtimestamp((base + MIN) / 1000, UTC)
    # -120 °C is physically impossible for the default profile (fault below -90 °C)
    publish(pub, TOPIC, seq.batch([(base, 5.0), (base + MIN, -120.0)]))
    assert wait_until(
        lambda: (
            one(db_url, "SELECT count(*) FROM telemetry.alerts WHERE kind = 'sensor_fault'") == 1
        )
    )
    # the fault value is not an excursion
    assert (
        one(
            db_url,
            "SELECT count(*) FROM telemetry.alerts WHERE kind LIKE 'excursion%%'",
        )
        == 0
    )
    assert one(db_url, "SELECT count(*) FROM telemetry.excursion_episodes") == 0
    publish(pub, TOPIC, seq.batch([(base + 2 * MIN, 5.1)]))
    assert wait_until(
        lambda: (
            one(db_url, "SELECT ended_at FROM telemetry.alerts WHERE kind = 'sensor_fault'")
            is not None
        )
    )
    assert one(db_url, "SELECT ended_at FROM telemetry.alerts WHERE kind = 'low_battery'") is None


def _signed_close(alert_id: int, user: str, disposition: str, reason: str) -> list[str]:
    """``coldtrace alerts close`` arguments: a signed close, the password read from stdin."""
    meaning = "Reviewed: alert closed"
    return ["alerts", "close", str(alert_id), "--user", user, "--disposition", disposition,
            "--reason", reason, "--meaning", meaning, "--password-stdin"]  # fmt: skip


def test_alerts_cli_lists_acknowledges_and_refuses_an_early_close(db_url, monkeypatch):
    alert_id, _opened = _open_alert(db_url, ended=True)
    add_user(db_url, "quinn", ["qa"], PASSWORDS["qa"])
    monkeypatch.setenv("COLDTRACE_DATABASE_URL", db_url)
    runner = CliRunner()
    signature = PASSWORDS["qa"] + "\n"
    listed = runner.invoke(app, ["alerts", "list", "--status", "open"])
    assert listed.exit_code == 0, listed.output
    assert "1 alert(s)" in listed.output
    closed_list = runner.invoke(app, ["alerts", "list", "--status", "closed"])
    assert "0 alert(s)" in closed_list.output
    early = runner.invoke(app, _signed_close(alert_id, "quinn", "no impact", "x"), input=signature)
    assert early.exit_code == 1
    assert "acknowledged first" in early.output
    acked = runner.invoke(app, ["alerts", "ack", str(alert_id), "--comment", "looking"])
    assert acked.exit_code == 0, acked.output
    closed = runner.invoke(
        app, _signed_close(alert_id, "quinn", "no impact", "door left open 4 min"), input=signature
    )
    assert closed.exit_code == 0, closed.output
    assert (
        one(db_url, "SELECT status || '/' || disposition FROM telemetry.alerts")
        == "closed/no impact"
    )
    assert runner.invoke(app, _signed_close(1, "quinn", "meh", "c"), input=signature).exit_code == 2


def test_alerts_cli_records_the_os_user_not_a_name_given_on_the_command_line(db_url, monkeypatch):
    """Red team (issue 9): ``alerts close --user mara`` closed an excursion as the QA
    manager for anyone with a shell and the database URL. An acknowledgement's actor is
    the OS user; a close names its signer, who must prove it with their password."""
    alert_id, _opened = _open_alert(db_url, ended=True)
    add_user(db_url, "mara", ["qa_manager"], PASSWORDS["qa_manager"])
    monkeypatch.setenv("COLDTRACE_DATABASE_URL", db_url)
    runner = CliRunner()
    claimed = runner.invoke(
        app, ["alerts", "ack", str(alert_id), "--user", "mara", "--comment", "not me"]
    )
    assert claimed.exit_code == 2, claimed.output  # no such option any more
    assert one(db_url, "SELECT count(*) FROM telemetry.alert_events WHERE actor = 'mara'") == 0
    acked = runner.invoke(app, ["alerts", "ack", str(alert_id), "--comment", "on it"])
    assert acked.exit_code == 0, acked.output
    me = f"cli:{getpass.getuser()}"
    assert (
        one(db_url, "SELECT actor FROM telemetry.alert_events WHERE event = 'acknowledged'") == me
    )
    guessed = runner.invoke(
        app, _signed_close(alert_id, "mara", "no impact", "ok"), input="not-her-password\n"
    )
    assert guessed.exit_code == 1, guessed.output
    assert one(db_url, "SELECT count(*) FROM telemetry.alert_events WHERE actor = 'mara'") == 0
    closed = runner.invoke(
        app,
        _signed_close(alert_id, "mara", "no impact", "ok"),
        input=PASSWORDS["qa_manager"] + "\n",
    )
    assert closed.exit_code == 0, closed.output
    assert one(db_url, "SELECT actor FROM telemetry.alert_events WHERE event = 'closed'") == "mara"


def test_alerts_api_reads_and_qa_roles_acknowledge_and_close(db_url):
    alert_id, _opened = _open_alert(db_url, ended=True)
    add_user(db_url, "olga", ["operator"], PASSWORDS["operator"])
    add_user(db_url, "quinn", ["qa"], PASSWORDS["qa"])
    add_user(db_url, "mara", ["qa_manager"], PASSWORDS["qa_manager"])
    settings = ApiSettings(
        database_url=db_url,
        pool_min_size=1,
        pool_max_size=4,
        jwt_secret=SecretStr("alerts-test-secret-0123456789abcdef"),
    )
    with TestClient(create_app(settings)) as api:
        # reading alerts needs a signed-in user, like the inbox page (any role)
        assert api.get("/api/alerts").status_code == 401
        assert api.get(f"/api/alerts/{alert_id}").status_code == 401
        op = token_for(api, "olga", PASSWORDS["operator"])
        listed = api.get("/api/alerts", params={"status": "open"}, headers=bearer(op))
        assert listed.status_code == 200
        assert [a["id"] for a in listed.json()] == [alert_id]
        closed_now = api.get("/api/alerts", params={"status": "closed"}, headers=bearer(op))
        assert closed_now.json() == []
        other = api.get("/api/alerts", params={"sensor": 999_999}, headers=bearer(op))
        assert other.json() == []
        one_alert = api.get(f"/api/alerts/{alert_id}", headers=bearer(op)).json()
        assert [e["event"] for e in one_alert["events"]] == ["opened"]
        assert one_alert["events"][0]["detail"]["peak"] == 12.0
        assert api.get("/api/alerts/999999", headers=bearer(op)).status_code == 404

        body = {"comment": "checking"}
        assert api.post(f"/api/alerts/{alert_id}/ack", json=body).status_code == 401
        assert (
            api.post(f"/api/alerts/{alert_id}/ack", json=body, headers=bearer(op)).status_code
            == 403
        )
        qa = token_for(api, "quinn", PASSWORDS["qa"])
        close_body = {
            "disposition": "product assessed",
            "comment": "within stability data",
            "password": PASSWORDS["qa_manager"],
        }
        early = api.post(f"/api/alerts/{alert_id}/close", json=close_body, headers=bearer(qa))
        assert early.status_code == 409
        acked = api.post(f"/api/alerts/{alert_id}/ack", json=body, headers=bearer(qa))
        assert acked.status_code == 200, acked.text
        assert acked.json()["acknowledged_by"] == "quinn"
        assert (
            api.post(f"/api/alerts/{alert_id}/ack", json=body, headers=bearer(qa)).status_code
            == 409
        )
        mgr = token_for(api, "mara", PASSWORDS["qa_manager"])
        bad = api.post(
            f"/api/alerts/{alert_id}/close",
            json={**close_body, "disposition": "meh"},
            headers=bearer(mgr),
        )
        assert bad.status_code == 422
        closed = api.post(f"/api/alerts/{alert_id}/close", json=close_body, headers=bearer(mgr))
        assert closed.status_code == 200, closed.text
        assert closed.json()["status"] == "closed"
        assert closed.json()["signature"].endswith("meaning: Reviewed: alert closed")
        assert closed.json()["deviations_closed"] == []  # no lot was in that fridge
        assert closed.json()["closed_by"] == "mara"
        assert [e["event"] for e in closed.json()["events"]] == ["opened", "acknowledged", "closed"]


def test_a_stuck_probe_is_found_by_the_sweep_and_ends_when_the_value_moves(broker, db_url, worker):
    stuck = AlarmProfile(name="stuck", low=2.0, high=8.0, stuck_after_s=300)
    assign_profile(db_url, "fridge-s", stuck)
    base = now_ms() - 10 * MIN
    seq, pub = Seq(), gateway_client(broker)
    # 5.0 then 4.0 for 4 min: not yet stuck
    publish(
        pub,
        TOPIC,
        seq.batch(
            [(base, 5.0)] + [(base + (1 + i) * MIN, 4.0) for i in range(5)], sensor="fridge-s"
        ),
    )
    assert wait_until(lambda: one(db_url, "SELECT count(*) FROM telemetry.readings") == 6)
    with psycopg.connect(db_url) as conn:
        sweep(conn, now=datetime.now(UTC))
    assert one(db_url, "SELECT count(*) FROM telemetry.alerts") == 0
    # one more minute at 4.0: five minutes of one value
    publish(pub, TOPIC, seq.batch([(base + 6 * MIN, 4.0)], sensor="fridge-s"))
    assert wait_until(lambda: one(db_url, "SELECT count(*) FROM telemetry.readings") == 7)
    with psycopg.connect(db_url) as conn:
        sweep(conn, now=datetime.now(UTC))
    assert one(db_url, "SELECT kind FROM telemetry.alerts") == "sensor_stuck"
    assert one(db_url, "SELECT started_at FROM telemetry.alerts") == datetime.fromtimestamp(
        (base + MIN) / 1000, UTC
    )
    # the value moves: the live alert makes the sensor worth evaluating, and it ends
    publish(pub, TOPIC, seq.batch([(base + 7 * MIN, 4.1)], sensor="fridge-s"))
    assert wait_until(lambda: one(db_url, "SELECT ended_at FROM telemetry.alerts") is not None)
    assert one(db_url, "SELECT ended_at FROM telemetry.alerts") == datetime.fromtimestamp(
        (base + 7 * MIN) / 1000, UTC
    )


def test_a_failing_evaluation_is_logged_requeued_and_retried_without_blocking(
    broker, db_url, worker, caplog
):
    good = assign_profile(db_url, "fridge-good", FAST)
    bad = assign_profile(db_url, "fridge-bad", FAST)
    with psycopg.connect(db_url) as conn:  # a profile someone broke: low above high
        conn.execute(
            "UPDATE telemetry.alarm_profiles SET spec = spec || '{\"low\": 9}'::jsonb "
            "WHERE id = (SELECT profile_id FROM telemetry.sensor_profiles WHERE sensor_id = %s)",
            (bad,),
        )
    base = now_ms() - 10 * MIN
    seq, pub = Seq(), gateway_client(broker)
    pts = [(base + i * 20_000, 12.0) for i in range(10)]
    publish(pub, TOPIC, seq.batch(pts, sensor="fridge-good"))
    publish(pub, TOPIC, seq.batch(pts, sensor="fridge-bad"))
    assert wait_until(lambda: one(db_url, "SELECT count(*) FROM telemetry.readings") == 20)
    assert wait_until(lambda: one(db_url, "SELECT count(*) FROM telemetry.alerts") == 1)
    assert one(db_url, "SELECT sensor_id FROM telemetry.alerts") == good
    assert wait_until(
        lambda: (
            one(db_url, "SELECT attempts FROM telemetry.eval_pending WHERE sensor_id = %s", (bad,))
            == 1
        )
    )
    assert "low" in one(db_url, "SELECT last_error FROM telemetry.eval_pending")
    assert "evaluating sensor" in caplog.text
    # repaired, the next sweep evaluates the queued range
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE telemetry.alarm_profiles SET spec = spec || '{\"low\": 2}'::jsonb")
        sweep(conn, now=datetime.now(UTC))
    assert one(db_url, "SELECT count(*) FROM telemetry.alerts WHERE sensor_id = %s", (bad,)) == 1
    assert one(db_url, "SELECT count(*) FROM telemetry.eval_pending") == 0


def test_single_excursion_budget_used_up_is_told_once(db_url):
    budget = AlarmProfile(
        name="budget", low=2.0, high=8.0, alarm_delay_s=0, single_event_budget_s=180
    )
    sid = assign_profile(db_url, "fridge-b", budget)
    now = datetime.now(UTC)
    base = int(now.timestamp() * 1000) - 30 * MIN

    def add(points: list[tuple[int, float]]) -> None:
        with psycopg.connect(db_url) as conn:
            _insert_readings(conn, sid, points)
            lo, hi = (datetime.fromtimestamp(t / 1000, UTC) for t in (points[0][0], points[-1][0]))
            conn.execute(
                "INSERT INTO telemetry.eval_pending (sensor_id, min_t, max_t) VALUES (%s, %s, %s)",
                (sid, lo, hi),
            )
            evaluate_pending(conn, now=now)

    add([(base, 9.0), (base + MIN, 9.0)])  # delay 0: alarm at once, 1 min used
    alert_id = one(db_url, "SELECT id FROM telemetry.alerts")
    add([(base + 2 * MIN, 9.0), (base + 3 * MIN, 9.0)])  # 3 min: not more than the budget
    assert events(db_url, alert_id) == ["opened"]
    add([(base + 4 * MIN, 9.0)])  # 4 min > 3 min budget
    assert events(db_url, alert_id) == ["opened", "updated"]
    changes = one(
        db_url, "SELECT detail->'changes' FROM telemetry.alert_events ORDER BY id DESC LIMIT 1"
    )
    assert changes == ["budget"]
    add([(base + 5 * MIN, 9.0)])
    assert events(db_url, alert_id) == ["opened", "updated"]
