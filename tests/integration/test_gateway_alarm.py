"""The local alarm output: a relay on the RS-485 bus follows the local limits, broker or not.

A simulated XY-MD02 and a simulated Waveshare relay module share one serial line (a
socat pseudo-terminal pair); the real gateway polls the sensor and writes the relay's
coil (function 05). A reading beyond the limit switches the relay on, back in range
switches it off, the gateway's state message reports it, and with the broker stopped
the relay still follows the readings.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from coldtrace.broker import Broker, free_port
from firmware_sim.bus import SimulatedBus
from firmware_sim.modbus_device import DeviceSpec, SimulatedDevice
from firmware_sim.relay import SimulatedRelay
from gateway.app import run_gateway
from gateway.config import GatewayConfig
from gateway.health import HealthState
from ingest.notify.channels.mqtt import alerts_topic as notifier_alerts_topic
from ingest.notify.models import AlertNotice
from ingest.notify.render import document
from telemetry.modbus_profiles import SerialDefaults
from telemetry.topics import Kind, Topic
from tests.mqtt_helpers import Collector, client, gateway_mqtt, publish

pytestmark = pytest.mark.timeout(90)
needs_socat = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")

SITE, GATEWAY = "plant-1", "gw-alarm"
CHANNEL = 3


@pytest.fixture
def line(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals: (bus end, gateway end)."""
    dev, gw = tmp_path / "bus", tmp_path / "gateway"
    proc = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={dev}", f"pty,raw,echo=0,link={gw}"],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while not (dev.exists() and gw.exists()):
        assert time.monotonic() < deadline, "socat made no ptys"
        time.sleep(0.05)
    yield str(dev), str(gw)
    proc.terminate()
    proc.wait(5)


def config(
    broker: Broker,
    gw_port: str,
    outbox: Path,
    *,
    tcp_port: int | None = None,
    central_alerts: bool = False,
) -> GatewayConfig:
    rtu: dict[str, object] = {"transport": "rtu", "serial_port": gw_port}
    if tcp_port is not None:
        rtu = {"transport": "tcp", "host": "127.0.0.1", "port": tcp_port}
    rtu |= {"timeout_s": 0.3, "retries": 0}
    return GatewayConfig.model_validate(
        {
            "gateway": {"id": GATEWAY, "site": SITE},
            "mqtt": gateway_mqtt(broker, SITE, GATEWAY, reconnect_max_s=1),
            "outbox": {"path": str(outbox)},
            "state_interval_s": 30,  # alarm changes must be published without waiting for this
            "modbus": [
                rtu
                | {"name": "fridge-7", "profile": "xy-md02", "address": 1, "poll_interval_s": 0.2}
            ],
            "alarms": [
                rtu
                | {
                    "name": "fridge-7-buzzer",
                    "profile": "waveshare-modbus-rtu-relay",
                    "address": 2,
                    "channel": CHANNEL,
                    "limits": [{"sensor": "fridge-7", "low": 2.0, "high": 8.0}],
                    "central_alerts": central_alerts,
                }
            ],
        }
    )


def decode_health(payload: bytes) -> HealthState:
    return msgspec.json.decode(payload, type=HealthState)


async def until(cond: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@needs_socat
def test_relay_follows_local_limits_and_works_without_the_broker(
    broker: Broker, line: tuple[str, str], tmp_path: Path
) -> None:
    bus_port, gw_port = line
    sensor = SimulatedDevice(DeviceSpec(name="fridge-7", profile="xy-md02", port=0, unit=1))
    relay = SimulatedRelay(unit=2)
    sensor.hold({"temperature": 5.0, "humidity": 40.0})
    cfg = config(broker, gw_port, tmp_path / "outbox.sqlite")
    states = Collector(broker, str(Topic.build(SITE, GATEWAY, Kind.STATE)))

    def alarm_states() -> list[tuple[bool, bool | None]]:
        out = []
        for payload in list(states.payloads):
            out += [(a.active, a.output_on) for a in decode_health(payload).alarms]
        return out

    async def scenario() -> None:
        bus = SimulatedBus(
            bus_port,
            SerialDefaults(baudrate=9600, bytesize=8, parity="N", stopbits=1),
            [sensor, relay],
        )
        stop_bus, ready = asyncio.Event(), asyncio.Event()
        served = asyncio.create_task(bus.serve(stop=stop_bus, ready=ready))
        await asyncio.wait_for(ready.wait(), 5)
        stop = asyncio.Event()
        gateway = asyncio.create_task(run_gateway(cfg, stop=stop))
        try:
            # in range: the output is written off at start
            await until(lambda: relay.writes >= 1, "the first coil write")
            assert relay.channel(CHANNEL) is False
            await until(lambda: (False, False) in alarm_states(), "a state with the alarm clear")

            sensor.hold({"temperature": 9.5, "humidity": 40.0})  # beyond the 8 °C limit
            await until(lambda: relay.channel(CHANNEL), "the relay to switch on")
            assert [relay.channel(n) for n in range(1, 9) if n != CHANNEL] == [False] * 7
            await until(lambda: (True, True) in alarm_states(), "a state with the alarm on")
            on = [
                s
                for s in map(decode_health, list(states.payloads))
                if s.alarms and s.alarms[0].active
            ]
            assert "fridge-7 temperature 9.5 > 8" in on[-1].alarms[0].causes

            sensor.hold({"temperature": 6.0, "humidity": 40.0})  # back in range
            await until(lambda: not relay.channel(CHANNEL), "the relay to switch off")

            await asyncio.to_thread(broker.stop)  # network gone: the alarm is local
            writes = relay.writes
            sensor.hold({"temperature": 1.0, "humidity": 40.0})  # below the 2 °C limit
            await until(lambda: relay.channel(CHANNEL), "the relay to switch on without a broker")
            sensor.hold({"temperature": 4.0, "humidity": 40.0})
            await until(
                lambda: not relay.channel(CHANNEL), "the relay to switch off without a broker"
            )
            assert relay.writes >= writes + 2
            assert not gateway.done()
        finally:
            stop.set()
            await asyncio.wait_for(gateway, 20)
            stop_bus.set()
            await served

    asyncio.run(scenario())
    states.close()


def test_relay_behind_a_tcp_converter_shared_with_the_sensor(
    broker: Broker, tmp_path: Path
) -> None:
    """The demo's setup: sensor and relay module behind one RTU-to-TCP converter."""
    port = free_port()
    sensor = SimulatedDevice(DeviceSpec(name="fridge-7", profile="xy-md02", port=0, unit=1))
    relay = SimulatedRelay(unit=2)
    sensor.hold({"temperature": 5.0, "humidity": 40.0})
    cfg = config(broker, "", tmp_path / "outbox.sqlite", tcp_port=port)
    assert {u.link_key for u in [*cfg.modbus, *cfg.alarms]} == {f"tcp:127.0.0.1:{port}"}

    async def scenario() -> None:
        bus = SimulatedBus.behind_converter("127.0.0.1", port, [sensor, relay])
        stop_bus, ready = asyncio.Event(), asyncio.Event()
        served = asyncio.create_task(bus.serve(stop=stop_bus, ready=ready))
        await asyncio.wait_for(ready.wait(), 5)
        stop = asyncio.Event()
        gateway = asyncio.create_task(run_gateway(cfg, stop=stop))
        try:
            await until(lambda: relay.writes >= 1, "the first coil write")
            assert relay.channel(CHANNEL) is False
            sensor.hold({"temperature": 8.5, "humidity": 40.0})
            await until(lambda: relay.channel(CHANNEL), "the relay to switch on")
            sensor.hold({"temperature": 7.5, "humidity": 40.0})
            await until(lambda: not relay.channel(CHANNEL), "the relay to switch off")
        finally:
            stop.set()
            await asyncio.wait_for(gateway, 20)
            stop_bus.set()
            await served

    asyncio.run(scenario())


def alert_document(alert_id: int, status: str, sensor: str) -> bytes:
    """The notifier's own alert event document (what it publishes on the alerts topic)."""
    at = datetime(2026, 1, 15, 9, 47, 2, tzinfo=UTC)
    notice = AlertNotice(
        event_id=alert_id * 10,
        alert_id=alert_id,
        event={"open": "opened", "acknowledged": "acknowledged"}[status],
        level=0,
        at=at,
        kind="excursion_high",
        severity="critical",
        status=status,
        summary="fridge-7 above 8 °C for 30 min",
        started_at=at,
        site=SITE,
        sensor=sensor,
    )
    return json.dumps(document(notice, "https://coldtrace.example.com/alerts/1")).encode()


def test_open_central_alert_holds_the_relay_until_acknowledged(
    broker: Broker, tmp_path: Path
) -> None:
    port = free_port()
    sensor = SimulatedDevice(DeviceSpec(name="fridge-7", profile="xy-md02", port=0, unit=1))
    relay = SimulatedRelay(unit=2)
    sensor.hold({"temperature": 5.0, "humidity": 40.0})  # in range all along
    cfg = config(broker, "", tmp_path / "outbox.sqlite", tcp_port=port, central_alerts=True)
    topic = notifier_alerts_topic(SITE)
    states = Collector(broker, str(Topic.build(SITE, GATEWAY, Kind.STATE)))
    notifier = client(broker, broker.notifier_credentials)

    async def scenario() -> None:
        bus = SimulatedBus.behind_converter("127.0.0.1", port, [sensor, relay])
        stop_bus, ready = asyncio.Event(), asyncio.Event()
        served = asyncio.create_task(bus.serve(stop=stop_bus, ready=ready))
        await asyncio.wait_for(ready.wait(), 5)
        stop = asyncio.Event()
        gateway = asyncio.create_task(run_gateway(cfg, stop=stop))
        try:
            await until(lambda: relay.writes >= 1 and bool(states.payloads), "gateway online")
            # alert events are not retained: repeat them until the gateway has subscribed
            # (published from a thread: waiting for the PUBACK must not stall the gateway's
            # event loop, which this test shares)
            deadline = time.monotonic() + 30
            while not relay.channel(CHANNEL):
                assert time.monotonic() < deadline, "the relay did not switch on for the alert"
                unwatched = alert_document(12, "open", "other-fridge")
                await asyncio.to_thread(publish, notifier, topic, unwatched)
                await asyncio.to_thread(
                    publish, notifier, topic, alert_document(13, "open", "fridge-7")
                )
                await asyncio.sleep(0.3)
            await until(
                lambda: any(
                    a.active and a.causes == ["central alert 13: fridge-7 above 8 °C for 30 min"]
                    for s in map(decode_health, list(states.payloads))
                    for a in s.alarms
                ),
                "a state naming the alert",
            )
            ack = alert_document(13, "acknowledged", "fridge-7")
            await asyncio.to_thread(publish, notifier, topic, ack)
            # off although alert 12 is still open: it is not on a watched sensor
            await until(lambda: not relay.channel(CHANNEL), "the relay to switch off on ack")
        finally:
            stop.set()
            await asyncio.wait_for(gateway, 20)
            stop_bus.set()
            await served

    asyncio.run(scenario())
    notifier.loop_stop()
    notifier.disconnect()
    states.close()
