"""The alert path end to end, against real services: a fridge's readings go through
Mosquitto and the ingest worker, the excursion passes the alarm delay, and exactly one
e-mail reaches a real SMTP server (aiosmtpd) naming location, sensor, peak and duration;
escalation sends again until someone acknowledges; a second episode is a second e-mail.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import psycopg

from coldtrace.broker import Broker
from coldtrace.mailcatcher import MailCatcher
from erp_core.alerts import service as alert_service
from erp_core.audit.service import set_actor
from erp_core.masterdata import service as master
from erp_core.masterdata.models import AssignmentIn, LocationIn
from ingest.alerts import escalate_due
from ingest.notify.main import open_notifier
from ingest.notify.settings import NotifySettings
from tests.integration.test_alerts import FAST, Seq, assign_profile, start_worker, stop_worker
from tests.mqtt_helpers import gateway_client, publish, wait_until

TOPIC = "ct/v1/plant-1/gw-1/readings"
MIN = 60_000


def deliver(settings: NotifySettings, db_url: str) -> None:
    async def run() -> None:
        async with open_notifier(settings, db_url) as notifier:
            for _ in range(3):
                await notifier.run_once()

    asyncio.run(run())


def bodies(mail: MailCatcher) -> list[tuple[str, str]]:
    out = []
    for raw in mail.messages:
        msg = message_from_bytes(raw, policy=default)
        out.append((str(msg["subject"]), msg.get_body(("plain",)).get_content()))
    return out


def test_failing_fridge_to_one_email_escalation_ack_and_a_second_episode(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    sensor = assign_profile(db_url, "FRIDGE-7", FAST)
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test-setup")
        site = master.create_location(
            conn, location=LocationIn(code="P1", name="Plant 1", kind="site")
        )
        fridge = master.create_location(
            conn,
            location=LocationIn(
                code="CR7", name="Cold room 7", kind="cold_room", parent_id=site.id
            ),
        )
        master.assign_sensor(
            conn,
            assignment=AssignmentIn(
                sensor_id=sensor,
                location_id=fridge.id,
                valid_from=datetime.now(UTC) - timedelta(days=1),
            ),
        )
        conn.execute(
            "INSERT INTO telemetry.recipients (name, email, role)"
            " VALUES ('Quinn QA', 'q@x.test', 'qa')"
        )
        conn.execute("INSERT INTO telemetry.notify_routes (role, channel) VALUES ('qa', 'email')")
    mail = MailCatcher(tmp_path / "mail")
    mail.start()
    settings = NotifySettings(
        smtp_host="127.0.0.1", smtp_port=mail.port, run_alert_jobs=False, backoff_base_s=0
    )
    _worker, stop, thread = start_worker(broker, db_url, "ingest-e2e")
    pub = gateway_client(broker)
    seq = Seq()
    t0 = int(time.time() * 1000) - 60 * MIN
    try:
        # 10 min in range, then 12 °C for 10 min: well past the 2-minute alarm delay
        first = [(t0 + i * MIN, 5.0) for i in range(10)] + [
            (t0 + i * MIN, 12.0) for i in range(10, 20)
        ]
        publish(pub, TOPIC, seq.batch(first, sensor="FRIDGE-7"))
        assert wait_until(lambda: _alerts(db_url) == 1, timeout=30)
        deliver(settings, db_url)
        assert len(mail.messages) == 1
        subject, body = bodies(mail)[0]
        for words in ("Cold room 7", "FRIDGE-7", "12.0"):
            assert words in subject + body, (words, subject, body)
        assert "min" in body  # the duration

        # not acknowledged for 16 minutes: escalated, and the QA person hears again
        with psycopg.connect(db_url) as conn:
            (alert_id, opened_at) = conn.execute(
                "SELECT id, opened_at FROM telemetry.alerts"
            ).fetchone()
            assert escalate_due(conn, now=opened_at + timedelta(minutes=16), after_minutes=15)
        deliver(settings, db_url)
        assert len(mail.messages) == 2
        # acknowledged: escalation stops, however long it stays open
        with psycopg.connect(db_url) as conn:
            alert_service.acknowledge(
                conn, alert_id=alert_id, user="qa", comment="moving stock", now=opened_at
            )
            assert escalate_due(conn, now=opened_at + timedelta(hours=5), after_minutes=15) == []
        deliver(settings, db_url)
        assert len(mail.messages) == 2

        # back in range, then a second excursion: a second alert and a second e-mail
        second = [(t0 + i * MIN, 5.0) for i in range(20, 30)] + [
            (t0 + i * MIN, 11.0) for i in range(30, 40)
        ]
        publish(pub, TOPIC, seq.batch(second, sensor="FRIDGE-7"))
        assert wait_until(lambda: _alerts(db_url) == 2, timeout=30)
        deliver(settings, db_url)
        assert len(mail.messages) == 3
        assert "11.0" in "".join(bodies(mail)[2])
    finally:
        stop_worker(stop, thread)
        mail.stop()


def _alerts(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM telemetry.alerts WHERE kind LIKE 'excursion%'"
        ).fetchone()
    return int(row[0]) if row else 0
