"""Alarm profiles: what "in range" means for one sensor, as data both ingest and the ERP read.

A profile is a frozen value; the regulatory defaults ship as YAML next to this module
(``profiles.yaml``) and are seeded into ``telemetry.alarm_profiles`` by migration 0002,
so a plant edits its own profiles in the database, never the code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib.resources import files
from typing import Any

import yaml

from coldchain.errors import ProfileError


@dataclass(frozen=True, slots=True)
class AlarmProfile:
    """Limits and delays of one storage condition (temperatures in °C, times in seconds)."""

    name: str
    low: float
    high: float
    pre_alarm_band: float = 0.0
    pre_alarm_delay_s: float = 0.0
    alarm_delay_s: float = 0.0
    abs_low: float | None = None
    abs_high: float | None = None
    single_event_budget_s: float | None = None
    cumulative_budget_s: float | None = None
    mkt_limit: float | None = None
    rolling_window_days: float = 30.0
    offline_after_s: float = 1800.0
    low_battery_pct: float = 15.0
    fault_low: float = -90.0
    fault_high: float = 150.0
    stuck_after_s: float | None = None
    calibration_interval_days: int = 365
    max_interval_storage_s: float | None = None
    max_interval_transport_s: float | None = None
    max_interval_excursion_s: float | None = None
    min_probes_per_location: int = 1
    min_recipients: int = 1
    regulation: str = ""
    description: str = ""
    quantities: tuple[str, ...] = field(default=("temperature",))

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ProfileError(self.name, f"low ({self.low}) must be below high ({self.high})")
        if self.abs_low is not None and self.abs_low > self.low:
            raise ProfileError(self.name, "abs_low must not be above low")
        if self.abs_high is not None and self.abs_high < self.high:
            raise ProfileError(self.name, "abs_high must not be below high")
        if min(self.pre_alarm_band, self.pre_alarm_delay_s, self.alarm_delay_s) < 0:
            raise ProfileError(
                self.name, "pre_alarm_band, pre_alarm_delay_s and alarm_delay_s must be >= 0"
            )
        if not self.rolling_window_days > 0:
            raise ProfileError(self.name, "rolling_window_days must be > 0")
        if 2 * self.pre_alarm_band >= self.high - self.low:
            raise ProfileError(self.name, "pre_alarm_band leaves no range between the bands")

    def in_range(self, value: float) -> bool:
        """Whether ``value`` is inside the allowed range (limits included)."""
        return self.low <= value <= self.high

    @property
    def warn_low(self) -> float:
        """Values below this are in the low pre-alarm band (or out of range)."""
        return self.low + self.pre_alarm_band

    @property
    def warn_high(self) -> float:
        """Values above this are in the high pre-alarm band (or out of range)."""
        return self.high - self.pre_alarm_band

    def is_fault(self, value: float) -> bool:
        """Whether ``value`` is physically impossible for this probe (a sensor fault)."""
        return not self.fault_low <= value <= self.fault_high

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``spec`` column of ``telemetry.alarm_profiles``)."""
        out = asdict(self)
        out["quantities"] = list(self.quantities)
        return out


def profile_from_dict(data: dict[str, Any]) -> AlarmProfile:
    """Build a profile from a YAML/JSON mapping, naming the profile in any error."""
    name = str(data.get("name", "?"))
    known = set(AlarmProfile.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise ProfileError(name, f"unknown fields {sorted(unknown)}")
    values = dict(data)
    if "quantities" in values:
        values["quantities"] = tuple(values["quantities"])
    try:
        return AlarmProfile(**values)
    except TypeError as err:
        raise ProfileError(name, str(err)) from err


def load_profiles(text: str) -> list[AlarmProfile]:
    """Parse a YAML document with a top-level ``profiles:`` list."""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("profiles"), list):
        raise ProfileError("?", "expected a mapping with a 'profiles' list")
    profiles = [profile_from_dict(p) for p in doc["profiles"]]
    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        raise ProfileError("?", f"duplicate profile names in {names}")
    return profiles


def default_profiles() -> list[AlarmProfile]:
    """The regulatory default profiles shipped with ColdTrace (``profiles.yaml``)."""
    return load_profiles(files("coldchain").joinpath("profiles.yaml").read_text("utf-8"))


DEFAULT_FOR_QUANTITY = {"temperature": "fridge-2-8"}
"""The profile applied to a sensor of that quantity that has no profile assigned."""
