"""Judge a sensor or gateway for the people watching it: a level and a word (pure).

A value is judged against the sensor's own effective alarm profile
(``telemetry.sensor_effective_profiles``: its own profile, else its quantity's default),
never against a range assumed for every sensor; a sensor without a profile is not
judged, and the page says so. The words are gettext messages (``N_``): the pages
translate them. The JSON API does not judge at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from coldchain.profiles import AlarmProfile
from erp_core.web.words import N_


class Level(StrEnum):
    """How urgent a verdict is; the web UI maps each to a colour."""

    OK = "ok"
    ALARM = "alarm"
    WARNING = "warning"
    NEUTRAL = "neutral"


SEVERITY = {Level.ALARM: 3, Level.WARNING: 2, Level.NEUTRAL: 1, Level.OK: 0}


@dataclass(frozen=True, slots=True)
class Verdict:
    """A level and the word shown next to the colour (never a colour alone)."""

    level: Level
    word: str


def value_verdict(*, value: float | None, profile: AlarmProfile | None) -> Verdict:
    """Whether ``value`` lies inside ``profile``'s limits (and outside its pre-alarm strips)."""
    if value is None:
        return Verdict(Level.NEUTRAL, N_("NO DATA"))
    if profile is None:
        return Verdict(Level.NEUTRAL, N_("NO ALARM PROFILE"))
    if value > profile.high:
        return Verdict(Level.ALARM, N_("TOO WARM"))
    if value < profile.low:
        return Verdict(Level.ALARM, N_("TOO COLD"))
    if value > profile.warn_high or value < profile.warn_low:  # in a pre-alarm strip
        return Verdict(Level.WARNING, N_("NEAR LIMIT"))
    return Verdict(Level.OK, N_("IN RANGE"))


def freshness_verdict(*, latest: datetime | None, now: datetime, stale_after: timedelta) -> Verdict:
    """Whether the sensor has reported recently, in words."""
    if latest is None:
        return Verdict(Level.WARNING, N_("NEVER REPORTED"))
    if now - latest > stale_after:
        return Verdict(Level.WARNING, N_("NO RECENT DATA"))
    return Verdict(Level.OK, N_("LIVE"))


def gateway_verdict(
    *, status: str, last_seen: datetime, now: datetime, stale_after: timedelta
) -> Verdict:
    """Whether the gateway is connected and talking, in words."""
    if status == "offline":
        return Verdict(Level.ALARM, N_("OFFLINE"))
    if status == "online":
        if now - last_seen > stale_after:
            return Verdict(Level.WARNING, N_("ONLINE, SILENT"))
        return Verdict(Level.OK, N_("ONLINE"))
    return Verdict(Level.NEUTRAL, N_("UNKNOWN"))
