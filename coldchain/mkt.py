"""Mean kinetic temperature (USP <1079.2>): one number for the thermal stress a product saw.

MKT weights warm periods more than the arithmetic mean does, following the Arrhenius
equation with the standard activation energy ΔH = 83.144 kJ/mol and R = 8.3144 J/(mol·K),
so ΔH/R = 10,000 K:

    MKT = (ΔH/R) / -ln( Σ wᵢ·exp(-ΔH/(R·Tᵢ)) / Σ wᵢ )        (T in kelvin)

USP writes it for n equally spaced readings (all wᵢ = 1). With irregular sampling, pass
each reading's duration as its weight. Pure: no I/O, floats in °C in and out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

DELTA_H_J_PER_MOL = 83_144.0
GAS_CONSTANT_J_PER_MOL_K = 8.3144
KELVIN_OFFSET = 273.15


class MktError(ValueError):
    """Input MKT cannot be computed from (no readings, bad weights, below absolute zero)."""


def mean_kinetic_temperature(
    celsius: Sequence[float],
    weights: Sequence[float] | None = None,
    *,
    delta_h: float = DELTA_H_J_PER_MOL,
) -> float:
    """The MKT in °C of ``celsius`` readings, each weighted by ``weights`` (default equal)."""
    if not celsius:
        raise MktError("no readings")
    if weights is None:
        weights = [1.0] * len(celsius)
    if len(weights) != len(celsius):
        raise MktError(f"{len(weights)} weights for {len(celsius)} readings")
    if any(w < 0 or not math.isfinite(w) for w in weights):
        raise MktError("weights must be finite and not negative")
    total = math.fsum(weights)
    if total <= 0:
        raise MktError("the weights sum to zero")
    ratio = delta_h / GAS_CONSTANT_J_PER_MOL_K
    exponents = []
    for value in celsius:
        kelvin = value + KELVIN_OFFSET
        if not kelvin > 0:
            raise MktError(f"{value} °C is at or below absolute zero")
        exponents.append(-ratio / kelvin)
    # log-sum-exp: exp(-ΔH/RT) is ~1e-16 near 5 °C, so factor out the largest term.
    top = max(e for e, w in zip(exponents, weights, strict=True) if w > 0)
    scaled = math.fsum(w * math.exp(e - top) for e, w in zip(exponents, weights, strict=True))
    log_mean = top + math.log(scaled / total)
    return -ratio / log_mean - KELVIN_OFFSET


def arrhenius_term(celsius: float, *, delta_h: float = DELTA_H_J_PER_MOL) -> float:
    """exp(-ΔH/(R·T)) of one reading: what MKT averages (for sums kept elsewhere)."""
    kelvin = celsius + KELVIN_OFFSET
    if not kelvin > 0:
        raise MktError(f"{celsius} °C is at or below absolute zero")
    return math.exp(-delta_h / GAS_CONSTANT_J_PER_MOL_K / kelvin)


def mkt_from_sums(
    arrhenius_sum: float, weight_sum: float, *, delta_h: float = DELTA_H_J_PER_MOL
) -> float:
    """The MKT in °C from Σ wᵢ·exp(-ΔH/(R·Tᵢ)) and Σ wᵢ (e.g. pre-aggregated per hour)."""
    if not weight_sum > 0 or not arrhenius_sum > 0:
        raise MktError("no weighted readings")
    return (
        -(delta_h / GAS_CONSTANT_J_PER_MOL_K) / math.log(arrhenius_sum / weight_sum) - KELVIN_OFFSET
    )


def step_weights(
    times: Sequence[int], *, start: int, end: int, max_step: int | None = None
) -> list[float]:
    """Each reading's weight: the part of [start, end) its value holds (until the next one).

    A value holds at most ``max_step`` (beyond it nothing is known); the last reading
    has no successor and weighs nothing. Times are sorted, in any one unit.
    """
    out = []
    for i, t in enumerate(times):
        if i + 1 == len(times):
            out.append(0.0)
            break
        stop = min(times[i + 1], end)
        if max_step is not None:
            stop = min(stop, t + max_step)
        out.append(float(max(0, stop - max(t, start))))
    return out


def window_mkt(
    times: Sequence[int],
    celsius: Sequence[float],
    *,
    start: int,
    end: int,
    max_step: int | None = None,
) -> float | None:
    """The MKT over [start, end) of step-held readings (None: no reading holds there)."""
    weights = step_weights(times, start=start, end=end, max_step=max_step)
    kept = [(c, w) for c, w in zip(celsius, weights, strict=True) if w > 0]
    if not kept:
        return None
    return mean_kinetic_temperature([c for c, _ in kept], [w for _, w in kept])
