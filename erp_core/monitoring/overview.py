"""What the overview shows, judged (pure): each sensor against its own alarm profile.

Written for a night-shift worker glancing at a wall screen: the banner says in words
whether anything needs attention — a value outside its profile, a silent sensor or
gateway, an alert not closed, a lot with an open deviation — and never "all OK" while
any of those is open. The template (``monitoring/overview.html``) only words it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from coldchain.profiles import AlarmProfile
from erp_core.monitoring.models import GatewaySummary, OpenMatters, SensorSummary
from erp_core.monitoring.status import (
    SEVERITY,
    Level,
    Verdict,
    freshness_verdict,
    gateway_verdict,
    value_verdict,
)

Kind = Literal["value", "stale", "gateway", "alerts", "deviations"]


@dataclass(frozen=True, slots=True)
class SensorRow:
    """A sensor, its alarm profile (None: none), and its value and freshness verdicts."""

    sensor: SensorSummary
    profile: AlarmProfile | None
    value: Verdict
    fresh: Verdict


@dataclass(frozen=True, slots=True)
class GatewayRow:
    """A gateway and its liveness verdict."""

    gateway: GatewaySummary
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Attention:
    """One line of the banner: what is wrong (``kind``) and about what."""

    level: Level
    kind: Kind
    verdict: Verdict | None = None
    sensor: SensorRow | None = None
    gateway: GatewaySummary | None = None
    count: int = 0


@dataclass(frozen=True, slots=True)
class Overview:
    """The overview page's content: banner level and lines, gateway and sensor rows."""

    level: Level
    lines: list[Attention]
    sensors: list[SensorRow]
    gateways: list[GatewayRow]


def build_overview(  # noqa: PLR0913 - keyword-only parts of one page
    *,
    sensors: list[SensorSummary],
    profiles: dict[int, AlarmProfile],
    gateways: list[GatewaySummary],
    matters: OpenMatters,
    now: datetime,
    stale_after: timedelta,
) -> Overview:
    """Judge every sensor and gateway; the banner lists what needs attention, worst first."""
    rows = [
        SensorRow(
            sensor=s,
            profile=profiles.get(s.id),
            value=value_verdict(value=s.latest_value, profile=profiles.get(s.id)),
            fresh=freshness_verdict(latest=s.latest_time, now=now, stale_after=stale_after),
        )
        for s in sensors
    ]
    gateway_rows = [
        GatewayRow(
            gateway=g,
            verdict=gateway_verdict(
                status=g.status, last_seen=g.last_seen, now=now, stale_after=stale_after
            ),
        )
        for g in gateways
    ]
    lines: list[Attention] = []
    if matters.alerts:
        lines.append(Attention(Level.ALARM, "alerts", count=matters.alerts))
    if matters.lots_with_deviation:
        lines.append(Attention(Level.ALARM, "deviations", count=matters.lots_with_deviation))
    for row in rows:
        if row.value.level in (Level.ALARM, Level.WARNING):
            lines.append(Attention(row.value.level, "value", verdict=row.value, sensor=row))
        if row.fresh.level is Level.WARNING:
            lines.append(Attention(Level.WARNING, "stale", verdict=row.fresh, sensor=row))
    lines.extend(
        Attention(g.verdict.level, "gateway", verdict=g.verdict, gateway=g.gateway)
        for g in gateway_rows
        if g.verdict.level in (Level.ALARM, Level.WARNING)
    )
    lines.sort(key=lambda a: -SEVERITY[a.level])
    quiet = Level.OK if rows else Level.NEUTRAL
    level = lines[0].level if lines else quiet
    return Overview(level=level, lines=lines, sensors=rows, gateways=gateway_rows)
