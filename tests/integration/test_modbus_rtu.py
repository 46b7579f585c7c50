"""Modbus RTU over a serial line: the gateway's source reads a simulated XY-MD02 and a
Renke RS-WS-N01, each on its own pseudo-terminal pair made by socat, at the device's
factory serial settings (9600 and 4800 8N1).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.modbus_device import DeviceSpec, SimulatedDevice
from gateway.config import ModbusDevice
from gateway.sources.modbus import ModbusSource
from telemetry.modbus_profiles import builtin_profiles

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
