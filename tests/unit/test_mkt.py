"""Mean kinetic temperature against hand formulas and its defining properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.mkt import MktError, mean_kinetic_temperature, step_weights, window_mkt

A = 83_144.0 / 8.3144  # ΔH/R = 10,000 K


def test_constant_five_degrees_is_five() -> None:
    assert mean_kinetic_temperature([5.0] * 24) == pytest.approx(5.0, abs=1e-9)


def test_two_temperatures_equal_time_closed_form() -> None:
    # MKT = A / -ln((e^(-A/T1) + e^(-A/T2)) / 2), written out for 2 °C and 8 °C.
    t1, t2 = 2 + 273.15, 8 + 273.15
    expected = A / -math.log((math.exp(-A / t1) + math.exp(-A / t2)) / 2) - 273.15
    got = mean_kinetic_temperature([2.0, 8.0, 2.0, 8.0])
    assert got == pytest.approx(expected, abs=1e-9)
    assert got > 5.0  # warm hours count more than cold ones


def test_usp_style_example_weekly_highs() -> None:
    # 52 weekly readings: 26 at 20 °C and 26 at 30 °C; the MKT exceeds the 25 °C mean.
    expected = A / -math.log((math.exp(-A / 293.15) + math.exp(-A / 303.15)) / 2) - 273.15
    assert mean_kinetic_temperature([20.0] * 26 + [30.0] * 26) == pytest.approx(expected)
    # by hand: -A/303.15 + ln((1 + e^(-A(1/293.15 - 1/303.15)))/2) = -32.987 - 0.412
    # = -33.399, and 10,000 / 33.399 = 299.41 K = 26.26 °C
    assert 26.2 < expected < 26.3


def test_weights_count_as_time() -> None:
    # 3 h at 4 °C and 1 h at 10 °C equals four equally spaced readings 4, 4, 4, 10.
    weighted = mean_kinetic_temperature([4.0, 10.0], [3.0, 1.0])
    assert weighted == pytest.approx(mean_kinetic_temperature([4.0, 4.0, 4.0, 10.0]))


@pytest.mark.parametrize(
    ("values", "weights"),
    [([], None), ([5.0], [1.0, 2.0]), ([5.0], [0.0]), ([5.0], [-1.0]), ([-300.0], None)],
)
def test_refuses_what_it_cannot_compute(values: list[float], weights: list[float] | None) -> None:
    with pytest.raises(MktError):
        mean_kinetic_temperature(values, weights)


temps = st.floats(min_value=-80.0, max_value=60.0, allow_nan=False)


@given(st.lists(temps, min_size=1, max_size=200))
def test_mkt_is_at_least_the_arithmetic_mean(values: list[float]) -> None:
    assert mean_kinetic_temperature(values) >= math.fsum(values) / len(values) - 1e-9


@given(temps, st.integers(min_value=1, max_value=500))
def test_mkt_of_a_constant_series_is_the_constant(value: float, n: int) -> None:
    assert mean_kinetic_temperature([value] * n) == pytest.approx(value, abs=1e-9)


@given(st.lists(temps, min_size=1, max_size=50))
def test_mkt_lies_between_min_and_max(values: list[float]) -> None:
    mkt = mean_kinetic_temperature(values)
    assert min(values) - 1e-9 <= mkt <= max(values) + 1e-9


# --- MKT over a window of step-held readings (the rolling MKT alert) -------------------


def test_step_weights_clip_to_the_window_and_cap_a_gap() -> None:
    times = [0, 10, 20, 100]
    assert step_weights(times, start=5, end=1000) == [5.0, 10.0, 80.0, 0.0]
    assert step_weights(times, start=0, end=50) == [10.0, 10.0, 30.0, 0.0]
    assert step_weights(times, start=0, end=1000, max_step=15) == [10.0, 10.0, 15.0, 0.0]


def test_window_mkt_of_equal_steps_is_the_usp_formula() -> None:
    values = [2.0, 8.0, 5.0, 7.0, 3.0]
    times = [i * 60 for i in range(len(values) + 1)]
    got = window_mkt(times, [*values, 0.0], start=0, end=10**6)
    assert got == pytest.approx(mean_kinetic_temperature(values), abs=1e-9)


def test_window_mkt_ignores_readings_outside_the_window() -> None:
    times, values = [0, 60, 120, 180], [30.0, 5.0, 5.0, 5.0]
    assert window_mkt(times, values, start=60, end=180) == pytest.approx(5.0, abs=1e-9)
    assert window_mkt(times, values, start=200, end=300) is None


@given(
    st.lists(
        st.tuples(st.integers(1, 3600), st.floats(-20, 40, allow_nan=False)),
        min_size=2,
        max_size=40,
    )
)
def test_window_mkt_lies_between_the_weighted_mean_and_the_warmest_value(steps) -> None:
    times, t = [], 0
    for step, _ in steps:
        times.append(t)
        t += step
    values = [v for _, v in steps]
    got = window_mkt(times, values, start=0, end=t)
    weights = step_weights(times, start=0, end=t)
    held = [v for v, w in zip(values, weights, strict=True) if w > 0]
    mean = sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)
    assert got is not None
    assert mean - 1e-6 <= got <= max(held) + 1e-6
