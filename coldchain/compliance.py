"""Whether a location's monitoring set-up meets its profile's regulatory rules (pure).

The rules come from the profile (``coldchain.profiles``): how many probes a cold room
or vehicle needs, how often they must record in storage or transport, how long ago
they may have been calibrated, and how many named people an alarm must reach. The ERP
feeds this from its locations and sensor assignments; the answer is a list of
violations, each with a reason a QA auditor can read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from coldchain.profiles import AlarmProfile

Mode = Literal["storage", "transport"]


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe at a location: its recording interval and last calibration."""

    uid: str
    interval_s: float
    calibrated_on: date | None
    excursion_interval_s: float | None = None


@dataclass(frozen=True, slots=True)
class LocationSetup:
    """What monitors one location (a cold room, fridge or vehicle)."""

    name: str
    mode: Mode
    probes: Sequence[Probe]
    recipients: int


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule a location breaks, with the probe concerned if any."""

    location: str
    rule: str
    reason: str
    probe: str | None = None


def check(setup: LocationSetup, profile: AlarmProfile, *, today: date) -> list[Violation]:
    """Every rule of ``profile`` that ``setup`` breaks on ``today`` (empty: compliant)."""
    out: list[Violation] = []
    loc = setup.name
    if len(setup.probes) < profile.min_probes_per_location:
        out.append(
            Violation(
                loc,
                "probes",
                f"{len(setup.probes)} probe(s); {profile.name} requires at least "
                f"{profile.min_probes_per_location}",
            )
        )
    if setup.recipients < profile.min_recipients:
        out.append(
            Violation(
                loc,
                "recipients",
                f"alarms reach {setup.recipients} named person(s); {profile.name} requires "
                f"at least {profile.min_recipients}",
            )
        )
    limit = (
        profile.max_interval_storage_s
        if setup.mode == "storage"
        else profile.max_interval_transport_s
    )
    max_age = timedelta(days=profile.calibration_interval_days)
    for p in setup.probes:
        if limit is not None and p.interval_s > limit:
            out.append(
                Violation(
                    loc,
                    "interval",
                    f"records every {p.interval_s / 60:g} min; {setup.mode} requires at "
                    f"least every {limit / 60:g} min",
                    p.uid,
                )
            )
        exc_limit = profile.max_interval_excursion_s
        exc = p.excursion_interval_s if p.excursion_interval_s is not None else p.interval_s
        if exc_limit is not None and exc > exc_limit:
            out.append(
                Violation(
                    loc,
                    "excursion_interval",
                    f"records every {exc / 60:g} min while out of range; at least every "
                    f"{exc_limit / 60:g} min required",
                    p.uid,
                )
            )
        if p.calibrated_on is None:
            out.append(Violation(loc, "calibration", "no calibration on record", p.uid))
        elif today - p.calibrated_on > max_age:
            due = p.calibrated_on + max_age
            out.append(
                Violation(loc, "calibration", f"calibration overdue since {due.isoformat()}", p.uid)
            )
    return out
