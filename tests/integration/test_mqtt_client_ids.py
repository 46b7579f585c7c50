"""Client ids are account names (issue 9): what that means for sessions, shared
subscriptions, revocation and the gateway's will, against a Mosquitto of the test's own.

The broker runs with ``use_username_as_clientid`` on every listener (`coldtrace.broker`):
whatever client id a client asks for, its session is its account's. So one account is
one connection, each ingest worker has an account of its own (all in the same secret
share group), a worker's session survives its restart whatever id it asks for, a
revoked account gets in under no id, and a retired worker's session, which would go on
taking its turn of the group's messages, can be ended (``devices revoke --end-session``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from coldtrace.broker import Broker
from coldtrace.cli import app
from coldtrace.devices import Role
from gateway.outbox import Outbox
from telemetry.codec import decode_state, encode
from telemetry.payloads import VERSION, GatewayState, Status
from tests.integration.ingest_helpers import running_worker, scalar
from tests.integration.test_mqtt_security import gateway_config, publishing, until
from tests.mqtt_helpers import (
    Collector,
    batch,
    client,
    gateway_client,
    gateway_mqtt,
    publish,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

SITE = "plant-1"
READINGS = f"ct/v1/{SITE}/gw-1/readings"
STORED = "SELECT count(*) FROM telemetry.readings"
NOT_AUTHORISED = "Not authorized"


def _connack(broker: Broker, username: str, password: str, client_id: str) -> str:
    """Log in with paho as ``username`` asking for ``client_id``; the CONNACK reason."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(username, password)
    answers: list[str] = []
    c.on_connect = lambda _c, _u, _f, reason, _p: answers.append(str(reason))
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        assert wait_until(lambda: bool(answers), timeout=10), "no CONNACK"
    finally:
        c.disconnect()
        c.loop_stop()
    return answers[0]


def test_two_ingest_workers_with_their_own_accounts_share_the_load(
    broker: Broker, db_url: str
) -> None:
    """Both workers ask for the same client id; the broker keeps them apart by account."""
    first, second = broker.ingest_credentials, broker.service_credentials(Role.INGEST, "ingest-2")
    assert first.share_group == second.share_group, "one secret group for every ingest account"
    pub = gateway_client(broker, SITE, "gw-1")
    with (
        running_worker(broker, db_url, account="ingest", client_id="same-id") as (w1, _),
        running_worker(broker, db_url, account="ingest-2", client_id="same-id") as (w2, _),
    ):
        for k in range(40):
            publish(pub, READINGS, batch(1 + 5 * k, 5))
        assert wait_until(lambda: scalar(db_url, STORED) == 200, timeout=20), (
            f"{scalar(db_url, STORED)} of 200 readings stored"
        )
        shares = (w1.totals.messages, w2.totals.messages)
        assert sum(shares) == 40
        assert min(shares) >= 10, f"one worker took (nearly) everything: {shares}"
        assert (w1.consumer.generation, w2.consumer.generation) == (1, 1), "one cut the other off"
    pub.disconnect()


def test_a_restarted_worker_resumes_its_accounts_session_whatever_id_it_asks_for(
    broker: Broker, db_url: str
) -> None:
    pub = gateway_client(broker, SITE, "gw-1")
    with running_worker(broker, db_url, account="ingest", client_id="before-restart"):
        publish(pub, READINGS, batch(1, 5))
        assert wait_until(lambda: scalar(db_url, STORED) == 5, timeout=10)
    for seq in range(6, 56, 5):  # while it is down: queued in its account's session
        publish(pub, READINGS, batch(seq, 5))
    with running_worker(broker, db_url, account="ingest", client_id="after-restart"):
        assert wait_until(lambda: scalar(db_url, STORED) == 55, timeout=15), (
            f"{scalar(db_url, STORED)} of 55 readings stored: the session was lost"
        )
    pub.disconnect()


@pytest.mark.parametrize("account", ["ingest-2", "gw-2"])
def test_a_revoked_account_cannot_come_back_under_another_client_id(
    broker: Broker, account: str
) -> None:
    creds = (
        broker.service_credentials(Role.INGEST, account)
        if account.startswith("ingest")
        else broker.gateway_credentials(SITE, account)
    )
    live = broker.ingest_credentials  # an account that stays
    connected = client(broker, creds, client_id=account)
    broker.revoke(account)
    assert wait_until(lambda: bool(connected.disconnects), timeout=5), "not cut off"
    connected.disconnect()
    connected.loop_stop()
    others = [account, "ingest", "gw-1", "coldtrace-ingest-1", "observer-1", "anything"]
    for client_id in others:
        assert _connack(broker, creds.username, creds.password, client_id) == NOT_AUTHORISED
    # under another account's name as the user name: that account's password is needed
    assert _connack(broker, live.username, creds.password, account) == NOT_AUTHORISED
    assert _connack(broker, live.username, live.password, account) == "Success"  # control
    # ending a revoked account's session later (the CLI's advice) leaves it revoked
    broker.revoke(account, end_session=True)
    assert _connack(broker, creds.username, creds.password, account) == NOT_AUTHORISED
    assert broker.devices.active(account) is None


def test_a_gateway_that_comes_back_takes_over_its_own_session_and_ends_online(
    broker: Broker, tmp_path: Path
) -> None:
    """A second connection of the same account (a restarted gateway whose old connection
    the broker still holds) takes over: the old connection's will (offline) is published
    first, then the new connection's birth (online), so the retained state is online."""
    creds = broker.gateway_credentials(SITE, "gw-1")
    topic = f"ct/v1/{SITE}/gw-1/state"
    states = Collector(broker, topic)
    old = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="old", protocol=mqtt.MQTTv5)
    old.username_pw_set(creds.username, creds.password)
    t = int(time.time() * 1000)
    will = GatewayState(v=VERSION, gateway="gw-1", status=Status.OFFLINE, t=t, outbox_depth=7)
    old.will_set(topic, encode(will), qos=1, retain=True)
    reasons: list[str] = []
    old.on_disconnect = lambda _c, _u, _f, reason, _p: reasons.append(str(reason))
    old.reconnect_delay_set(min_delay=3600, max_delay=3600)  # the old one does not come back
    old.connect(broker.host, broker.port)
    old.loop_start()
    assert wait_until(old.is_connected, timeout=10)
    box = Outbox.open(tmp_path / "outbox.sqlite")
    cfg = gateway_config(gateway_mqtt(broker, SITE, "gw-1"), box.path, "gw-1")

    async def scenario() -> None:
        async with publishing(cfg, box) as publisher:
            await until(lambda: publisher.connected, "the gateway to connect")
            await until(lambda: len(states.payloads) >= 2, "the will and the birth")
            await asyncio.sleep(1.0)
            assert publisher.connected

    asyncio.run(scenario())
    old.loop_stop()
    box.close()
    assert len(reasons) == 1, reasons  # the old connection was cut off (MQTT 5 or not, 2.0.11
    # closes it without a reason code)
    seen = [decode_state(p) for p in states.payloads]
    assert [(s.status, s.outbox_depth) for s in seen[:2]] == [
        (Status.OFFLINE, 7),  # the old connection's will
        (Status.ONLINE, 0),  # the gateway's birth
    ]
    states.close()


def test_revoke_end_session_gives_a_retired_workers_turns_back_to_the_group(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    """A stopped worker's session stays in the group and takes its turn of the messages,
    which wait there; ``devices revoke --end-session`` ends it, and the other worker gets
    every message from then on."""
    runner = CliRunner()
    directory = ["--dir", str(broker.devices.path)]
    made = runner.invoke(app, ["devices", "service", "ingest", "--name", "ingest-2", *directory])
    assert made.exit_code == 0, made.output
    env_file = broker.devices.path / "ingest-2.env"
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert env["COLDTRACE_INGEST_MQTT_USERNAME"] == "ingest-2"
    assert env["COLDTRACE_INGEST_SHARE_GROUP"] == broker.ingest_credentials.share_group
    as_written = {
        "mqtt_username": env["COLDTRACE_INGEST_MQTT_USERNAME"],
        "mqtt_password": env["COLDTRACE_INGEST_MQTT_PASSWORD"],
        "share_group": env["COLDTRACE_INGEST_SHARE_GROUP"],
    }
    pub = gateway_client(broker, SITE, "gw-1")
    with running_worker(broker, db_url, account="ingest") as (w1, _):
        with running_worker(broker, db_url, **as_written) as (w2, _):
            assert w2.consumer.generation == 1  # logged in with the environment file
        # ingest-2 has joined the group and is gone; its session stays
        for seq in range(1, 11):
            publish(pub, READINGS, batch(seq, 1))
        assert wait_until(lambda: scalar(db_url, STORED) == 5, timeout=10)
        time.sleep(0.5)
        assert scalar(db_url, STORED) == 5, "the stopped worker's turns wait in its session"
        retired = runner.invoke(
            app,
            ["devices", "revoke", "ingest-2", "--end-session", *directory,
             "--broker-port", str(broker.port), "--wait", "10"],
        )  # fmt: skip
        assert retired.exit_code == 0, retired.output
        assert "discarded ingest-2's session" in retired.output
        for seq in range(11, 21):
            publish(pub, READINGS, batch(seq, 1))
        # all ten new ones: no turn goes to ingest-2 any more (the 5 it held were dropped
        # with its session; a gateway re-sends them, since no watermark covers them)
        assert wait_until(lambda: scalar(db_url, STORED) == 15, timeout=10), (
            f"{scalar(db_url, STORED)} of 15 readings stored"
        )
        assert w1.consumer.generation == 1
    pub.disconnect()
    log = (broker.devices.path / "devices.log").read_text()
    assert "revoke ingest-2" in log
