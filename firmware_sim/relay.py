"""A simulated Modbus relay module, the gateway's local alarm output, on a real pymodbus server.

It emulates a module from ``telemetry/profiles/relays.toml`` (the Waveshare Modbus
RTU Relay by default): its unit answers "write single coil" (function 05) on the
coils of its channels, and refuses other functions, as far as the gateway uses the
module. Tests read `channel` to see whether the alarm relay is energised. It is served
on an RS-485 line together with other units by `firmware_sim.bus.SimulatedBus`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.simulator import DataType, SimData, SimDevice

from firmware_sim.bus import SimulatedBus
from firmware_sim.errors import SimulatorError
from telemetry.modbus_profiles import RelayProfile, builtin_relay_profiles

WRITE_SINGLE_COIL = 5


class SimulatedRelay:
    """One relay module: its coils, and how many writes it accepted."""

    def __init__(
        self,
        profile: str = "waveshare-modbus-rtu-relay",
        *,
        unit: int | None = None,
        profiles: Mapping[str, RelayProfile] | None = None,
    ) -> None:
        known = builtin_relay_profiles() if profiles is None else profiles
        if profile not in known:
            raise SimulatorError(f"unknown relay profile {profile!r} (known: {sorted(known)})")
        self.profile = known[profile]
        self.unit = self.profile.default_address if unit is None else unit
        if not 1 <= self.unit <= 247:
            raise SimulatorError(f"relay unit {self.unit} is not 1..247")
        self._coils = dict.fromkeys(self.profile.channels.values(), False)
        self.writes = 0
        self.silent = False

    def channel(self, number: int) -> bool:
        """Whether relay ``number`` (from 1) is on."""
        return self._coils[self.profile.channels[number]]

    def bus_device(self) -> SimDevice:
        """Return the module as a pymodbus device (one register per coil: coil N is register N)."""
        block = SimData(address=0, values=[0] * (max(self._coils) + 1), datatype=DataType.BITS)
        return SimDevice(id=self.unit, simdata=[block], action=self._on_request)

    async def _on_request(  # noqa: PLR0913, PLR0917 - the signature pymodbus calls
        self,
        function_code: int,
        start_address: int,  # noqa: ARG002
        address: int,
        count: int,  # noqa: ARG002
        current_registers: list[int],  # noqa: ARG002
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Accept writes of a channel's coil; refuse anything else."""
        if self.silent:
            raise NoSuchIdException(str(self.unit))
        if function_code != WRITE_SINGLE_COIL:
            return ExcCodes.ILLEGAL_FUNCTION
        if address not in self._coils:
            return ExcCodes.ILLEGAL_ADDRESS
        if set_values is not None:  # pymodbus also calls once more, without values, to answer
            self._coils[address] = bool(set_values[0])
            self.writes += 1
        return None


async def serve_relay(
    host: str,
    port: int,
    *,
    stop: asyncio.Event,
    say: Callable[[str], object] = print,
    poll_s: float = 0.2,
) -> None:
    """Serve one relay module behind a Modbus TCP converter and report each channel change."""
    relay = SimulatedRelay()
    ready = asyncio.Event()
    bus = SimulatedBus.behind_converter(host, port, [relay])
    task = asyncio.create_task(bus.serve(stop=stop, ready=ready))
    await ready.wait()
    say(f"serving a {relay.profile.name} relay module on {host}:{port}, unit {relay.unit}")
    last = dict.fromkeys(relay.profile.channels, False)
    while not stop.is_set():
        for number in last:
            now_on = relay.channel(number)
            if now_on != last[number]:
                say(f"local alarm relay channel {number}: {'ON' if now_on else 'off'}")
                last[number] = now_on
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_s)
    await task
