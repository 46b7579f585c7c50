"""Modbus source: polls one device's register block and turns it into readings.

The register map is data (telemetry/profiles/modbus.yaml) and decoding is the pure
`telemetry.modbus_profiles.decode`; this module only does the I/O with pymodbus and
the retry policy. These devices have no clock, so a reading's time is the gateway
clock at the poll. A failing device is retried forever with capped exponential backoff
and never affects other sources. The transport is chosen by `client_for` from the
device config, so an RTU (serial) transport is one more branch there.
"""

from __future__ import annotations

import asyncio
import logging

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusException

from gateway.config import ModbusDevice
from gateway.errors import SourceError
from gateway.flow import Backoff
from gateway.sources.base import Clock, Health, Sink, millis
from telemetry.modbus_profiles import Profile, ProfileError, Table, decode
from telemetry.payloads import Reading, SourceState

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_S = 60.0


def client_for(device: ModbusDevice) -> ModbusBaseClient:
    """Make a pymodbus client for the device's transport; reconnecting is left to us."""
    if device.transport == "rtu" and device.serial_port is not None:
        return AsyncModbusSerialClient(
            device.serial_port,
            framer=FramerType.RTU,
            baudrate=device.baudrate,
            bytesize=device.bytesize,
            parity=device.parity,
            stopbits=device.stopbits,
            name=device.name,
            timeout=device.timeout_s,
            retries=device.retries,
            reconnect_delay=0,
        )
    if device.transport == "tcp" and device.host is not None:
        return AsyncModbusTcpClient(
            device.host,
            port=device.port,
            name=device.name,
            timeout=device.timeout_s,
            retries=device.retries,
            reconnect_delay=0,  # 0 turns pymodbus's own reconnect task off
        )
    raise SourceError(device.name, f"transport {device.transport!r} is not supported")


async def read_block(client: ModbusBaseClient, profile: Profile, device_id: int) -> list[int]:
    """Read the profile's register block (function 03 or 04) from one device."""
    if not client.connected and not await client.connect():
        raise ConnectionException("cannot connect")
    if profile.table is Table.HOLDING:
        response = await client.read_holding_registers(
            profile.first_address, count=profile.count, device_id=device_id
        )
    else:
        response = await client.read_input_registers(
            profile.first_address, count=profile.count, device_id=device_id
        )
    if response.isError():
        raise ModbusException(f"device answered with an exception response: {response}")
    return list(response.registers)


def to_readings(profile: Profile, words: list[int], *, sensor: str, t_ms: int) -> list[Reading]:
    """Decode a register block into one reading per register of the profile."""
    values = decode(profile, words)
    return [
        Reading(t=t_ms, sensor=sensor, qty=reg.qty, value=values[reg.qty], unit=reg.unit)
        for reg in profile.registers
    ]


class ModbusSource:
    """Polls one Modbus device every ``poll_interval_s``."""

    def __init__(self, device: ModbusDevice, profile: Profile, *, clock: Clock) -> None:
        self._device = device
        self._profile = profile
        self._clock = clock
        self._health = Health(device.name)
        self._client: ModbusBaseClient | None = None

    @property
    def name(self) -> str:
        """The device name from the config."""
        return self._device.name

    def status(self) -> SourceState:
        """Last successful poll and last error."""
        return self._health.snapshot()

    async def poll(self) -> list[Reading]:
        """Read the device once; raise `SourceError` if that fails."""
        device = self._device
        if self._client is None:
            self._client = client_for(device)
        t_ms = millis(self._clock)
        # pymodbus bounds each try; this bounds connect + all retries together
        limit = device.timeout_s * (device.retries + 2)
        try:
            words = await asyncio.wait_for(
                read_block(self._client, self._profile, device.address), limit
            )
            return to_readings(self._profile, words, sensor=device.sensor, t_ms=t_ms)
        except (ModbusException, OSError, TimeoutError, ProfileError) as err:
            self.close()
            tcp = f"{device.host}:{device.port}"
            link = device.serial_port if device.transport == "rtu" else tcp
            where = f"{link} unit {device.address}"
            raise SourceError(device.name, f"{where}: {str(err) or type(err).__name__}") from err

    async def run(self, sink: Sink) -> None:
        """Poll forever, delivering readings to ``sink``; back off while the device fails."""
        interval = self._device.poll_interval_s
        backoff = Backoff(initial=interval, cap=max(interval, MAX_RETRY_DELAY_S))
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                try:
                    readings = await self.poll()
                except SourceError as err:
                    self._health.failed(err.reason)
                    delay = backoff.next_delay()
                    log.warning("%s; retrying in %.1f s", err, delay)
                    await asyncio.sleep(delay)
                    continue
                if self._health.failures:
                    log.info("source %s: device answers again", self.name)
                backoff.reset()
                sink(readings)
                self._health.succeeded(readings[0].t)
                await asyncio.sleep(max(0.0, started + interval - loop.time()))
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection; the next poll opens a new one."""
        if self._client is not None:
            self._client.close()
            self._client = None
