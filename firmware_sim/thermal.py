"""Thermal model of a refrigerated cabinet, so simulated loggers report believable data.

A demo or CI run needs temperatures that behave like a real 2-8 °C pharmaceutical
fridge: slow compressor cycles, short spikes when the door opens, and a real excursion
when the compressor fails. This module is pure: no clock, no I/O; model time advances
only through `FridgeModel.step`, and all randomness comes from generators seeded by the
caller, so a seed reproduces a run exactly.

The cabinet is three lumped thermal masses: the air (tiny), the shell (inner liner,
shelves and evaporator) and the contents (stock, large). Heat leaks through the
insulation into the shell, which the evaporator cools while the compressor runs; the
air, forced over the shell by the fan, follows it within a minute and slowly exchanges
heat with the contents. An open door exchanges air with the ambient, so the air
temperature jumps and then settles back within a couple of minutes after closing. A
hysteresis thermostat on the air temperature switches the compressor. Moisture is
tracked as water-vapour pressure: ambient air leaks in (much faster through an open
door), the running evaporator condenses it out, and relative humidity follows from
the air temperature.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from firmware_sim.errors import ModelError

_SECONDS_PER_HOUR = 3600.0


def saturation_vapour_pressure_kpa(temp_c: float) -> float:
    """Return the saturation vapour pressure over water in kPa (Magnus, WMO coefficients)."""
    return 0.6112 * math.exp(17.62 * temp_c / (243.12 + temp_c))


@dataclass(frozen=True, slots=True)
class CompressorFailure:
    """The compressor stops at model time ``at_s`` and, if ``duration_s`` is set, restarts."""

    at_s: float
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.at_s < 0:
            raise ModelError("a failure cannot start before the model does")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ModelError("a failure with a duration must last some time")

    def active(self, time_s: float) -> bool:
        """Return whether the compressor is broken at model time ``time_s``."""
        if time_s < self.at_s:
            return False
        return self.duration_s is None or time_s < self.at_s + self.duration_s


@dataclass(frozen=True, slots=True)
class FridgeParams:
    """Physical constants of one cabinet; the defaults are a loaded 2-8 °C medical fridge."""

    ambient_c: float = 22.0
    ambient_rh_pct: float = 50.0
    # Heat capacities (J/K) of the three lumped masses.
    air_j_per_k: float = 1_000.0  # the air itself, the fan, the probe
    shell_j_per_k: float = 8_000.0  # inner liner, shelves, evaporator
    contents_j_per_k: float = 80_000.0  # ~20 kg of boxed product
    # Conductances (W/K) between them and to the ambient.
    cabinet_ua: float = 3.0  # shell <-> ambient through the insulation
    air_shell_ua: float = 15.0  # forced convection over liner and evaporator
    air_contents_ua: float = 6.0  # convection around the stock
    door_ua: float = 2.5  # air <-> ambient while the door is open, as the probe sees it
    compressor_cooling_w: float = 120.0  # heat the running evaporator removes from the shell
    thermostat_on_c: float = 6.5  # compressor starts above this air temperature
    thermostat_off_c: float = 3.5  # and stops below this one
    min_off_s: float = 180.0  # anti-short-cycle restart delay
    door_openings_per_h: float = 2.0  # mean rate of a Poisson process
    door_mean_open_s: float = 15.0  # exponential; each opening is capped below
    door_max_open_s: float = 60.0
    leak_per_h: float = 0.2  # vapour exchange with the ambient through the gasket
    door_vapour_per_s: float = 1 / 60  # vapour exchange through an open doorway
    evaporator_c: float = -5.0  # coil temperature while the compressor runs
    evaporator_vapour_per_s: float = 1 / 600  # how fast a running coil dries the air
    initial_c: float = 5.0
    initial_rh_pct: float = 60.0
    noise_temp_c: float = 0.0  # standard deviation of the sensor's temperature noise
    noise_rh_pct: float = 0.0
    max_substep_s: float = 5.0  # integration step; door and failure events split steps exactly

    def __post_init__(self) -> None:
        if self.thermostat_off_c >= self.thermostat_on_c:
            raise ModelError("thermostat_off_c must be below thermostat_on_c")
        if self.max_substep_s <= 0:
            raise ModelError("max_substep_s must be positive")
        if self.door_openings_per_h < 0 or self.door_mean_open_s <= 0:
            raise ModelError("door rate must be >= 0 and mean opening time > 0")
        if min(self.air_j_per_k, self.shell_j_per_k, self.contents_j_per_k) <= 0:
            raise ModelError("heat capacities must be positive")

    @classmethod
    def cold_room(cls) -> FridgeParams:
        """Return constants of a walk-in 2-8 °C cold room: big masses and coil, a busy door."""
        return cls(
            air_j_per_k=30_000.0,
            shell_j_per_k=250_000.0,
            contents_j_per_k=4_000_000.0,
            cabinet_ua=40.0,
            air_shell_ua=300.0,
            air_contents_ua=150.0,
            door_ua=40.0,
            compressor_cooling_w=1_800.0,
            door_openings_per_h=6.0,
            door_mean_open_s=20.0,
            door_max_open_s=45.0,
            door_vapour_per_s=1 / 240,  # a doorway swaps a smaller share of a big room's air
        )


@dataclass(frozen=True, slots=True)
class FridgeState:
    """A snapshot of the model; ``measured_*`` is what the sensor reports (with noise)."""

    time_s: float
    air_temp_c: float
    contents_temp_c: float
    humidity_pct: float
    compressor_on: bool
    compressor_failed: bool
    door_open: bool
    measured_temp_c: float
    measured_humidity_pct: float

    def readings(self) -> dict[str, float]:
        """Return the sensor's values by quantity, as `modbus_profiles.encode` takes them."""
        return {"temperature": self.measured_temp_c, "humidity": self.measured_humidity_pct}


@dataclass(slots=True)
class _Door:
    """The door's schedule: the next opening and the current one, drawn from one RNG."""

    rng: random.Random
    rate_per_s: float
    mean_open_s: float
    max_open_s: float
    opens_at: float = math.inf
    closes_at: float = -math.inf

    def __post_init__(self) -> None:
        self._schedule_after(0.0)

    def _schedule_after(self, time_s: float) -> None:
        if self.rate_per_s <= 0:
            self.opens_at = math.inf
            return
        self.opens_at = time_s + self.rng.expovariate(self.rate_per_s)

    def is_open(self, time_s: float) -> bool:
        """Whether the door is open at ``time_s``."""
        return time_s < self.closes_at

    def next_event(self, time_s: float) -> float:
        """Model time of the next opening or closing after ``time_s``."""
        return self.closes_at if self.is_open(time_s) else self.opens_at

    def advance_to(self, time_s: float) -> None:
        """Open the door if its opening time has come; draw the next one on closing."""
        if time_s >= self.opens_at and not self.is_open(time_s):
            duration = min(self.rng.expovariate(1 / self.mean_open_s), self.max_open_s)
            self.closes_at = self.opens_at + duration
            self._schedule_after(self.closes_at)


class FridgeModel:
    """A fridge evolving in model time; `step` advances it and returns the new state."""

    def __init__(
        self, params: FridgeParams, seed: int, *, failure: CompressorFailure | None = None
    ) -> None:
        self.params = params
        self.seed = seed
        self.failure = failure
        self._time_s = 0.0
        self._air_c = params.initial_c
        self._shell_c = params.initial_c
        self._contents_c = params.initial_c
        self._vapour_kpa = (
            saturation_vapour_pressure_kpa(params.initial_c) * params.initial_rh_pct / 100
        )
        self._compressor_on = False
        self._off_since_s = -math.inf
        # Separate streams: the door schedule must not depend on how often noise is drawn.
        self._door = _Door(
            rng=random.Random(f"{seed}:door"),  # noqa: S311 - a simulation, not a secret
            rate_per_s=params.door_openings_per_h / _SECONDS_PER_HOUR,
            mean_open_s=params.door_mean_open_s,
            max_open_s=params.door_max_open_s,
        )
        self._noise = random.Random(f"{seed}:noise")  # noqa: S311 - as above
        self._state = self._snapshot()

    @property
    def state(self) -> FridgeState:
        """The state after the last step (the initial state before any)."""
        return self._state

    def step(self, dt_s: float) -> FridgeState:
        """Advance model time by ``dt_s`` seconds and return the state at the end."""
        if dt_s < 0:
            raise ModelError("model time cannot go backwards")
        end = self._time_s + dt_s
        while self._time_s < end:
            self._door.advance_to(self._time_s)
            boundary = min(
                end,
                self._time_s + self.params.max_substep_s,
                self._door.next_event(self._time_s),
                *self._failure_edges_after(self._time_s),
            )
            self._substep(boundary - self._time_s)
            self._time_s = boundary
        self._door.advance_to(self._time_s)
        self._update_compressor()  # so the snapshot shows what runs from now on
        self._state = self._snapshot()
        return self._state

    def _failure_edges_after(self, time_s: float) -> tuple[float, ...]:
        if self.failure is None:
            return ()
        edges = [self.failure.at_s]
        if self.failure.duration_s is not None:
            edges.append(self.failure.at_s + self.failure.duration_s)
        return tuple(t for t in edges if t > time_s)

    def _failed(self) -> bool:
        return self.failure is not None and self.failure.active(self._time_s)

    def _update_compressor(self) -> None:
        p = self.params
        if self._failed():
            if self._compressor_on:
                self._off_since_s = self._time_s
            self._compressor_on = False
        elif self._compressor_on and self._air_c < p.thermostat_off_c:
            self._compressor_on = False
            self._off_since_s = self._time_s
        elif (
            not self._compressor_on
            and self._air_c > p.thermostat_on_c
            and self._time_s - self._off_since_s >= p.min_off_s
        ):
            self._compressor_on = True

    def _substep(self, dt: float) -> None:
        """Integrate over ``dt`` with neighbours held constant (exponential, always stable)."""
        p = self.params
        self._update_compressor()
        door_ua = p.door_ua if self._door.is_open(self._time_s) else 0.0
        # Each mass relaxes towards the temperature where its heat flows balance.
        g_air = p.air_shell_ua + p.air_contents_ua + door_ua
        air_eq = (
            p.air_shell_ua * self._shell_c
            + p.air_contents_ua * self._contents_c
            + door_ua * p.ambient_c
        ) / g_air
        air_before = self._air_c
        self._air_c = _relax(air_before, air_eq, dt * g_air / p.air_j_per_k)
        air_mid = 0.5 * (air_before + self._air_c)
        cooling = p.compressor_cooling_w if self._compressor_on else 0.0
        g_shell = p.air_shell_ua + p.cabinet_ua
        shell_eq = (p.air_shell_ua * air_mid + p.cabinet_ua * p.ambient_c - cooling) / g_shell
        self._shell_c = _relax(self._shell_c, shell_eq, dt * g_shell / p.shell_j_per_k)
        rate = dt * p.air_contents_ua / p.contents_j_per_k
        self._contents_c = _relax(self._contents_c, air_mid, rate)
        self._vapour_kpa = self._next_vapour(dt, door_open=door_ua > 0)

    def _next_vapour(self, dt: float, *, door_open: bool) -> float:
        p = self.params
        ambient = saturation_vapour_pressure_kpa(p.ambient_c) * p.ambient_rh_pct / 100
        k_amb = p.leak_per_h / _SECONDS_PER_HOUR + (p.door_vapour_per_s if door_open else 0.0)
        k_coil = p.evaporator_vapour_per_s if self._compressor_on else 0.0
        coil = saturation_vapour_pressure_kpa(p.evaporator_c)
        if self._vapour_kpa <= coil:
            k_coil = 0.0  # a coil cannot dry air that is already drier than it
        k = k_amb + k_coil
        if k == 0:
            return self._vapour_kpa
        target = (k_amb * ambient + k_coil * coil) / k
        vapour = _relax(self._vapour_kpa, target, dt * k)
        # Anything above saturation condenses on the walls and the stock.
        return min(vapour, saturation_vapour_pressure_kpa(self._air_c))

    def _snapshot(self) -> FridgeState:
        p = self.params
        rh = min(100.0, 100 * self._vapour_kpa / saturation_vapour_pressure_kpa(self._air_c))
        temp_noise = self._noise.gauss(0.0, p.noise_temp_c) if p.noise_temp_c > 0 else 0.0
        rh_noise = self._noise.gauss(0.0, p.noise_rh_pct) if p.noise_rh_pct > 0 else 0.0
        return FridgeState(
            time_s=self._time_s,
            air_temp_c=self._air_c,
            contents_temp_c=self._contents_c,
            humidity_pct=rh,
            compressor_on=self._compressor_on,
            compressor_failed=self._failed(),
            door_open=self._door.is_open(self._time_s),
            measured_temp_c=self._air_c + temp_noise,
            measured_humidity_pct=min(100.0, max(0.0, rh + rh_noise)),
        )


def _relax(value: float, target: float, rate: float) -> float:
    """Exact solution of dv/dt = (target - v)/tau over a step with ``rate`` = dt/tau."""
    return target + (value - target) * math.exp(-rate)
