"""Edge devices end to end: simulator → gateway source → outbox → MQTT → ingest → PostgreSQL.

Each test runs a simulator of its own (barcode scanner, RFID reader, BLE logger), the
real gateway code, a real Mosquitto (fixture ``broker``), the real ingest worker in a
thread, and a fresh migrated database (fixture ``db_url``). Expected values are
worked out by hand from the labels, EPCs and frames the test itself makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import threading
import time
import tty
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from coldtrace.broker import Broker
from firmware_sim.barcode import SimulatedScanner
from firmware_sim.ble import SimulatedBleLogger, to_bleak
from firmware_sim.rfid import SimulatedReader
from gateway.app import run_gateway
from gateway.config import BarcodeScanner, GatewayConfig
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from gateway.sources.barcode import BarcodeSource
from gateway.sources.ble import BleSource
from ingest.worker import Worker
from telemetry.codec import encode
from telemetry.payloads import VERSION, ScanBatch, ScanItem, TagItem
from telemetry.topics import Kind
from tests.mqtt_helpers import gateway_client, gateway_mqtt, ingest_settings, publish

pytestmark = pytest.mark.timeout(90)

GS = "\x1d"


def rows(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def worker(broker: Broker, db_url: str) -> Iterator[Worker]:
    settings = ingest_settings(broker, client_id=f"ingest-{uuid.uuid4().hex[:8]}", max_delay_ms=50)
    w = Worker(settings, db_url)
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,), daemon=True)
    t.start()
    assert w.ready.wait(15), "worker did not subscribe"
    yield w
    stop.set()
    t.join(15)
    assert not t.is_alive(), "worker did not stop"


def gateway_config(broker: Broker, tmp_path: Path, **devices: Any) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway": {"id": "gw-edge", "site": "plant-1"},
            "mqtt": gateway_mqtt(broker, "plant-1", "gw-edge", reconnect_max_s=1),
            "outbox": {"path": str(tmp_path / "outbox.sqlite"), "resend_after_s": 2},
            "state_interval_s": 1,
            **devices,
        }
    )


async def until(
    predicate: Callable[[], bool], limit_s: float = 30, *, in_thread: bool = True
) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate) if in_thread else predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def with_gateway(cfg: GatewayConfig, body: Callable[[], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_gateway(cfg, stop=stop))
    try:
        await body()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


# --- barcode ---------------------------------------------------------------------------

GOOD_GS1 = "]d2" + "0104012345678901" + "17270600" + "10" + "LOT-7" + GS + "21" + "SN1"
BAD_CHECK = "]C1" + "0104012345678902" + "10" + "LOT-7"  # GTIN check digit is 1, not 2
HIBC = "+A123BJC5D6E71G"  # the HIBC standard's own example
MA = "MA.156.M0.100761.21234561.LB2024A.E270115"


def test_barcode_scans_reach_the_database_including_failed_ones(
    broker: Broker, db_url: str, worker: Worker, tmp_path: Path
) -> None:
    async def main() -> None:
        scanner = SimulatedScanner()
        url = await scanner.start()
        cfg = gateway_config(broker, tmp_path, barcode=[{"name": "dock-1", "url": url}])

        async def body() -> None:
            await asyncio.wait_for(scanner.server.wait_connected(), 10)
            # pyserial's socket:// open discards what arrives while it is opening
            # (reset_input_buffer): give it the moment a real scanner's user would
            await asyncio.sleep(1.0)
            for text in (GOOD_GS1, BAD_CHECK, HIBC, MA):
                await scanner.scan(text)
            assert await until(
                lambda: rows(db_url, "SELECT count(*) FROM telemetry.scans")[0][0] == 4
            )
            # the outbox empties only through ingest's watermark
            assert await until(lambda: _outbox_depth(cfg, Kind.SCANS) == 0)

        try:
            await with_gateway(cfg, body)
        finally:
            await scanner.close()

    asyncio.run(main())
    got = rows(
        db_url,
        "SELECT seq, scanner, data, ok, reason, scheme, di, gtin, lot, serial, expiry "
        "FROM telemetry.scans ORDER BY seq",
    )
    assert [r[0] for r in got] == [1, 2, 3, 4]
    assert {r[1] for r in got} == {"dock-1"}
    good, bad, hibc, ma = got
    assert good[2] == GOOD_GS1  # raw data kept as scanned, GS included
    assert good[3:] == (
        True,
        None,
        "gs1",
        "04012345678901",
        "04012345678901",
        "LOT-7",
        "SN1",
        dt.date(2027, 6, 30),  # DD = 00: last day of June
    )
    assert bad[3] is False
    assert "check digit" in bad[4]
    assert hibc[3:7] == (True, None, "hibc", "A123BJC5D6E71")
    assert ma[3:] == (
        True,
        None,
        "ma",
        "MA.156.M0.100761.21234561",
        None,
        "B2024A",
        None,
        dt.date(2027, 1, 15),
    )
    assert rows(db_url, "SELECT committed_seq FROM telemetry.gateway_streams") == [(4,)]


def _outbox_depth(cfg: GatewayConfig, kind: Kind) -> int:
    with Outbox.open(cfg.outbox.path) as outbox:
        return outbox.event_depth(kind)


def test_redelivered_scans_are_stored_once(broker: Broker, db_url: str, worker: Worker) -> None:
    now = int(time.time() * 1000)
    items = [
        ScanItem(t=now, scanner="s", data="x", ok=False, reason="not a label"),
        ScanItem(t=now + 1, scanner="s", data=HIBC, ok=True, scheme="hibc", di="A123BJC5D6E71"),
    ]
    batch = ScanBatch(VERSION, "gw-x", "stream-x", (1, 2), now, items)
    pub = gateway_client(broker, "plant-1", "gw-x")
    for _ in range(3):
        publish(pub, "ct/v1/plant-1/gw-x/scans", encode(batch))
    # a scan claiming ok with a reason breaks the contract: dead-lettered, watermark moves on
    bad = ScanBatch(VERSION, "gw-x", "stream-x", (3, 3), now, [ScanItem(now, "s", "y", True, "?")])
    publish(pub, "ct/v1/plant-1/gw-x/scans", encode(bad))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if rows(db_url, "SELECT committed_seq FROM telemetry.gateway_streams") == [(3,)]:
            break
        time.sleep(0.1)
    assert rows(db_url, "SELECT seq, ok FROM telemetry.scans ORDER BY seq") == [
        (1, False),
        (2, True),
    ]
    (reason,) = rows(db_url, "SELECT reason FROM telemetry.dead_letters")[0]
    assert "reason exactly when it is not ok" in reason
    pub.disconnect()


# --- RFID ------------------------------------------------------------------------------

SGTIN = "3074257BF7194E4000001A85"  # TDS example: sgtin 0614141.812345.6789
SSCC = "3174257BF4499602D2000000"  # TDS example: sscc 0614141.1234567890


def test_rfid_reads_are_collapsed_decoded_and_stored(
    broker: Broker, db_url: str, worker: Worker, tmp_path: Path
) -> None:
    sent = 0

    async def main() -> None:
        nonlocal sent
        reader = SimulatedReader(read_interval_s=0.05)
        port = await reader.start()
        reader.place(SGTIN, 1, rssi=-50)
        reader.place(SSCC, 2, rssi=-60)
        reader.place(SGTIN, 2, rssi=-70)  # the same tag seen by a second antenna
        cfg = gateway_config(
            broker,
            tmp_path,
            rfid=[{"name": "door-1", "host": "127.0.0.1", "port": port, "collapse_window_s": 60}],
        )

        async def body() -> None:
            await asyncio.wait_for(reader.server.wait_connected(), 10)
            assert await until(
                lambda: rows(db_url, "SELECT count(*) FROM telemetry.tag_reads")[0][0] >= 3
            )
            await asyncio.sleep(1.0)  # the reader keeps reporting; nothing new may be stored

        try:
            await with_gateway(cfg, body)
        finally:
            sent = reader.sent
            await reader.close()

    asyncio.run(main())
    assert sent > 20  # the reader really repeated itself
    got = rows(
        db_url,
        "SELECT reader, antenna, epc, scheme, gtin, serial, sscc, rssi "
        "FROM telemetry.tag_reads ORDER BY epc, antenna",
    )
    assert [r[:7] for r in got] == [
        ("door-1", 1, SGTIN, "sgtin-96", "80614141123458", "6789", None),
        ("door-1", 2, SGTIN, "sgtin-96", "80614141123458", "6789", None),
        ("door-1", 2, SSCC, "sscc-96", None, None, "106141412345678908"),
    ]
    assert all(-74 <= r[7] <= -46 for r in got)


# --- BLE -------------------------------------------------------------------------------


def test_ble_advertisements_become_stored_readings(
    broker: Broker, db_url: str, worker: Worker, tmp_path: Path
) -> None:
    address = "A4:C1:38:00:00:02"
    cfg = gateway_config(
        broker, tmp_path, ble={"loggers": [{"address": address, "sensor": "truck-7-ble"}]}
    )
    logger = SimulatedBleLogger(address)
    temperatures = [4.12, 4.25, 7.5]

    async def main() -> None:
        source = BleSource(cfg.ble, clock=time.time)  # type: ignore[arg-type]
        with Outbox.open(cfg.outbox.path) as outbox:
            publisher = Publisher(cfg, outbox)
            stop = asyncio.Event()
            task = asyncio.create_task(publisher.run(stop))
            for temp in temperatures:
                raw = logger.advertise(temperature=temp, humidity=55.0)
                for _ in range(3):  # each packet is broadcast several times
                    readings = source.handle(*to_bleak(address, raw))
                    if readings:
                        outbox.append(readings)
                        publisher.notify()
                await asyncio.sleep(0.01)  # distinct millisecond timestamps
            query = "SELECT count(*) FROM telemetry.readings"
            assert await until(lambda: rows(db_url, query)[0][0] == 6)
            assert await until(lambda: outbox.depth() == 0, in_thread=False)
            stop.set()
            await asyncio.wait_for(task, 20)

    asyncio.run(main())
    got = rows(
        db_url,
        "SELECT s.uid, s.quantity, s.unit, r.value FROM telemetry.readings r "
        "JOIN telemetry.sensors s ON s.id = r.sensor_id ORDER BY r.gateway_seq",
    )
    temps = [r[3] for r in got if r[1] == "temperature"]
    assert temps == pytest.approx(temperatures)
    assert {(r[0], r[2]) for r in got if r[1] == "humidity"} == {("truck-7-ble", "%")}


def test_rfid_source_reconnects_after_the_reader_restarts(
    broker: Broker, db_url: str, worker: Worker, tmp_path: Path
) -> None:
    other = "3074257BF7194E4000001A86"  # same item, serial 6790

    async def main() -> None:
        reader = SimulatedReader(read_interval_s=0.05)
        port = await reader.start()
        reader.place(SGTIN, 1)
        cfg = gateway_config(
            broker,
            tmp_path,
            rfid=[{"name": "door-1", "host": "127.0.0.1", "port": port, "timeout_s": 2}],
        )

        async def body() -> None:
            query = "SELECT count(*) FROM telemetry.tag_reads"
            assert await until(lambda: rows(db_url, query)[0][0] == 1)
            await reader.close()  # the reader reboots …
            restarted = SimulatedReader(port=port, read_interval_s=0.05)
            await restarted.start()
            restarted.place(other, 1)
            try:
                assert await until(lambda: rows(db_url, query)[0][0] == 2)
            finally:
                await restarted.close()

        await with_gateway(cfg, body)

    asyncio.run(main())
    assert rows(db_url, "SELECT serial FROM telemetry.tag_reads ORDER BY seq") == [
        ("6789",),
        ("6790",),
    ]


def test_barcode_source_reads_a_real_tty() -> None:
    """A pty pair stands in for a USB-CDC scanner: the source opens the tty by its path."""
    master, slave = os.openpty()
    tty.setraw(slave)
    got: list[ScanItem] = []

    def sink(kind: Kind, items: Sequence[TagItem | ScanItem]) -> None:
        assert kind is Kind.SCANS
        got.extend(i for i in items if isinstance(i, ScanItem))

    async def main() -> None:
        scanner = BarcodeScanner(name="usb-1", url=os.ttyname(slave))
        source = BarcodeSource(scanner, events=sink, clock=time.time)
        task = asyncio.create_task(source.run(lambda _: None))
        try:
            await asyncio.sleep(0.3)
            os.write(master, (HIBC + "\r").encode())  # CR only, as many scanners send
            os.write(master, (MA + "\r\n").encode())
            assert await until(lambda: len(got) == 2, 10, in_thread=False)
            assert source.status().ok
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    try:
        asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
    assert [(s.data, s.ok, s.scheme) for s in got] == [(HIBC, True, "hibc"), (MA, True, "ma")]
