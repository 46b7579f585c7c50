"""A simulated Modbus temperature/humidity transmitter, served by a real pymodbus server.

Demos and integration tests need devices that a gateway polls exactly as it polls the
real ones: same function code, unit address, register addresses and scaling. Each
`SimulatedDevice` owns one `FridgeModel` and one register image built with the
profile's `encode`; a background task advances the model every ``update_interval_s``
real seconds by ``update_interval_s * speed`` model seconds and refreshes the image.

pymodbus 3.16 serves every datastore through its `SimDevice` runtime. The updating
example's pattern (``context.async_setValues`` on a `ModbusServerContext`) no longer
reaches that runtime there (it returns DEVICE_BUSY and the served values never
change), so the device hooks the runtime's per-request ``action`` instead: each read
is answered from the latest register image, counted, and recorded. That hook also
makes the device answer only its profile's read function, as the real one does.

The device is transport-agnostic: `SimulatedDevice.sim_devices` builds a fresh pymodbus
datastore for any server; `serve` picks `ModbusTcpServer`, or `ModbusSerialServer` (RTU at
the profile's factory serial settings) when the spec names a ``serial_port``. Several
devices share one RS-485 line through `firmware_sim.bus.SimulatedBus`, which serves
each one's `bus_device`. For tests and demos a device can `hold` fixed values (a
probe in a warm spot) and go `silent` (unplugged from the bus: no answer at all).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from firmware_sim.errors import BindError, SimulatorError
from firmware_sim.thermal import CompressorFailure, FridgeModel, FridgeParams, FridgeState
from telemetry.modbus_profiles import (
    Profile,
    ProfileError,
    Table,
    builtin_profiles,
    decode,
    encode,
)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """Everything needed to run one simulated device on a TCP port or a serial line (RTU)."""

    name: str
    profile: str  # a profile name, e.g. "renke-rs-ws-n01"
    port: int
    host: str = "127.0.0.1"
    unit: int | None = None  # Modbus unit address; None means the profile's default
    params: FridgeParams = field(default_factory=FridgeParams)
    failure: CompressorFailure | None = None
    seed: int = 0
    speed: float = 1.0  # model seconds per real second
    update_interval_s: float = 1.0  # real seconds between model updates
    serial_port: str | None = None  # serve Modbus RTU on this tty (profile's serial settings)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 0xFFFF:
            raise SimulatorError(f"device {self.name}: port {self.port} out of range")
        if self.unit is not None and not 1 <= self.unit <= 247:
            raise SimulatorError(f"device {self.name}: unit {self.unit} is not 1..247")
        if self.speed <= 0 or self.update_interval_s <= 0:
            raise SimulatorError(f"device {self.name}: speed and update interval must be > 0")


@dataclass(frozen=True, slots=True)
class ServedReading:
    """The register block a read was answered from, and the model state it came from."""

    state: FridgeState
    words: tuple[int, ...]
    values: dict[str, float]


class SimulatedDevice:
    """One fridge with its sensor, served over Modbus; `serve` may be run again after it ends."""

    def __init__(self, spec: DeviceSpec, *, profiles: Mapping[str, Profile] | None = None) -> None:
        known = builtin_profiles() if profiles is None else profiles
        if spec.profile not in known:
            raise SimulatorError(
                f"device {spec.name}: unknown profile {spec.profile!r} (known: {sorted(known)})"
            )
        self.spec = spec
        self.profile = known[spec.profile]
        self.unit = self.profile.default_address if spec.unit is None else spec.unit
        self.read_function = 3 if self.profile.table is Table.HOLDING else 4
        self._model = FridgeModel(spec.params, spec.seed, failure=spec.failure)
        self._words = self._encode(self._model.state)
        self._reads_served = 0
        self._last_served: ServedReading | None = None
        self._serving = False
        self._held: dict[str, float] | None = None
        self.silent = False  # True: ignore every request, as a unit cut off the bus does

    @property
    def state(self) -> FridgeState:
        """The model state the register image currently holds."""
        return self._model.state

    @property
    def words(self) -> tuple[int, ...]:
        """The register block a read would be answered with now."""
        return self._words

    @property
    def reads_served(self) -> int:
        """How many read requests this device has answered (over all its runs)."""
        return self._reads_served

    @property
    def last_served(self) -> ServedReading | None:
        """What the last answered read was served from; None before the first read."""
        return self._last_served

    @property
    def serving(self) -> bool:
        """Whether `serve` is running: from just before it listens until it has closed."""
        return self._serving

    def advance(self, model_seconds: float | None = None) -> FridgeState:
        """Advance the model (by one update's worth by default) and refresh the registers."""
        dt = (
            self.spec.update_interval_s * self.spec.speed
            if model_seconds is None
            else model_seconds
        )
        state = self._model.step(dt)
        if self._held is None:
            self._words = self._encode(state)
        return state

    def hold(self, values: Mapping[str, float] | None) -> None:
        """Serve these fixed values (quantity -> value) from now on; None returns to the model."""
        if values is None:
            self._held = None
            self._words = self._encode(self._model.state)
            return
        try:
            self._words = tuple(encode(self.profile, dict(values)))
        except ProfileError as err:
            raise SimulatorError(f"device {self.spec.name}: {err}") from err
        self._held = dict(values)

    def bus_device(self) -> SimDevice:
        """Return this unit alone, for a bus shared with other units (no catch-all unit)."""
        return self.sim_devices()[0]

    def _encode(self, state: FridgeState) -> tuple[int, ...]:
        try:
            return tuple(encode(self.profile, state.readings()))
        except (ProfileError, KeyError) as err:
            raise SimulatorError(f"device {self.spec.name}: {err}") from err

    def sim_devices(self) -> list[SimDevice]:
        """Build a fresh pymodbus datastore for this device; every server gets its own.

        Besides the device itself it holds a catch-all for every other unit address,
        answering exception 0x0B as an RTU-to-TCP converter does for a silent slave.
        """
        block = SimData(
            address=self.profile.first_address,
            values=list(self._words),
            datatype=DataType.REGISTERS,
        )
        return [
            SimDevice(id=self.unit, simdata=[block], action=self._on_request),
            SimDevice(id=0, simdata=[dataclasses.replace(block)], action=_no_such_unit),
        ]

    async def _on_request(  # noqa: PLR0913, PLR0917 - the signature pymodbus calls
        self,
        function_code: int,
        start_address: int,
        address: int,  # noqa: ARG002
        count: int,  # noqa: ARG002
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Answer reads of the profile's table from the latest image; refuse anything else."""
        if self.silent:
            raise NoSuchIdException(str(self.unit))  # the server then sends nothing
        if set_values is not None or function_code != self.read_function:
            return ExcCodes.ILLEGAL_FUNCTION
        offset = self.profile.first_address - start_address
        current_registers[offset : offset + len(self._words)] = self._words
        self._reads_served += 1
        self._last_served = ServedReading(
            state=self._model.state,
            words=self._words,
            values=decode(self.profile, list(self._words)),
        )
        return None

    async def _update_forever(self) -> None:
        while True:
            await asyncio.sleep(self.spec.update_interval_s)
            self.advance()

    async def serve(
        self, *, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None
    ) -> None:
        """Listen and update the model until ``stop`` is set (or the task is cancelled)."""
        if self._serving:
            raise SimulatorError(f"device {self.spec.name} is already serving")
        server = self._server()
        self._serving = True
        updater: asyncio.Task[None] | None = None
        stopped = asyncio.create_task((asyncio.Event() if stop is None else stop).wait())
        try:
            await _listen(server, self.spec)
            updater = asyncio.create_task(self._update_forever(), name=f"sim {self.spec.name}")
            if ready is not None:
                ready.set()
            await asyncio.wait([stopped, updater], return_when=asyncio.FIRST_COMPLETED)
            if updater.done():
                updater.result()  # the model failed: raise why, do not serve stale values
        finally:
            self._serving = False
            tasks = [t for t in (stopped, updater) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # outcomes handled above
            await server.shutdown()  # type: ignore[no-untyped-call]  # closes listener + clients

    def _server(self) -> ModbusBaseServer:
        if self.spec.serial_port is None:
            return ModbusTcpServer(self.sim_devices(), address=(self.spec.host, self.spec.port))
        line = self.profile.serial
        return ModbusSerialServer(
            self.sim_devices(),
            ignore_missing_devices=True,
            framer=FramerType.RTU,
            port=self.spec.serial_port,
            baudrate=line.baudrate,
            bytesize=line.bytesize,
            parity=line.parity,
            stopbits=line.stopbits,
        )


async def _no_such_unit(*_request: object) -> ExcCodes:
    return ExcCodes.GATEWAY_NO_RESPONSE


async def _listen(server: ModbusBaseServer, spec: DeviceSpec) -> None:
    """Start ``server`` listening in the background, or raise `BindError`."""
    try:
        await server.serve_forever(background=True)
    except RuntimeError as err:  # pymodbus reports a failed bind this way
        raise BindError(spec.name, spec.host, spec.port) from err


async def serve_device(
    spec: DeviceSpec, *, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None
) -> SimulatedDevice:
    """Run one device from its spec until ``stop``; return it for its counters."""
    device = SimulatedDevice(spec)
    await device.serve(stop=stop, ready=ready)
    return device


async def serve_devices(
    devices: Sequence[SimulatedDevice],
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve several devices concurrently; ``ready`` is set once all listen.

    If one device fails (e.g. its port is taken) the others are stopped and the error
    is raised.
    """
    if not devices:
        raise SimulatorError("no devices to serve")
    addresses = [(d.spec.host, d.spec.port) for d in devices]
    if len(set(addresses)) != len(addresses):
        raise SimulatorError(f"devices share an address: {addresses}")
    readies = [asyncio.Event() for _ in devices]
    tasks = [
        asyncio.create_task(d.serve(stop=stop, ready=r), name=f"serve {d.spec.name}")
        for d, r in zip(devices, readies, strict=True)
    ]
    all_ready = asyncio.create_task(_wait_all(readies, ready))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # raises the first failure
    finally:
        all_ready.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, all_ready, return_exceptions=True)


async def _wait_all(events: Sequence[asyncio.Event], done: asyncio.Event | None) -> None:
    for event in events:
        await event.wait()
    if done is not None:
        done.set()


async def run_devices(
    specs: Sequence[DeviceSpec],
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> list[SimulatedDevice]:
    """Build and serve devices from specs until ``stop``; return them for a summary."""
    devices = [SimulatedDevice(spec) for spec in specs]
    await serve_devices(devices, stop=stop, ready=ready)
    return devices


def fleet(
    template: DeviceSpec,
    ports: Sequence[int],
    *,
    profiles: Sequence[str] = ("renke-rs-ws-n01", "xy-md02"),
) -> list[DeviceSpec]:
    """Make one spec per port: numbered names, alternating profiles, distinct seeds."""
    return [
        dataclasses.replace(
            template,
            name=f"{template.name}-{i + 1:02d}",
            profile=profiles[i % len(profiles)],
            port=port,
            seed=template.seed + i,
        )
        for i, port in enumerate(ports)
    ]
