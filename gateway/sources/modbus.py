"""Modbus source: polls one device's register block and turns it into readings.

The register map is data (telemetry/profiles/modbus.toml) and decoding is the pure
`telemetry.modbus_profiles.decode`; this module only does the I/O with pymodbus and
the retry policy. These devices have no clock, so a reading's time is the gateway
clock at the poll. A failing device is retried forever with capped exponential backoff
and never affects other sources.

Units on one RS-485 bus (the same serial port) or behind one RTU-to-TCP converter
(the same host and port) share one `ModbusLink`: one pymodbus client, used by one
request at a time, as a Modbus RTU master must. A unit that does not answer holds
the bus for at most its own timeout (``timeout_s × (retries + 2)``), then backs off
like any failing device, so the other units keep being polled. The local alarm
outputs (`gateway.alarm_output`) write their relay coils through the same links.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusException

from gateway.config import ModbusDevice, ModbusEndpoint
from gateway.errors import SourceError
from gateway.flow import Backoff
from gateway.sources.base import Clock, Health, Sink, millis
from telemetry.modbus_profiles import Profile, ProfileError, Table, decode
from telemetry.payloads import Reading, SourceState

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_S = 60.0
T = TypeVar("T")


class DeviceRefused(ModbusException):
    """The unit answered with a Modbus exception response (the link itself is fine)."""


def client_for(endpoint: ModbusEndpoint) -> ModbusBaseClient:
    """Make a pymodbus client for the endpoint's transport; reconnecting is left to us."""
    if endpoint.transport == "rtu" and endpoint.serial_port is not None:
        return AsyncModbusSerialClient(
            endpoint.serial_port,
            framer=FramerType.RTU,
            baudrate=endpoint.baudrate,
            bytesize=endpoint.bytesize,
            parity=endpoint.parity,
            stopbits=endpoint.stopbits,
            name=endpoint.link_key,
            timeout=endpoint.timeout_s,
            retries=endpoint.retries,
            reconnect_delay=0,
        )
    if endpoint.transport == "tcp" and endpoint.host is not None:
        return AsyncModbusTcpClient(
            endpoint.host,
            port=endpoint.port,
            name=endpoint.link_key,
            timeout=endpoint.timeout_s,
            retries=endpoint.retries,
            reconnect_delay=0,  # 0 turns pymodbus's own reconnect task off
        )
    raise SourceError(endpoint.link_key, f"transport {endpoint.transport!r} is not supported")


class ModbusLink:
    """One pymodbus client for a serial port or TCP endpoint, used by one request at a time.

    The client's per-try timeout and retries are the smallest of the units that share
    it, so a fast unit is never made to wait for a slow unit's generous settings.
    """

    def __init__(self, units: Iterable[ModbusEndpoint]) -> None:
        units = list(units)
        if not units or len({u.link_key for u in units}) != 1:
            raise ValueError("a link needs one or more units with the same link_key")
        self.key = units[0].link_key
        self._settings = units[0].model_copy(
            update={
                "timeout_s": min(u.timeout_s for u in units),
                "retries": min(u.retries for u in units),
            }
        )
        self._client: ModbusBaseClient | None = None
        self._turn = asyncio.Lock()

    async def call(
        self, unit: ModbusEndpoint, request: Callable[[ModbusBaseClient], Awaitable[T]]
    ) -> T:
        """Run ``request`` on the shared client when it is this unit's turn.

        Connects if needed, bounds connect and all retries by the unit's timeout, and
        drops the connection after any failure but an exception response.
        """
        async with self._turn:
            if self._client is None:
                self._client = client_for(self._settings)
            client = self._client
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for runs the call as a
                # task of its own, and when it is cancelled (the gateway stopping) just as
                # that task fails, the failure is never retrieved and asyncio logs it
                # with a traceback ("Task exception was never retrieved").
                async with asyncio.timeout(unit.timeout_s * (unit.retries + 2)):
                    return await _connected_call(client, request)
            except DeviceRefused:
                raise
            except (ModbusException, OSError, TimeoutError):
                self.close()
                raise

    def close(self) -> None:
        """Drop the connection; the next call opens a new one."""
        if self._client is not None:
            self._client.close()
            self._client = None


async def _connected_call(
    client: ModbusBaseClient, request: Callable[[ModbusBaseClient], Awaitable[T]]
) -> T:
    if not client.connected and not await client.connect():
        raise ConnectionException("cannot connect")
    return await request(client)


def build_links(units: Iterable[ModbusEndpoint]) -> dict[str, ModbusLink]:
    """One link per serial port or TCP endpoint, shared by every unit on it."""
    by_key: dict[str, list[ModbusEndpoint]] = {}
    for unit in units:
        by_key.setdefault(unit.link_key, []).append(unit)
    return {key: ModbusLink(group) for key, group in by_key.items()}


async def read_block(client: ModbusBaseClient, profile: Profile, device_id: int) -> list[int]:
    """Read the profile's register block (function 03 or 04) from one device."""
    if profile.table is Table.HOLDING:
        response = await client.read_holding_registers(
            profile.first_address, count=profile.count, device_id=device_id
        )
    else:
        response = await client.read_input_registers(
            profile.first_address, count=profile.count, device_id=device_id
        )
    if response.isError():
        raise DeviceRefused(f"device answered with an exception response: {response}")
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

    def __init__(
        self,
        device: ModbusDevice,
        profile: Profile,
        *,
        clock: Clock,
        link: ModbusLink | None = None,
    ) -> None:
        self._device = device
        self._profile = profile
        self._clock = clock
        self._health = Health(device.name)
        self._own_link = link is None  # a shared link is closed by its owner (the app)
        self._link = link if link is not None else ModbusLink([device])

    @property
    def name(self) -> str:
        """The device name from the config."""
        return self._device.name

    def status(self) -> SourceState:
        """Last successful poll and last error."""
        return self._health.snapshot()

    async def poll(self) -> list[Reading]:
        """Read the device once; raise `SourceError` if that fails."""
        device, profile = self._device, self._profile
        try:
            words = await self._link.call(
                device, lambda client: read_block(client, profile, device.address)
            )
            # the time of the answer: on a shared bus the poll may have waited its turn
            t_ms = millis(self._clock)
            return to_readings(profile, words, sensor=device.sensor, t_ms=t_ms)
        except (ModbusException, OSError, TimeoutError, ProfileError) as err:
            reason = f"{device.link_label}: {str(err) or type(err).__name__}"
            raise SourceError(device.name, reason) from err

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
            if self._own_link:
                self.close()

    def close(self) -> None:
        """Drop the connection (also for the other units of a shared link); polls reopen it."""
        self._link.close()
