"""Modbus RTU over a serial line: the gateway's source reads a simulated XY-MD02 and a
Renke RS-WS-N01, each on its own pseudo-terminal pair made by socat, at the device's
factory serial settings (9600 and 4800 8N1).
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.bus import SimulatedBus
from firmware_sim.modbus_device import DeviceSpec, SimulatedDevice
from gateway.app import build_sources
from gateway.config import GatewayConfig, ModbusDevice
from gateway.sources.modbus import ModbusSource, build_links
from telemetry.modbus_profiles import SerialDefaults, builtin_profiles
from telemetry.payloads import Reading, SourceState

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")


@pytest.fixture
def line(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals: (device end, gateway end)."""
    dev, gw = tmp_path / "device", tmp_path / "gateway"
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


@pytest.mark.parametrize("profile", ["xy-md02", "renke-rs-ws-n01"])
def test_rtu_source_reads_the_simulated_device(line: tuple[str, str], profile: str) -> None:
    dev_port, gw_port = line
    spec = DeviceSpec(name="fridge-rtu", profile=profile, port=0, serial_port=dev_port, seed=3)
    device = SimulatedDevice(spec)
    config = ModbusDevice.model_validate(
        {
            "name": "fridge-rtu",
            "profile": profile,
            "transport": "rtu",
            "serial_port": gw_port,
            "timeout_s": 2,
            "retries": 1,
        },
        context={"profiles": builtin_profiles()},
    )
    serial = builtin_profiles()[profile].serial
    assert (config.baudrate, config.parity, config.stopbits) == (
        serial.baudrate,
        serial.parity,
        serial.stopbits,
    )

    async def scenario() -> list[list[tuple[str, float]]]:
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(device.serve(stop=stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 5)
        source = ModbusSource(config, builtin_profiles()[profile], clock=time.time)
        polls = []
        try:
            for _ in range(2):
                readings = await source.poll()
                polls.append(sorted((r.qty, r.value) for r in readings))
        finally:
            source.close()
            stop.set()
            await task
        return polls

    polls = asyncio.run(scenario())
    served = device.last_served
    assert served is not None
    assert device.reads_served == 2
    expected = sorted((q, round(v, 1)) for q, v in served.values.items())
    assert polls[-1] == expected
    assert {q for q, _ in polls[0]} == {"temperature", "humidity"}


def test_rtu_device_needs_a_serial_port() -> None:
    with pytest.raises(ValueError, match="needs 'serial_port'"):
        ModbusDevice.model_validate(
            {"name": "x", "profile": "xy-md02", "transport": "rtu"},
            context={"profiles": builtin_profiles()},
        )


# --- several units on one RS-485 bus ----------------------------------------------------

BUS_SERIAL = SerialDefaults(baudrate=9600, bytesize=8, parity="N", stopbits=1)


def bus_config(
    gw_port: str, outbox: Path, units: list[dict[str, Any]], **extra: Any
) -> GatewayConfig:
    """A gateway whose Modbus units all sit on ``gw_port`` at 9600 8N1."""
    common = {"transport": "rtu", "serial_port": gw_port, "baudrate": 9600, "retries": 0}
    return GatewayConfig.model_validate(
        {
            "gateway": {"id": "gw-bus", "site": "plant-1"},
            "mqtt": {"host": "127.0.0.1", "port": 1, "reconnect_max_s": 1},
            "outbox": {"path": str(outbox)},
            "modbus": [common | u for u in units],
            **extra,
        },
        context={"profiles": builtin_profiles()},
    )


def test_units_on_one_bus_share_a_client_and_a_silent_one_does_not_stall_the_others(
    line: tuple[str, str], tmp_path: Path
) -> None:
    dev_port, gw_port = line
    xy = SimulatedDevice(DeviceSpec(name="xy", profile="xy-md02", port=0, unit=1))
    renke = SimulatedDevice(DeviceSpec(name="renke", profile="renke-rs-ws-n01", port=0, unit=2))
    gone = SimulatedDevice(DeviceSpec(name="gone", profile="renke-rs-ws-n01", port=0, unit=3))
    xy.hold({"temperature": 4.5, "humidity": 41.0})
    renke.hold({"temperature": -18.5, "humidity": 30.0})
    gone.silent = True  # configured at the gateway, but cut off the bus
    poll = {"poll_interval_s": 0.2, "timeout_s": 0.3}
    cfg = bus_config(
        gw_port,
        tmp_path / "outbox.sqlite",
        [
            {"name": "xy", "profile": "xy-md02", "address": 1} | poll,
            {"name": "renke", "profile": "renke-rs-ws-n01", "address": 2} | poll,
            {"name": "gone", "profile": "renke-rs-ws-n01", "address": 3} | poll,
        ],
    )
    links = build_links(cfg.modbus)
    assert list(links) == [f"rtu:{gw_port}"]  # one client for the port
    got: list[tuple[float, Reading]] = []

    def sink(readings: Sequence[Reading]) -> None:
        got.extend((time.monotonic(), r) for r in readings)

    async def scenario() -> dict[str, SourceState]:
        bus = SimulatedBus(dev_port, BUS_SERIAL, [xy, renke, gone])
        stop, ready = asyncio.Event(), asyncio.Event()
        served = asyncio.create_task(bus.serve(stop=stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 5)
        sources = build_sources(cfg, clock=time.time, links=links)
        tasks = [asyncio.create_task(s.run(sink)) for s in sources]
        await asyncio.sleep(4)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stop.set()
        await served
        return {s.name: s.status() for s in sources}

    status = asyncio.run(scenario())
    by_sensor: dict[str, list[tuple[float, Reading]]] = {}
    for at, reading in got:
        by_sensor.setdefault(reading.sensor, []).append((at, reading))
    assert set(by_sensor) == {"xy", "renke"}
    assert {(r.qty, r.value) for _, r in by_sensor["xy"]} == {
        ("temperature", 4.5),
        ("humidity", 41.0),
    }
    assert {(r.qty, r.value) for _, r in by_sensor["renke"]} == {
        ("temperature", -18.5),
        ("humidity", 30.0),
    }
    # every answered poll was one reading per register; each unit answered its own polls
    assert len(by_sensor["xy"]) == 2 * xy.reads_served
    assert len(by_sensor["renke"]) == 2 * renke.reads_served
    assert gone.reads_served == 0
    for sensor in ("xy", "renke"):
        assert status[sensor].ok
        assert status[sensor].error is None
    assert not status["gone"].ok
    assert f"{gw_port} unit 3" in (status["gone"].error or "")
    # the silent unit holds the bus for at most its own timeout (0.3 s x 2): the others
    # keep their 0.2 s rhythm, with gaps well below a second
    for sensor in ("xy", "renke"):
        times = sorted({at for at, _ in by_sensor[sensor]})
        assert len(times) >= 8, f"{sensor} polled only {len(times)} times in 4 s"
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) < 0.2 + 0.6 + 0.3, f"{sensor} stalled for {max(gaps):.2f} s"
