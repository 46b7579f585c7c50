"""A simulated RS-485 bus: several Modbus RTU units answering on one serial line.

A real site wires a handful of transmitters and a relay module to one RS-485 pair;
the gateway must address them one at a time over one serial port. `SimulatedBus`
serves any mix of `SimulatedDevice` (sensors) and `SimulatedRelay` (alarm outputs)
with one pymodbus `ModbusSerialServer`, each unit at its own address. Requests for
an address nobody has, or for a unit set ``silent``, get no answer at all, as on a
real bus (no converter answers "gateway target failed" for them). The serial settings
are the bus's, not each profile's factory default: a site sets every unit to the
same ones, and so does this. `SimulatedBus.behind_converter` serves the same units
over Modbus TCP instead, as an RTU-to-TCP converter in front of the bus does (for
demos, which have no serial line).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from pymodbus import FramerType
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import SimDevice

from firmware_sim.errors import SimulatorError
from telemetry.modbus_profiles import SerialDefaults


class BusUnit(Protocol):
    """A simulated unit that can sit on a bus."""

    unit: int

    def bus_device(self) -> SimDevice:
        """The unit's pymodbus device, answering at ``unit``."""
        ...


class SimulatedBus:
    """Serves ``units`` on the serial line ``port`` (or over TCP) until stopped."""

    def __init__(
        self,
        port: str | None,
        serial: SerialDefaults,
        units: Sequence[BusUnit],
        *,
        tcp: tuple[str, int] | None = None,
    ) -> None:
        addresses = [u.unit for u in units]
        if not units or len(set(addresses)) != len(addresses):
            raise SimulatorError(f"a bus needs units with distinct addresses, got {addresses}")
        if (port is None) == (tcp is None):
            raise SimulatorError("a bus is served on a serial port or over TCP, not both")
        self.port = port
        self.serial = serial
        self.units = list(units)
        self.tcp = tcp

    @classmethod
    def behind_converter(cls, host: str, port: int, units: Sequence[BusUnit]) -> SimulatedBus:
        """The units served over Modbus TCP at ``host:port``, as an RTU-to-TCP converter does."""
        line = SerialDefaults(baudrate=9600, bytesize=8, parity="N", stopbits=1)
        return cls(None, line, units, tcp=(host, port))

    def _server(self) -> ModbusBaseServer:
        devices = [u.bus_device() for u in self.units]
        if self.port is None:
            address = self.tcp or ("127.0.0.1", 502)
            return ModbusTcpServer(devices, address=address, ignore_missing_devices=True)
        s = self.serial
        return ModbusSerialServer(
            devices,
            framer=FramerType.RTU,
            port=self.port,
            baudrate=s.baudrate,
            bytesize=s.bytesize,
            parity=s.parity,
            stopbits=s.stopbits,
            ignore_missing_devices=True,
        )

    async def serve(
        self, *, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None
    ) -> None:
        """Answer requests until ``stop`` is set (or the task is cancelled)."""
        server = self._server()
        try:
            await server.serve_forever(background=True)
            if ready is not None:
                ready.set()
            await (asyncio.Event() if stop is None else stop).wait()
        finally:
            await server.shutdown()  # type: ignore[no-untyped-call]
