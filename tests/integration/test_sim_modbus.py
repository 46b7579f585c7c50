"""The simulator against a real pymodbus client: right function codes, values, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from coldtrace.broker import free_port
from firmware_sim.errors import BindError, SimulatorError
from firmware_sim.modbus_device import (
    DeviceSpec,
    SimulatedDevice,
    fleet,
    run_devices,
    serve_devices,
)
from firmware_sim.thermal import CompressorFailure, FridgeParams
from telemetry.modbus_profiles import decode, parse_profiles

ILLEGAL_FUNCTION = 0x01
GATEWAY_NO_RESPONSE = 0x0B
FROZEN = 3600.0  # an update interval no test waits for: the model holds still
FREEZER = FridgeParams(initial_c=-20.5, thermostat_on_c=-18.0, thermostat_off_c=-22.0)


def arun(coro: Awaitable[Any], timeout: float = 10.0) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


@contextlib.asynccontextmanager
async def serving(device: SimulatedDevice) -> AsyncIterator[asyncio.Task[None]]:
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(device.serve(stop=stop, ready=ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # raises why it could not start
    try:
        yield task
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def client(port: int) -> AsyncIterator[AsyncModbusTcpClient]:
    c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    assert await c.connect()
    try:
        yield c
    finally:
        c.close()


def reader(c: AsyncModbusTcpClient, function_code: int) -> Callable[..., Awaitable[Any]]:
    return {3: c.read_holding_registers, 4: c.read_input_registers}[function_code]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


PROFILE_CASES = [
    # profile, function code it answers, the one it refuses, first register address
    ("renke-rs-ws-n01", 3, 4, 0x0000),
    ("xy-md02", 4, 3, 0x0001),
]


@pytest.mark.parametrize(("profile", "fc", "wrong_fc", "address"), PROFILE_CASES)
@pytest.mark.parametrize(
    "params", [FridgeParams(noise_temp_c=0.3), FREEZER], ids=["fridge", "freezer"]
)
def test_a_device_serves_its_model_state_on_its_function_code(
    profile, fc, wrong_fc, address, params
):
    spec = DeviceSpec("dev", profile, free_port(), params=params, seed=4, update_interval_s=FROZEN)
    device = SimulatedDevice(spec)
    if params is not FREEZER:
        device.advance(5 * 3600.0)  # somewhere into a day, door and compressor busy
    state = device.state

    async def scenario() -> tuple[Any, Any]:
        async with serving(device), client(spec.port) as c:
            good = await reader(c, fc)(address, count=2, device_id=1)
            bad = await reader(c, wrong_fc)(address, count=2, device_id=1)
            return good, bad

    good, bad = arun(scenario())
    assert not good.isError()
    values = decode(device.profile, good.registers)
    assert values["temperature"] == pytest.approx(state.measured_temp_c, abs=0.05 + 1e-9)
    assert values["humidity"] == pytest.approx(state.measured_humidity_pct, abs=0.05 + 1e-9)
    if params is FREEZER:
        assert values["temperature"] == -20.5  # a two's complement word went over the wire
    assert bad.isError()
    assert bad.exception_code == ILLEGAL_FUNCTION
    assert device.reads_served == 1  # the refused request is not counted
    assert device.last_served is not None
    assert device.last_served.values == values
    assert device.last_served.state == state


def test_served_values_follow_the_running_model():
    spec = DeviceSpec("dev", "xy-md02", free_port(), seed=2, speed=600.0, update_interval_s=0.02)
    device = SimulatedDevice(spec)

    async def scenario() -> list[tuple[dict[str, float], Any]]:
        seen = []
        async with serving(device), client(spec.port) as c:
            for _ in range(3):
                rr = await c.read_input_registers(1, count=2, device_id=1)
                assert device.last_served is not None
                seen.append((decode(device.profile, rr.registers), device.last_served.state))
                await asyncio.sleep(0.15)
        return seen

    seen = arun(scenario())
    times = [state.time_s for _, state in seen]
    assert times == sorted(times)
    assert times[-1] - times[0] >= 0.5 * 600.0 * 0.3  # two naps of 0.15 s at ~speed
    for values, state in seen:
        assert values["temperature"] == pytest.approx(state.measured_temp_c, abs=0.05 + 1e-9)
        assert values["humidity"] == pytest.approx(state.measured_humidity_pct, abs=0.05 + 1e-9)
    assert device.reads_served == 3


def test_a_compressor_failure_is_served_as_an_excursion():
    failure = CompressorFailure(at_s=3600.0)
    spec = DeviceSpec(
        "dev", "renke-rs-ws-n01", free_port(), failure=failure, speed=7200.0, update_interval_s=0.02
    )
    device = SimulatedDevice(spec)

    async def scenario() -> list[tuple[float, float]]:
        readings = []  # (model time, served temperature)
        async with serving(device), client(spec.port) as c:
            while not readings or readings[-1][1] <= 8.0:
                rr = await c.read_holding_registers(0, count=2, device_id=1)
                assert device.last_served is not None
                readings.append(
                    (
                        device.last_served.state.time_s,
                        decode(device.profile, rr.registers)["temperature"],
                    )
                )
                await asyncio.sleep(0.02)
        return readings

    readings = arun(scenario())
    before = [t for time_s, t in readings if time_s < failure.at_s]
    assert before
    assert max(before) <= 8.0
    excursion_at, excursion_temp = readings[-1]
    assert excursion_temp > 8.0
    assert excursion_at > failure.at_s


def test_stopping_frees_the_port_and_the_device_comes_back_there():
    spec = DeviceSpec("dev", "renke-rs-ws-n01", free_port(), update_interval_s=FROZEN)
    device = SimulatedDevice(spec)

    async def scenario() -> None:
        async with serving(device), client(spec.port) as c:
            assert not (await c.read_holding_registers(0, count=2, device_id=1)).isError()
            assert device.serving
        assert not device.serving
        assert not listening(spec.port)
        # The same device again (its model continues) and then a brand-new one.
        for again in (device, SimulatedDevice(spec)):
            async with serving(again), client(spec.port) as c:
                assert not (await c.read_holding_registers(0, count=2, device_id=1)).isError()
            assert not listening(spec.port)

    arun(scenario())
    assert device.reads_served == 2


def test_a_taken_port_raises_bind_error():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        device = SimulatedDevice(DeviceSpec("dev", "xy-md02", port))
        with pytest.raises(BindError) as info:
            arun(device.serve())
    assert info.value.port == port
    assert not device.serving


def test_another_unit_address_gets_the_gateway_no_response_exception():
    spec = DeviceSpec("dev", "renke-rs-ws-n01", free_port(), unit=17, update_interval_s=FROZEN)

    async def scenario() -> tuple[Any, Any]:
        async with serving(SimulatedDevice(spec)), client(spec.port) as c:
            mine = await c.read_holding_registers(0, count=2, device_id=17)
            other = await c.read_holding_registers(0, count=2, device_id=1)
            return mine, other

    mine, other = arun(scenario())
    assert not mine.isError()
    assert other.isError()
    assert other.exception_code == GATEWAY_NO_RESPONSE


def test_several_devices_run_side_by_side_with_their_own_datastores():
    template = DeviceSpec("fridge", "renke-rs-ws-n01", 0, update_interval_s=FROZEN)
    specs = fleet(template, [free_port(), free_port(), free_port()], profiles=["renke-rs-ws-n01"])
    devices = [SimulatedDevice(spec) for spec in specs]
    devices[1].advance(7 * 3600.0)
    devices[2] = SimulatedDevice(dataclasses.replace(specs[2], params=FREEZER))

    async def scenario() -> list[dict[str, float]]:
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve_devices(devices, stop=stop, ready=ready))
        await ready.wait()
        values = []
        for device in devices:
            async with client(device.spec.port) as c:
                rr = await c.read_holding_registers(0, count=2, device_id=1)
                values.append(decode(device.profile, rr.registers))
        async with client(devices[0].spec.port) as c:
            await c.read_holding_registers(0, count=2, device_id=1)
        stop.set()
        await task
        return values

    values = arun(scenario())
    assert [d.spec.name for d in devices] == ["fridge-01", "fridge-02", "fridge-03"]
    for device, served in zip(devices, values, strict=True):
        assert served["temperature"] == pytest.approx(device.state.measured_temp_c, abs=0.05 + 1e-9)
    assert len({v["temperature"] for v in values}) == 3
    assert [d.reads_served for d in devices] == [2, 1, 1]
    assert not any(listening(d.spec.port) for d in devices)


def test_run_devices_returns_its_devices_after_stop():
    specs = fleet(
        DeviceSpec("cab", "xy-md02", 0, update_interval_s=0.02, speed=60.0),
        [free_port(), free_port()],
    )

    async def scenario() -> list[SimulatedDevice]:
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run_devices(specs, stop=stop, ready=ready))
        await ready.wait()
        for spec, fc, address in zip(specs, (3, 4), (0, 1), strict=True):
            async with client(spec.port) as c:
                assert not (await reader(c, fc)(address, count=2, device_id=1)).isError()
        await asyncio.sleep(0.1)
        stop.set()
        return await task

    devices = arun(scenario())
    assert [(d.spec.name, d.profile.name) for d in devices] == [
        ("cab-01", "renke-rs-ws-n01"),
        ("cab-02", "xy-md02"),
    ]
    assert [d.reads_served for d in devices] == [1, 1]
    assert all(d.state.time_s > 0 for d in devices)


def test_run_devices_stops_all_when_one_cannot_bind():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        free = free_port()
        specs = fleet(DeviceSpec("cab", "xy-md02", 0), [free, taken])
        with pytest.raises(BindError):
            arun(run_devices(specs))
    assert not listening(free)


def test_a_model_value_the_register_map_cannot_hold_stops_the_device_loudly():
    # Milli-degrees in an int16 end at 32.767 °C; a failed fridge in a 45 °C room gets there.
    milli = parse_profiles(
        "[milli]\n"
        'table = "holding"\n'
        'serial = {baudrate = 9600, bytesize = 8, parity = "N", stopbits = 1}\n'
        "registers = ["
        '{address = 0, qty = "temperature", unit = "Cel", scale = 0.001, signed = true},'
        ' {address = 1, qty = "humidity", unit = "%", scale = 0.1, signed = false}]\n'
    )
    spec = DeviceSpec(
        "hot",
        "milli",
        free_port(),
        params=FridgeParams(ambient_c=45.0),
        failure=CompressorFailure(at_s=0.0),
        speed=200_000.0,
        update_interval_s=0.02,
    )
    device = SimulatedDevice(spec, profiles=milli)
    with pytest.raises(SimulatorError, match="does not fit"):
        arun(device.serve())
    assert device.state.air_temp_c > 32.0
    assert not device.serving
    assert not listening(spec.port)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DeviceSpec("x", "xy-md02", 70_000),
        lambda: DeviceSpec("x", "xy-md02", 1502, unit=0),
        lambda: DeviceSpec("x", "xy-md02", 1502, speed=0.0),
        lambda: SimulatedDevice(DeviceSpec("x", "no-such-device", 1502)),
        lambda: SimulatedDevice(
            DeviceSpec("x", "xy-md02", 1502, params=FridgeParams(initial_c=4000.0))
        ),
    ],
    ids=["port", "unit", "speed", "profile", "unencodable"],
)
def test_a_bad_spec_is_refused_with_the_package_error(make):
    with pytest.raises(SimulatorError):
        make()
