"""Judge a sensor or gateway for the people watching it: a level and a word (pure).

ASSUMPTION, until storage profiles exist in ``erp.items``: every temperature sensor
guards goods stored at 2-8 °C. The web UI says so on every page that uses it; the JSON
API does not judge at all, so no client builds on this assumption.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

ASSUMED_TEMPERATURE_RANGE_C: tuple[float, float] = (2.0, 8.0)
CELSIUS = "Cel"


class Level(StrEnum):
    """How urgent a verdict is; the web UI maps each to a colour."""

    OK = "ok"
    ALARM = "alarm"
    WARNING = "warning"
    NEUTRAL = "neutral"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A level and the word shown next to the colour (never a colour alone)."""

    level: Level
    word: str


def limits_for(*, quantity: str, unit: str) -> tuple[float, float] | None:
    """The allowed range of a sensor's values, or None when nothing is assumed."""
    if quantity == "temperature" and unit == CELSIUS:
        return ASSUMED_TEMPERATURE_RANGE_C
    return None


def value_verdict(
    *,
    quantity: str,
    unit: str,
    value: float | None,
    limits: tuple[float, float] | None = None,
) -> Verdict:
    """Whether the value lies inside ``limits`` (default: the assumed range), in words."""
    if value is None:
        return Verdict(Level.NEUTRAL, "NO DATA")
    if limits is None:
        limits = limits_for(quantity=quantity, unit=unit)
    if limits is None:
        return Verdict(Level.NEUTRAL, "")
    low, high = limits
    if value > high:
        return Verdict(Level.ALARM, "TOO WARM")
    if value < low:
        return Verdict(Level.ALARM, "TOO COLD")
    return Verdict(Level.OK, "IN RANGE")


def freshness_verdict(*, latest: datetime | None, now: datetime, stale_after: timedelta) -> Verdict:
    """Whether the sensor has reported recently, in words."""
    if latest is None:
        return Verdict(Level.WARNING, "NEVER REPORTED")
    if now - latest > stale_after:
        return Verdict(Level.WARNING, "NO RECENT DATA")
    return Verdict(Level.OK, "LIVE")


def gateway_verdict(
    *, status: str, last_seen: datetime, now: datetime, stale_after: timedelta
) -> Verdict:
    """Whether the gateway is connected and talking, in words."""
    if status == "offline":
        return Verdict(Level.ALARM, "OFFLINE")
    if status == "online":
        if now - last_seen > stale_after:
            return Verdict(Level.WARNING, "ONLINE, SILENT")
        return Verdict(Level.OK, "ONLINE")
    return Verdict(Level.NEUTRAL, status.upper() or "UNKNOWN")
