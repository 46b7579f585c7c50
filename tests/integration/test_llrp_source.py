"""LLRP end to end: simulated LLRP reader → gateway LLRP source (sllurp) → MQTT → ingest → DB.

The simulator speaks LLRP on a real TCP socket; the gateway runs for real
(`run_gateway`) with a private Mosquitto and the ingest worker of
``test_edge_sources``. The reader's clock runs an hour behind the gateway's, so the
stored times show that the tag's FirstSeenTimestampUTC is used, not the gateway clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from pathlib import Path

import pytest

from coldtrace.broker import Broker
from firmware_sim.llrp_reader import SimulatedLlrpReader
from gateway.config import RfidReader
from gateway.sources.llrp import LlrpSource
from ingest.worker import Worker
from tests.integration import test_edge_sources as edge

pytestmark = pytest.mark.timeout(90)
worker = edge.worker  # the ingest worker fixture

SGTIN = "3074257BF7194E4000001A85"  # GS1 TDS example: sgtin 0614141.812345.6789
SSCC = "3174257BF4499602D2000000"  # GS1 TDS example: sscc 0614141.1234567890
BEHIND_S = 3600.0


def reader_clock() -> float:
    return time.time() - BEHIND_S


def sllurp_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sllurp-reader")]


def test_llrp_reads_are_collapsed_decoded_and_stored(
    broker: Broker, db_url: str, worker: Worker, tmp_path: Path
) -> None:
    reader = SimulatedLlrpReader(read_interval_s=0.05, clock=reader_clock)
    count = "SELECT count(*) FROM telemetry.tag_reads"

    async def main() -> None:
        port = await reader.start()
        reader.place(SGTIN, 1, rssi=-50)
        reader.place(SSCC, 2, rssi=-60)
        reader.place(SGTIN, 2, rssi=-70)  # the same tag seen by a second antenna
        rfid = {"name": "door-1", "protocol": "llrp", "host": "127.0.0.1", "port": port}
        cfg = edge.gateway_config(broker, tmp_path, rfid=[{**rfid, "collapse_window_s": 60}])

        async def body() -> None:
            assert await edge.until(lambda: edge.rows(db_url, count)[0][0] >= 3)
            await asyncio.sleep(1.0)  # the reader keeps reporting; nothing new may be stored

        try:
            await edge.with_gateway(cfg, body)
        finally:
            await reader.close()

    started = time.time()
    asyncio.run(main())
    assert reader.sent > 20  # the reader really repeated itself
    assert reader.received[:3] == [1, 2, 64]  # capabilities, config, events: sllurp's session
    got = edge.rows(
        db_url,
        "SELECT reader, antenna, epc, scheme, gtin, serial, sscc, rssi, time "
        "FROM telemetry.tag_reads ORDER BY epc, antenna",
    )
    assert [r[:7] for r in got] == [
        ("door-1", 1, SGTIN, "sgtin-96", "80614141123458", "6789", None),
        ("door-1", 2, SGTIN, "sgtin-96", "80614141123458", "6789", None),
        ("door-1", 2, SSCC, "sscc-96", None, None, "106141412345678908"),
    ]
    assert all(-74 <= r[7] <= -46 for r in got)
    device_start = dt.datetime.fromtimestamp(started - BEHIND_S, dt.UTC)
    assert all(device_start <= r[8] <= device_start + dt.timedelta(seconds=60) for r in got)
    deadline = time.monotonic() + 5
    while sllurp_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sllurp_threads() == []  # the gateway's stop ended sllurp's socket thread


def test_llrp_source_reconnects_after_the_reader_restarts(
    broker: Broker, db_url: str, worker: Worker, tmp_path: Path
) -> None:
    other = "3074257BF7194E4000001A86"  # same item, serial 6790
    count = "SELECT count(*) FROM telemetry.tag_reads"

    async def main() -> None:
        reader = SimulatedLlrpReader(read_interval_s=0.05)
        port = await reader.start()
        reader.place(SGTIN, 1)
        rfid = {"name": "door-1", "protocol": "llrp", "host": "127.0.0.1", "port": port}
        cfg = edge.gateway_config(broker, tmp_path, rfid=[{**rfid, "timeout_s": 2}])

        async def body() -> None:
            assert await edge.until(lambda: edge.rows(db_url, count)[0][0] == 1)
            await reader.close()  # the reader is switched off …
            await asyncio.sleep(0.5)
            restarted = SimulatedLlrpReader(port=port, read_interval_s=0.05)
            await restarted.start()  # … and on again, with another tag in its field
            restarted.place(other, 1)
            try:
                assert await edge.until(lambda: edge.rows(db_url, count)[0][0] == 2)
                assert restarted.sessions == 1
                assert restarted.inventorying()  # sllurp set the new reader up from scratch
            finally:
                await restarted.close()

        await edge.with_gateway(cfg, body)

    asyncio.run(main())
    assert edge.rows(db_url, "SELECT serial FROM telemetry.tag_reads ORDER BY seq") == [
        ("6789",),
        ("6790",),
    ]


def test_a_silent_reader_is_dropped_and_reconnected() -> None:
    """A reader that accepts TCP but never answers: the source gives up after timeout_s."""
    attempts = 0

    async def mute(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(10)
        w.close()

    async def main() -> LlrpSource:
        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        device = RfidReader(
            name="mute", protocol="llrp", host="127.0.0.1", port=port, timeout_s=0.5
        )
        source = LlrpSource(device, events=lambda *_: None, clock=time.time)
        task = asyncio.create_task(source.run(lambda _: None))
        try:
            assert await edge.until(lambda: attempts >= 2, 10, in_thread=False)
        finally:
            task.cancel()
            server.close()
        return source

    state = asyncio.run(main()).status()
    assert not state.ok
    assert "no inventory started for 0.5 s" in (state.error or "")
