"""Device identity and MQTT authorisation against a Mosquitto of the test's own (issue 9).

Every test runs the broker with the provisioned password file and ACL exactly as a plant
runs it (`coldtrace.broker`, `coldtrace devices`): anonymous clients and wrong
passwords are refused, a gateway can neither publish under another gateway's prefix nor
forge another gateway's ack, only ingest acks, the notifier only publishes alert events,
revoking an account cuts a connected client off, and TLS refuses a broker certificate
that the gateway's CA did not sign or that names another host.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from coldtrace.broker import Broker, connack_code, free_port
from coldtrace.cli import app
from coldtrace.devices import Role
from coldtrace.devices_store import Credentials
from coldtrace.devices_tls import create_ca, ensure_tls
from gateway.config import GatewayConfig, load_config
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from ingest.consumer import Consumer
from ingest.errors import BrokerConnectionError
from ingest.settings import IngestSettings
from ingest.worker import Worker
from telemetry.codec import decode_ack, encode
from telemetry.payloads import VERSION, Ack, GatewayState, Reading, Status
from telemetry.topics import Kind, ack_topic
from tests.mqtt_helpers import (
    Collector,
    ConnectRefusedError,
    PublishRefusedError,
    batch,
    client,
    gateway_client,
    gateway_mqtt,
    ingest_settings,
    publish,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

SITE = "plant-1"
NOT_AUTHORISED = 5  # MQTT 3.1.1 CONNACK return code


def count(db_url: str, sql: str, args: tuple[object, ...] = ()) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, args).fetchone()
    return int(row[0]) if row else 0


@contextlib.contextmanager
def running_worker(settings: IngestSettings, db_url: str) -> Iterator[Worker]:
    worker = Worker(settings, db_url)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    assert worker.ready.wait(15), "ingest did not subscribe"
    try:
        yield worker
    finally:
        stop.set()
        thread.join(15)


@pytest.fixture
def worker(broker: Broker, db_url: str) -> Iterator[Worker]:
    with running_worker(
        ingest_settings(broker, client_id="ingest-sec", max_delay_ms=50), db_url
    ) as w:
        yield w


def readings(n: int, *, sensor: str = "fridge-1", start_ms: int | None = None) -> list[Reading]:
    t0 = start_ms if start_ms is not None else int(time.time() * 1000) - 60_000
    return [
        Reading(t=t0 + i * 1000, sensor=sensor, qty="temperature", value=4.0, unit="Cel")
        for i in range(n)
    ]


def gateway_config(mqtt_section: dict[str, object], outbox: Path, gateway: str) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway": {"id": gateway, "site": SITE},
            "mqtt": {"reconnect_max_s": 1, **mqtt_section},
            "outbox": {"path": str(outbox), "resend_after_s": 30},
            "state_interval_s": 60,
        }
    )


@contextlib.asynccontextmanager
async def publishing(cfg: GatewayConfig, box: Outbox) -> AsyncIterator[Publisher]:
    """The gateway's real publisher, running until the block ends."""
    publisher = Publisher(cfg, box)
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    try:
        yield publisher
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def until(predicate: object, what: str, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


# --- who may connect ---------------------------------------------------------------------


def test_anonymous_clients_and_wrong_passwords_are_refused(broker: Broker) -> None:
    real = broker.gateway_credentials(SITE, "gw-1")
    assert connack_code(broker.host, broker.port, real) == 0  # the control: it works
    assert connack_code(broker.host, broker.port, None) == NOT_AUTHORISED
    wrong = Credentials("gw-1", real.password[:-1] + ("x" if real.password[-1] != "x" else "y"))
    assert connack_code(broker.host, broker.port, wrong) == NOT_AUTHORISED
    stranger = Credentials("gw-unknown", real.password)
    assert connack_code(broker.host, broker.port, stranger) == NOT_AUTHORISED
    with pytest.raises(ConnectRefusedError, match="Not authorized"):
        client(broker, wrong)
    # an anonymous client cannot even read: paho's own error, before any subscription
    anon = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    refused: list[str] = []
    anon.on_connect = lambda _c, _u, _f, reason, _p: refused.append(str(reason))
    anon.connect(broker.host, broker.port)
    anon.loop_start()
    assert wait_until(lambda: bool(refused), 5)
    anon.loop_stop()
    assert refused == ["Not authorized"]


# --- what each account may publish and read ---------------------------------------------


def test_a_gateway_publishing_under_another_gateways_prefix_is_refused(
    broker: Broker, db_url: str, worker: Worker
) -> None:
    broker.gateway_credentials(SITE, "gw-1")  # the victim exists
    everything = Collector(broker, "ct/v1/#")
    attacker = gateway_client(broker, SITE, "gw-2")
    forged = batch(1, 10, gateway="gw-1", sensor="fridge-1", t0_ms=int(time.time() * 1000))
    for kind in Kind:
        topic = f"ct/v1/{SITE}/gw-1/{kind}" + ("/s1" if kind is Kind.ACK else "")
        with pytest.raises(PublishRefusedError, match="Not authorized"):
            publish(attacker, topic, forged)
    with pytest.raises(PublishRefusedError, match="Not authorized"):  # its own id at another site
        publish(attacker, "ct/v1/plant-2/gw-2/readings", forged)
    own = batch(1, 10, gateway="gw-2", sensor="fridge-9", t0_ms=int(time.time() * 1000))
    publish(attacker, f"ct/v1/{SITE}/gw-2/readings", own)
    assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry.readings") == 10)
    time.sleep(0.5)
    assert f"ct/v1/{SITE}/gw-2/readings" in everything.topics  # the control
    leaked = [t for t in everything.topics if "/gw-1/" in t or t.startswith("ct/v1/plant-2/")]
    assert leaked == [], "a forged message reached the broker's subscribers"
    assert count(db_url, "SELECT count(*) FROM telemetry.gateways WHERE id = 'gw-1'") == 0
    assert count(db_url, "SELECT count(*) FROM telemetry.sensors WHERE gateway_id <> 'gw-2'") == 0
    everything.close()


def test_a_forged_ack_from_one_gateways_credentials_never_reaches_another(
    broker: Broker, tmp_path: Path
) -> None:
    victim_box = Outbox.open(tmp_path / "victim.sqlite")
    victim_box.append(readings(62))
    stream = victim_box.stream
    cfg = gateway_config(gateway_mqtt(broker, SITE, "gw-1"), tmp_path / "victim.sqlite", "gw-1")
    attacker = gateway_client(broker, SITE, "gw-2")
    # another gateway's account (one account is one connection: gw-2's is the attacker's)
    spy = Collector(broker, f"ct/v1/{SITE}/gw-1/#", broker.gateway_credentials(SITE, "gw-3"))
    ack_topic_ = ack_topic(SITE, "gw-1", stream)

    def ack(committed: int) -> bytes:
        t = int(time.time() * 1000)
        return encode(Ack(v=VERSION, gateway="gw-1", stream=stream, committed=committed, t=t))

    # a gateway cannot ack even its own stream: only ingest acks (before the gateway runs:
    # its account has one connection)
    victim = gateway_client(broker, SITE, "gw-1")
    with pytest.raises(PublishRefusedError, match="Not authorized"):
        publish(victim, ack_topic_, ack(62), retain=True)
    victim.disconnect()
    victim.loop_stop()

    async def scenario() -> None:
        async with publishing(cfg, victim_box) as publisher:
            await until(lambda: publisher.connected, "the victim to connect")
            # the attack of the issue: one retained forged watermark covering everything
            with pytest.raises(PublishRefusedError, match="Not authorized"):
                publish(attacker, ack_topic_, ack(62), retain=True)
            await asyncio.sleep(1.5)
            publisher.flush()
            assert victim_box.depth() == 62, "a forged ack deleted unsent readings"
            assert publisher.committed == 0
            # the control: ingest's genuine ack reaches the gateway and deletes what it covers
            ingest = client(broker, broker.ingest_credentials)
            publish(ingest, ack_topic_, ack(10), retain=True)
            await until(lambda: publisher.committed == 10, "the genuine ack")
            publisher.flush()
            assert victim_box.depth() == 52
            ingest.disconnect()

    asyncio.run(scenario())
    victim_box.close()
    # gw-3 subscribed to gw-1's topics but was given nothing: not its readings, not its acks
    assert spy.payloads == []
    # and nothing forged was retained for a later subscriber: only ingest's ack is
    later = Collector(broker, f"ct/v1/{SITE}/gw-1/ack/#")
    assert later.wait_for(lambda ps: len(ps) >= 1, 5)
    time.sleep(0.3)
    assert [decode_ack(p).committed for p in later.payloads] == [10]
    for collector in (spy, later):
        collector.close()
    attacker.disconnect()


def test_only_ingest_acks_only_the_notifier_publishes_alerts_and_observers_only_read(
    broker: Broker,
) -> None:
    gw1 = gateway_client(broker, SITE, "gw-1")
    other_site = gateway_client(broker, "plant-2", "gw-7")
    # the readers are other accounts of the same roles: one account is one connection
    alerts_seen = Collector(
        broker, f"ct/v1/{SITE}/alerts", broker.gateway_credentials(SITE, "gw-3")
    )
    other_site_alerts = Collector(
        broker, f"ct/v1/{SITE}/alerts", broker.gateway_credentials("plant-2", "gw-8")
    )
    notifier_reads = Collector(broker, "#", broker.service_credentials(Role.NOTIFIER, "notifier-2"))
    ingest = client(broker, broker.ingest_credentials)
    notifier = client(broker, broker.notifier_credentials)
    observer = client(broker)
    event = b'{"type": "alert_event", "alert_id": 1, "status": "open"}'
    # forged central alerts would drive the gateways' alarm relays
    for forger in (gw1, other_site, ingest, observer):
        with pytest.raises(PublishRefusedError, match="Not authorized"):
            publish(forger, f"ct/v1/{SITE}/alerts", event)
    publish(notifier, f"ct/v1/{SITE}/alerts", event)
    # ingest acks, and only acks; the observer publishes nothing at all
    publish(ingest, ack_topic(SITE, "gw-1", "s1"), b"{}")
    for topic in (f"ct/v1/{SITE}/gw-1/readings", f"ct/v1/{SITE}/gw-1/state"):
        for forger in (ingest, observer, notifier):
            with pytest.raises(PublishRefusedError, match="Not authorized"):
                publish(forger, topic, b"{}")
    assert alerts_seen.wait_for(lambda ps: ps == [event], 5)
    time.sleep(0.5)
    assert other_site_alerts.payloads == [], "a gateway read another site's alerts"
    assert notifier_reads.payloads == [], "the notifier's account may publish only"
    for c in (alerts_seen, other_site_alerts, notifier_reads):
        c.close()
    for p in (gw1, other_site, ingest, notifier, observer):
        p.disconnect()


# --- revocation --------------------------------------------------------------------------


def test_revoke_cuts_off_a_connected_gateway(
    broker: Broker, db_url: str, worker: Worker, tmp_path: Path
) -> None:
    box = Outbox.open(tmp_path / "outbox.sqlite")
    cfg = gateway_config(gateway_mqtt(broker, SITE, "gw-1"), tmp_path / "outbox.sqlite", "gw-1")
    creds = broker.gateway_credentials(SITE, "gw-1")

    async def scenario() -> None:
        async with publishing(cfg, box) as publisher:
            box.append(readings(5))
            publisher.notify()
            await until(lambda: count(db_url, "SELECT count(*) FROM telemetry.readings") == 5,
                        "readings stored before the revocation")  # fmt: skip
            # stored is not yet confirmed: the watermark reaches the gateway just after
            await until(lambda: box.depth() == 0, "the watermark to confirm the first five")
            result = await asyncio.to_thread(
                CliRunner().invoke,
                app,
                ["devices", "revoke", "gw-1", "--dir", str(broker.devices.path)],
            )
            assert result.exit_code == 0, result.output
            assert "reloaded" in result.output
            await until(lambda: not publisher.connected, "the broker to cut the gateway off", 5)
            box.append(readings(5, start_ms=int(time.time() * 1000)))
            publisher.notify()
            await asyncio.sleep(3)  # it retries every second and is refused each time
            assert not publisher.connected
            assert count(db_url, "SELECT count(*) FROM telemetry.readings") == 5
            assert box.depth() == 5, "the gateway keeps what it could not send"

    asyncio.run(scenario())
    box.close()
    assert connack_code(broker.host, broker.port, creds) == NOT_AUTHORISED
    assert "revoke gw-1" in (broker.devices.path / "devices.log").read_text()


# --- TLS ---------------------------------------------------------------------------------


def tls_client(broker: Broker, creds: Credentials, ca_file: Path, host: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2)
    c.username_pw_set(creds.username, creds.password)
    c.tls_set_context(ssl.create_default_context(cafile=str(ca_file)))
    assert broker.tls_port is not None
    c.connect(host, broker.tls_port)
    return c


def test_tls_with_a_wrong_ca_is_refused(tls_broker: Broker, tmp_path: Path) -> None:
    broker = tls_broker
    creds = broker.gateway_credentials(SITE, "gw-1")
    rogue_ca = create_ca(tmp_path / "rogue", now=datetime.now(UTC))
    tls_client(broker, creds, broker.tls.ca_cert, "localhost").disconnect()  # the control
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        tls_client(broker, creds, rogue_ca, "localhost")
    # the gateway itself, configured with the wrong CA, never connects
    section = {"host": "localhost", "port": broker.tls_port, "username": creds.username,
               "password": creds.password, "tls": {"ca_file": str(rogue_ca)}}  # fmt: skip
    box = Outbox.open(tmp_path / "outbox.sqlite")
    box.append(readings(3))

    async def scenario(cfg: GatewayConfig, *, connects: bool) -> None:
        async with publishing(cfg, box) as publisher:
            if connects:
                await until(lambda: publisher.connected, "the gateway to connect over TLS")
            else:
                await asyncio.sleep(2)
                assert not publisher.connected

    asyncio.run(scenario(gateway_config(section, box.path, "gw-1"), connects=False))
    good = {**section, "tls": {"ca_file": str(broker.tls.ca_cert)}}
    asyncio.run(scenario(gateway_config(good, box.path, "gw-1"), connects=True))
    box.close()
    # ingest refuses the broker just the same
    ingest = broker.ingest_credentials
    consumer = Consumer(
        host="localhost",
        port=broker.tls_port or 0,
        client_id="ingest-rogue-ca",
        share_group="ingest",
        security=ingest_settings(broker, mqtt_ca_file=rogue_ca).mqtt_security(),
    )
    with pytest.raises(BrokerConnectionError, match="certificate verify failed"):
        consumer.start(timeout=5)
    assert ingest.username == "ingest"


def test_tls_refuses_a_certificate_for_another_host(tmp_path: Path) -> None:
    workdir = tmp_path / "mosquitto"
    ensure_tls(workdir / "auth", ["broker.elsewhere.example"], now=datetime.now(UTC))
    with Broker(workdir=workdir, tls_port=free_port()) as broker:
        creds = broker.gateway_credentials(SITE, "gw-1")
        with pytest.raises(ssl.SSLCertVerificationError, match=r"Hostname mismatch|match"):
            tls_client(broker, creds, broker.tls.ca_cert, "127.0.0.1")


# --- end to end with provisioned credentials over TLS ------------------------------------


def test_a_provisioned_gateways_readings_are_stored_end_to_end_over_tls(
    tls_broker: Broker, db_url: str, tmp_path: Path
) -> None:
    broker = tls_broker
    snippet = tmp_path / "snippet.yaml"
    result = CliRunner().invoke(
        app,
        [
            "devices", "provision", SITE, "gw-9", "--dir", str(broker.devices.path),
            "--broker-host", "localhost", "--broker-port", str(broker.tls_port),
            "--ca-file", str(broker.tls.ca_cert), "--out", str(snippet),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "topic write ct/v1/plant-1/gw-9/readings" in result.output
    assert oct(snippet.stat().st_mode & 0o777) == "0o600"
    config = yaml.safe_load(snippet.read_text())
    config |= {"outbox": {"path": "outbox.sqlite"}, "state_interval_s": 60}
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
    cfg = load_config(tmp_path / "gateway.yaml")  # as `coldtrace gateway run -c` reads it
    assert cfg.mqtt.tls is not None
    assert cfg.mqtt.port == broker.tls_port
    settings = ingest_settings(
        broker,
        client_id="ingest-tls",
        max_delay_ms=50,
        mqtt_host="localhost",
        mqtt_port=broker.tls_port,
        mqtt_ca_file=broker.tls.ca_cert,
    )
    box = Outbox.open(cfg.outbox.path)

    async def scenario() -> None:
        async with publishing(cfg, box) as publisher:
            box.append(readings(100, sensor="fridge-9"))
            publisher.notify()
            await until(lambda: box.depth() == 0, "the outbox to drain through ingest's acks", 30)

    with running_worker(settings, db_url):
        asyncio.run(scenario())
    box.close()
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT s.gateway_id, s.uid, count(*) FROM telemetry.readings r"
            " JOIN telemetry.sensors s ON s.id = r.sensor_id GROUP BY 1, 2"
        ).fetchall()
    assert rows == [("gw-9", "fridge-9", 100)]


# --- sensors belong to their gateway -----------------------------------------------------


def test_a_reading_belongs_to_the_sensor_of_the_gateway_that_sent_it(
    broker: Broker, db_url: str, worker: Worker
) -> None:
    t0 = int(time.time() * 1000) - 60_000
    attacker = gateway_client(broker, SITE, "gw-2")
    victim = gateway_client(broker, SITE, "gw-1")
    # same device id, same timestamps; the attacker's arrive first
    hot = batch(1, 20, gateway="gw-2", sensor="fridge-1", t0_ms=t0, value=lambda _i: 30.0)
    publish(attacker, f"ct/v1/{SITE}/gw-2/readings", hot)
    assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry.readings") == 20)
    real = batch(1, 20, gateway="gw-1", sensor="fridge-1", t0_ms=t0, value=lambda _i: 5.0)
    publish(victim, f"ct/v1/{SITE}/gw-1/readings", real)
    assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry.readings") == 40)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT s.gateway_id, min(r.value), max(r.value), count(*) FROM telemetry.readings r"
            " JOIN telemetry.sensors s ON s.id = r.sensor_id"
            " WHERE s.uid = 'fridge-1' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert rows == [("gw-1", 5.0, 5.0, 20), ("gw-2", 30.0, 30.0, 20)]
    for c in (attacker, victim):
        c.disconnect()


def test_a_state_naming_another_gateway_is_dead_lettered_not_applied(
    broker: Broker, db_url: str, worker: Worker
) -> None:
    gw2 = gateway_client(broker, SITE, "gw-2")
    now = int(time.time() * 1000)
    own = GatewayState(v=VERSION, gateway="gw-2", status=Status.ONLINE, t=now, outbox_depth=0)
    forged = GatewayState(v=VERSION, gateway="gw-1", status=Status.ONLINE, t=now, outbox_depth=0)
    publish(gw2, f"ct/v1/{SITE}/gw-2/state", encode(own))
    publish(gw2, f"ct/v1/{SITE}/gw-2/state", encode(forged))
    assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry.dead_letters") == 1)
    with psycopg.connect(db_url) as conn:
        (reason, gateway) = conn.execute(
            "SELECT reason, gateway_id FROM telemetry.dead_letters"
        ).fetchone()
        state = conn.execute(
            "SELECT id, status, state->>'gateway' FROM telemetry.gateways"
        ).fetchall()
    assert "state payload gateway 'gw-1' does not match topic gateway 'gw-2'" in reason
    assert gateway == "gw-2"
    assert state == [("gw-2", "online", "gw-2")]
    gw2.disconnect()
