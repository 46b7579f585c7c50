"""A simulated RS-485 bus: several Modbus RTU units answering on one serial line.

A real site wires a handful of transmitters and a relay module to one RS-485 pair;
the gateway must address them one at a time over one serial port. `SimulatedBus`
serves any mix of `SimulatedDevice` (sensors) and `SimulatedRelay` (alarm outputs)
with one pymodbus `ModbusSerialServer`, each unit at its own address. Requests for
an address nobody has, or for a unit set ``silent``, get no answer at all, as on a
real bus (no converter answers "gateway target failed" for them). The serial settings
are the bus's, not each profile's factory default: a site sets every unit to the
same ones, and so does this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer
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
    """Serves ``units`` on the serial line ``port`` until stopped."""

    def __init__(self, port: str, serial: SerialDefaults, units: Sequence[BusUnit]) -> None:
        addresses = [u.unit for u in units]
        if not units or len(set(addresses)) != len(addresses):
            raise SimulatorError(f"a bus needs units with distinct addresses, got {addresses}")
        self.port = port
        self.serial = serial
        self.units = list(units)

    async def serve(
        self, *, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None
    ) -> None:
        """Answer requests until ``stop`` is set (or the task is cancelled)."""
        s = self.serial
        server = ModbusSerialServer(
            [u.bus_device() for u in self.units],
            framer=FramerType.RTU,
            port=self.port,
            baudrate=s.baudrate,
            bytesize=s.bytesize,
            parity=s.parity,
            stopbits=s.stopbits,
            ignore_missing_devices=True,
        )
        try:
            await server.serve_forever(background=True)
            if ready is not None:
                ready.set()
            await (asyncio.Event() if stop is None else stop).wait()
        finally:
            await server.shutdown()  # type: ignore[no-untyped-call]
