"""What the location compliance endpoints return (pydantic, frozen)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from coldchain.compliance import Mode


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ProbeOut(_Frozen):
    """A temperature probe assigned to the location now, as measured from its readings."""

    sensor_id: int
    uid: str
    readings: int = Field(description="Readings stored in the measuring window")
    interval_s: float | None = Field(description="Median step between readings; None: too few")
    excursion_interval_s: float | None = Field(
        description="Median step while out of range (per the first profile); None: none seen"
    )
    calibration_due: date | None


class ViolationOut(_Frozen):
    """One rule of one profile that the location's set-up breaks."""

    profile: str
    rule: str = Field(description="probes, recipients, interval, excursion_interval, calibration")
    reason: str
    probe: str | None = None


class LocationCompliance(_Frozen):
    """Whether one ERP location's monitoring set-up meets the profiles that apply to it."""

    location_id: int
    code: str
    name: str
    kind: str
    mode: Mode
    profiles: list[str] = Field(description="Profiles of its probes and of the items it holds")
    alert_sites: list[str | None] = Field(description="Sites its probes' alerts are raised for")
    recipients: int = Field(description="Fewest named people a limit alarm reaches at once")
    probes: list[ProbeOut]
    compliant: bool
    violations: list[ViolationOut]
    checked_at: datetime
