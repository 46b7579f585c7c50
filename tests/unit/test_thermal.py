"""The fridge model behaves like a 2-8 °C fridge: in band, cycling, failing, reproducible."""

from __future__ import annotations

import dataclasses
import statistics
from itertools import pairwise

import pytest

from firmware_sim.errors import ModelError, SimulatorError
from firmware_sim.thermal import CompressorFailure, FridgeModel, FridgeParams, FridgeState

HOUR = 3600.0


def run(
    params: FridgeParams,
    seed: int,
    hours: float,
    *,
    dt: float = 10.0,
    failure: CompressorFailure | None = None,
) -> list[FridgeState]:
    model = FridgeModel(params, seed, failure=failure)
    return [model.step(dt) for _ in range(round(hours * HOUR / dt))]


def rising_edges(states: list[FridgeState], attr: str) -> list[float]:
    return [b.time_s for a, b in pairwise(states) if getattr(b, attr) and not getattr(a, attr)]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(
    "params", [FridgeParams(), FridgeParams.cold_room()], ids=["fridge", "cold-room"]
)
def test_a_day_of_normal_operation_with_door_openings_stays_within_2_to_8(params, seed):
    states = run(params, seed, 24)
    temps = [s.air_temp_c for s in states]
    assert min(temps) >= 2.0
    assert max(temps) <= 8.0
    # The band is not trivially kept by a door that never opens.
    assert len(rising_edges(states, "door_open")) >= 20
    assert all(0.0 <= s.humidity_pct <= 100.0 for s in states)


def test_the_compressor_cycles_with_periods_of_tens_of_minutes():
    states = run(FridgeParams(), seed=5, hours=24)
    starts = rising_edges(states, "compressor_on")
    periods = [b - a for a, b in pairwise(starts)]
    assert 24 <= len(starts) <= 144  # one cycle per 10 to 60 minutes
    assert 10 * 60 <= statistics.median(periods) <= 60 * 60
    duty = sum(s.compressor_on for s in states) / len(states)
    assert 0.2 <= duty <= 0.8
    # Hysteresis: it switches on near the upper threshold and off near the lower one.
    on_temps = [
        b.air_temp_c for a, b in pairwise(states) if b.compressor_on and not a.compressor_on
    ]
    assert min(on_temps) > FridgeParams().thermostat_on_c - 0.1


def test_door_openings_warm_the_air_and_raise_humidity():
    params = dataclasses.replace(FridgeParams(), door_openings_per_h=6.0, door_mean_open_s=40.0)
    states = run(params, seed=11, hours=6, dt=2.0)
    rises: list[float] = []
    rh_rises: list[float] = []
    opened: FridgeState | None = None
    for before, now in pairwise(states):
        if now.door_open and not before.door_open:
            opened = before
        elif opened is not None and before.door_open and not now.door_open:
            if now.time_s - opened.time_s >= 20:
                rises.append(now.air_temp_c - opened.air_temp_c)
                rh_rises.append(now.humidity_pct - opened.humidity_pct)
            opened = None
    assert len(rises) >= 10
    assert all(r > 0 for r in rises)
    assert statistics.mean(rises) > 0.3
    assert statistics.mean(rh_rises) > 3.0


def test_a_compressor_failure_drives_an_excursion_and_recovery_ends_it():
    at, lasting = 6 * HOUR, 4 * HOUR
    states = run(
        FridgeParams(), seed=7, hours=16, failure=CompressorFailure(at_s=at, duration_s=lasting)
    )
    before = [s for s in states if s.time_s < at]
    during = [s for s in states if at <= s.time_s < at + lasting]
    after = [s for s in states if s.time_s >= at + lasting]

    assert max(s.air_temp_c for s in before) <= 8.0
    assert all(s.compressor_failed and not s.compressor_on for s in during)
    assert not any(s.compressor_failed for s in before + after)
    first_above = next(s.time_s for s in during if s.air_temp_c > 8.0)
    assert at + 5 * 60 < first_above < at + 2 * HOUR  # not instantly, but within the hour or so
    assert max(s.air_temp_c for s in during) > 10.0

    back_below = next(s.time_s for s in after if s.air_temp_c < 8.0)
    assert back_below < at + lasting + HOUR
    settled = [s for s in after if s.time_s > at + lasting + 2 * HOUR]
    assert all(2.0 <= s.air_temp_c <= 8.0 for s in settled)


def test_a_permanent_failure_warms_towards_the_ambient():
    states = run(FridgeParams(), seed=1, hours=24, failure=CompressorFailure(at_s=HOUR))
    assert 12.0 < states[-1].air_temp_c < FridgeParams().ambient_c
    assert states[-1].contents_temp_c > 10.0
    assert not any(s.compressor_on for s in states if s.time_s > HOUR)


def test_a_seed_reproduces_a_run_exactly_even_with_noise():
    params = dataclasses.replace(FridgeParams(), noise_temp_c=0.1, noise_rh_pct=1.0)
    assert run(params, seed=42, hours=6) == run(params, seed=42, hours=6)


def test_different_seeds_give_different_runs():
    a = [s.air_temp_c for s in run(FridgeParams(), seed=1, hours=6)]
    b = [s.air_temp_c for s in run(FridgeParams(), seed=2, hours=6)]
    assert a != b
    assert rising_edges(run(FridgeParams(), 1, 6), "door_open") != rising_edges(
        run(FridgeParams(), 2, 6), "door_open"
    )


def test_the_door_schedule_does_not_depend_on_the_step_size():
    fine = run(FridgeParams(), seed=3, hours=4, dt=1.0)
    coarse = run(FridgeParams(), seed=3, hours=4, dt=30.0)
    fine_at = {s.time_s: s.door_open for s in fine}
    assert [s.door_open for s in coarse] == [fine_at[s.time_s] for s in coarse]
    assert any(s.door_open for s in coarse)


def test_sensor_noise_is_on_the_measurement_only():
    quiet = run(FridgeParams(), seed=9, hours=4)
    assert all(s.measured_temp_c == s.air_temp_c for s in quiet)
    noisy = run(dataclasses.replace(FridgeParams(), noise_temp_c=0.2), seed=9, hours=4)
    errors = [s.measured_temp_c - s.air_temp_c for s in noisy]
    assert 0.15 < statistics.pstdev(errors) < 0.25
    assert [s.air_temp_c for s in noisy] == [s.air_temp_c for s in quiet]


def test_readings_are_keyed_by_the_profile_quantities():
    state = FridgeModel(FridgeParams(), seed=0).state
    assert state.readings() == {"temperature": 5.0, "humidity": pytest.approx(60.0)}
    assert state.time_s == 0.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: FridgeParams(thermostat_on_c=3.0, thermostat_off_c=4.0),
        lambda: FridgeParams(max_substep_s=0),
        lambda: CompressorFailure(at_s=-1.0),
        lambda: CompressorFailure(at_s=0.0, duration_s=0.0),
        lambda: FridgeModel(FridgeParams(), seed=0).step(-1.0),
    ],
)
def test_nonsense_is_refused_with_the_package_error(make):
    with pytest.raises(ModelError) as info:
        make()
    assert isinstance(info.value, SimulatorError)
