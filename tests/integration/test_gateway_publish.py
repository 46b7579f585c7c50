"""The gateway end to end: real Mosquitto, real pymodbus TCP device, a fake ingest.

The fake ingest (a paho-mqtt client, as the real ingest is) collects reading batches
and publishes the retained committed watermark exactly as ARCHITECTURE rule 1 says;
the tests check that every seq arrives, the outbox empties only through acks, the
gateway pauses and goes back to re-send when acks are withheld, a broker restart is
survived without restarting the gateway, a restarted gateway resumes from its outbox,
SIGTERM publishes the offline state, and a killed gateway is reported by its last will.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from coldtrace.broker import Broker, free_port
from gateway.app import run_gateway
from gateway.config import GatewayConfig
from gateway.outbox import Outbox
from telemetry.codec import decode_batch, decode_state, encode
from telemetry.modbus_profiles import builtin_profiles
from telemetry.modbus_profiles import encode as encode_registers
from telemetry.payloads import VERSION, Ack, GatewayState, Reading, Status
from telemetry.topics import Kind, Topic, ack_topic
from tests.mqtt_helpers import gateway_mqtt

pytestmark = pytest.mark.timeout(60)

PROFILE = builtin_profiles()["renke-rs-ws-n01"]
VALUES = {"humidity": 45.5, "temperature": -3.2}
SENSOR = "RSWS-0001"
REPO = Path(__file__).resolve().parents[2]


class FakeIngest:
    """Plays ingest: stores batches by seq and publishes the retained watermark."""

    def __init__(self, broker: Broker, site: str, gateway: str) -> None:
        self.site, self.gateway = site, gateway
        self.acking = True
        self.arrivals: Counter[int] = Counter()  # seq -> how many times it arrived
        self.batch_sizes: list[int] = []
        self.items: dict[int, Any] = {}
        self.states: list[GatewayState] = []
        self.rejected: list[Any] = []
        self.stream: str | None = None
        self.committed = 0
        self._lock = threading.Lock()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"ingest-{uuid.uuid4().hex}"
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        creds = broker.ingest_credentials  # ingest's account: reads readings, writes acks
        self._client.username_pw_set(creds.username, creds.password)
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()

    def topic(self, kind: Kind) -> str:
        return str(Topic.build(self.site, self.gateway, kind))

    def _on_connect(self, client: paho.Client, *_: object) -> None:
        client.subscribe([(self.topic(Kind.READINGS), 1), (self.topic(Kind.STATE), 1)])

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        if msg.topic == self.topic(Kind.STATE):
            with self._lock:
                self.states.append(decode_state(msg.payload))
            return
        batch = decode_batch(msg.payload, now_ms=int(time.time() * 1000))
        with self._lock:
            self.rejected.extend(batch.rejected)  # asserted in the test, not in paho's thread
            if batch.stream != self.stream:
                self.stream, self.committed, self.items = batch.stream, 0, {}
            self.batch_sizes.append(batch.seq_last - batch.seq_first + 1)
            for seq, reading in batch.readings:
                self.arrivals[seq] += 1
                self.items[seq] = reading
            while self.committed + 1 in self.items:
                self.committed += 1
            if self.acking:
                self._ack()

    def _ack(self) -> None:
        assert self.stream is not None
        ack = Ack(
            v=VERSION,
            gateway=self.gateway,
            stream=self.stream,
            committed=self.committed,
            t=int(time.time() * 1000),
        )
        topic = ack_topic(self.site, self.gateway, self.stream)
        self._client.publish(topic, encode(ack), qos=1, retain=True)

    def seed(self, stream: str, committed: int) -> None:
        """Pretend readings up to ``committed`` of ``stream`` were stored earlier."""
        with self._lock:
            self.stream, self.committed = stream, committed
            self.items = dict.fromkeys(range(1, committed + 1))
            self._ack()

    def set_acking(self, on: bool) -> None:
        with self._lock:
            self.acking = on
            if on and self.stream is not None:
                self._ack()

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@pytest.fixture
def ids() -> tuple[str, str]:
    return "site-" + uuid.uuid4().hex[:8], "gw-" + uuid.uuid4().hex[:8]


@pytest.fixture
def ingest(broker: Broker, ids: tuple[str, str]) -> Any:
    fake = FakeIngest(broker, *ids)
    yield fake
    fake.close()


def gateway_config(
    broker: Broker, ids: tuple[str, str], outbox: Path, modbus_port: int, **outbox_opts: Any
) -> GatewayConfig:
    site, gw = ids
    return GatewayConfig.model_validate(
        {
            "gateway": {"id": gw, "site": site},
            "mqtt": gateway_mqtt(broker, site, gw, reconnect_max_s=1),
            "outbox": {"path": str(outbox), "batch_max": 7, "resend_after_s": 2} | outbox_opts,
            "state_interval_s": 0.5,
            "modbus": [
                {
                    "name": "room-1",
                    "profile": PROFILE.name,
                    "host": "127.0.0.1",
                    "port": modbus_port,
                    "sensor": SENSOR,
                    "poll_interval_s": 0.05,
                    "timeout_s": 0.5,
                    "retries": 0,
                }
            ],
        }
    )


class Device:
    """A pymodbus TCP server serving the RS-WS-N01 register map with fixed values."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: ModbusTcpServer | None = None

    async def start(self) -> None:
        words = encode_registers(PROFILE, VALUES)
        block = SimData(address=PROFILE.first_address, values=words, datatype=DataType.REGISTERS)
        self._server = ModbusTcpServer(
            SimDevice(id=1, simdata=[block]), address=("127.0.0.1", self.port)
        )
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


async def wait_until(cond: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.05)


async def drain_and_stop(
    device: Device, ingest: FakeIngest, box: Outbox, stop: asyncio.Event, task: asyncio.Task[None]
) -> int:
    """Stop the device, wait until ingest has everything and the outbox is empty."""
    await device.stop()
    await asyncio.sleep(0.2)  # a poll that was under way lands in the outbox

    def drained() -> bool:
        return box.depth() == 0 and ingest.committed == box.last_seq()

    await wait_until(drained, "ingest to commit everything and the outbox to empty")
    stop.set()
    await asyncio.wait_for(task, 10)
    assert drained()
    return box.last_seq()


def assert_all_delivered(ingest: FakeIngest, last: int, batch_max: int = 7) -> None:
    assert last > 0
    assert ingest.rejected == []
    assert sorted(ingest.items) == list(range(1, last + 1))
    assert max(ingest.batch_sizes) <= batch_max
    for reading in ingest.items.values():
        assert reading.sensor == SENSOR
        assert reading.value == VALUES[reading.qty]
        assert reading.unit == {"humidity": "%", "temperature": "Cel"}[reading.qty]


def test_every_seq_arrives_and_acks_empty_the_outbox(
    broker: Broker, ingest: FakeIngest, ids: tuple[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "outbox.sqlite"

    def device_down_reported() -> bool:
        state = ingest.states[-1] if ingest.states else None
        return bool(state and state.sources and not state.sources[0].ok and state.sources[0].error)

    async def scenario() -> int:
        device = Device()
        await device.start()
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_gateway(gateway_config(broker, ids, path, device.port), stop=stop)
        )
        with Outbox.open(path) as box:
            await wait_until(lambda: ingest.committed >= 40, "40 committed readings")
            await device.stop()
            await wait_until(device_down_reported, "the state topic to report the device down")
            return await drain_and_stop(device, ingest, box, stop, task)

    last = asyncio.run(scenario())
    assert_all_delivered(ingest, last)
    states = ingest.states
    assert states[0].status is Status.ONLINE  # birth
    assert any(s.sources and s.sources[0].ok and s.sources[0].name == "room-1" for s in states)
    assert states[-1].status is Status.OFFLINE  # the graceful goodbye
    assert states[-1].outbox_depth == 0


def test_withheld_acks_pause_sending_and_trigger_resend(
    broker: Broker, ingest: FakeIngest, ids: tuple[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "outbox.sqlite"
    ingest.set_acking(False)

    async def scenario() -> int:
        device = Device()
        await device.start()
        stop = asyncio.Event()
        cfg = gateway_config(broker, ids, path, device.port, resend_after_s=1, max_unconfirmed=20)
        task = asyncio.create_task(run_gateway(cfg, stop=stop))
        with Outbox.open(path) as box:
            await wait_until(lambda: ingest.arrivals[1] >= 2, "seq 1 to be re-sent", within=5)
            # nothing acked: sending paused at the window, nothing deleted
            assert max(ingest.arrivals) <= 20
            assert box.first_seq() == 1
            assert box.depth() > 20
            ingest.set_acking(True)
            return await drain_and_stop(device, ingest, box, stop, task)

    last = asyncio.run(scenario())
    assert last > 20
    assert_all_delivered(ingest, last)


def test_broker_restart_is_survived(
    broker: Broker, ingest: FakeIngest, ids: tuple[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "outbox.sqlite"

    async def scenario() -> int:
        device = Device()
        await device.start()
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_gateway(gateway_config(broker, ids, path, device.port), stop=stop)
        )
        with Outbox.open(path) as box:
            await wait_until(lambda: ingest.committed >= 10, "10 committed readings")
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(3)  # the device keeps being read into the outbox
            during_outage = box.last_seq()
            assert during_outage > ingest.committed
            await asyncio.to_thread(broker.start)
            await wait_until(lambda: ingest.committed >= during_outage, "the backlog", within=15)
            return await drain_and_stop(device, ingest, box, stop, task)

    last = asyncio.run(scenario())
    assert_all_delivered(ingest, last)


GATEWAY_MAIN = (
    "import asyncio, logging, sys\n"
    "from gateway.app import load_config, run_gateway\n"
    "logging.basicConfig(level=logging.INFO)\n"
    "asyncio.run(run_gateway(load_config(sys.argv[1])))\n"
)


def start_gateway_process(config: Path) -> subprocess.Popen[bytes]:
    """Run the gateway the way the CLI does: asyncio.run(run_gateway(load_config(path)))."""
    return subprocess.Popen(
        [sys.executable, "-c", GATEWAY_MAIN, str(config)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def write_config(tmp_path: Path, broker: Broker, ids: tuple[str, str]) -> Path:
    site, gw = ids
    creds = broker.gateway_credentials(site, gw)
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"gateway: {{id: {gw}, site: {site}}}\n"
        f"mqtt: {{host: {broker.host}, port: {broker.port}, keepalive_s: 5,\n"
        f"       username: {creds.username}, password: {creds.password}}}\n"
        "outbox: {path: outbox.sqlite, batch_max: 4, resend_after_s: 1}\n"
        "state_interval_s: 30\n"
    )
    return path


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def test_restart_resumes_from_the_outbox_and_sigterm_says_offline(
    broker: Broker, ingest: FakeIngest, ids: tuple[str, str], tmp_path: Path
) -> None:
    config = write_config(tmp_path, broker, ids)
    # a previous run left 30 readings, of which ingest had committed the first 10
    with Outbox.open(tmp_path / "outbox.sqlite") as box:
        t0 = int(time.time() * 1000) - 60_000
        box.append(
            [
                Reading(
                    t=t0 + i,
                    sensor=SENSOR,
                    qty="temperature",
                    value=VALUES["temperature"],
                    unit="Cel",
                )
                for i in range(30)
            ]
        )
        box.confirm(10)
        ingest.seed(box.stream, committed=10)

    process = start_gateway_process(config)
    try:
        wait_for(lambda: ingest.committed == 30, "seqs 11..30 to be committed")
        assert min(ingest.arrivals) == 11  # nothing below the outbox's first seq is re-sent
        with Outbox.open(tmp_path / "outbox.sqlite") as box:
            wait_for(lambda: box.depth() == 0, "the ack to empty the outbox")
        wait_for(lambda: ingest.states and ingest.states[-1].status is Status.ONLINE, "birth")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, process.stderr.read() if process.stderr else ""
    finally:
        process.kill()
        process.wait()
    wait_for(lambda: ingest.states[-1].status is Status.OFFLINE, "the offline state")
    assert ingest.states[-1].outbox_depth == 0
    with Outbox.open(tmp_path / "outbox.sqlite") as box:
        assert box.first_seq() == 31


def test_last_will_reports_a_killed_gateway_offline(
    broker: Broker, ingest: FakeIngest, ids: tuple[str, str], tmp_path: Path
) -> None:
    process = start_gateway_process(write_config(tmp_path, broker, ids))
    try:
        wait_for(lambda: bool(ingest.states) and ingest.states[-1].status is Status.ONLINE, "birth")
        process.kill()
        process.wait()
    finally:
        process.kill()
        process.wait()
    wait_for(lambda: ingest.states[-1].status is Status.OFFLINE, "the last will", timeout=10)
