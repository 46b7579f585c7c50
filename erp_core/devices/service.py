"""The devices page's data: gateways with their health, sensors with battery and calibration.

The newest reading per sensor and the gateways' liveness come from
``erp_core.monitoring.service`` (one definition for the overview and this page); this
module adds what only the devices page shows: the health fields of a gateway's last
state message (clock skew, local alarm outputs), a sensor's battery (its device's
``battery`` sensor), its calibration due date and its current assignment. It reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from erp_core.monitoring import service as monitoring
from erp_core.monitoring.models import GatewaySummary, SensorSummary
from erp_core.monitoring.status import Level, gateway_verdict

Conn = psycopg.Connection[Any]
BATTERY = "battery"  # the quantity of a device's battery sensor (gateway.health)
CALIBRATION_WARNING = timedelta(days=30)  # due this soon: shown amber


@dataclass(frozen=True, slots=True)
class AlarmOutput:
    """A gateway's local alarm output (a relay channel) as its last state message reports it."""

    name: str
    active: bool  # a watched reading is beyond its local limit, or a central alert is open
    sounding: bool | None  # the output as last written; None before the first write
    error: str | None


@dataclass(frozen=True, slots=True)
class GatewayRow:
    """A gateway with its verdict (online, online but silent, offline) and health."""

    gateway: GatewaySummary
    level: Level
    verdict: str  # gateway_verdict's word: ONLINE, ONLINE, SILENT, OFFLINE, …
    clock_skew_ms: int | None
    clock_skewed: bool
    alarms: list[AlarmOutput]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a sensor is assigned now."""

    code: str
    name: str
    since: datetime


@dataclass(frozen=True, slots=True)
class SensorRow:
    """A sensor with its latest value, battery, calibration and current place."""

    sensor: SensorSummary
    battery: float | None
    calibration_due: date | None
    calibration: Level  # ALARM overdue, WARNING due soon, OK, NEUTRAL none set
    placement: Placement | None


def gateways(conn: Conn, *, now: datetime, stale_after: timedelta) -> list[GatewayRow]:
    """Every gateway with its verdict, clock skew and local alarm outputs."""
    states = dict(conn.execute("SELECT id, state FROM telemetry.gateways").fetchall())
    rows = []
    for g in monitoring.list_gateways(conn):
        verdict = gateway_verdict(
            status=g.status, last_seen=g.last_seen, now=now, stale_after=stale_after
        )
        state = states.get(g.id)
        state = state if isinstance(state, dict) else {}
        skew = state.get("clock_skew_ms")
        if not isinstance(skew, int) or isinstance(skew, bool):
            skew = None
        rows.append(
            GatewayRow(
                gateway=g,
                level=verdict.level,
                verdict=verdict.word,
                clock_skew_ms=skew,
                clock_skewed=state.get("clock_skewed") is True,
                alarms=_alarms(state.get("alarms")),
            )
        )
    return rows


def sensors(conn: Conn, *, now: datetime, limit: int, offset: int) -> list[SensorRow]:
    """Sensors (not the batteries, shown beside their device's sensors), a page of them."""
    every = monitoring.list_sensors(conn, now=now)
    battery = {(s.gateway_id, s.uid): s.latest_value for s in every if s.quantity == BATTERY}
    shown = [s for s in every if s.quantity != BATTERY][offset : offset + limit]
    ids = [s.id for s in shown]
    extra = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT s.id, s.calibration_due, l.code, l.name, a.valid_from"
            "  FROM telemetry.sensors s"
            "  LEFT JOIN erp.sensor_assignments a ON a.sensor_id = s.id"
            "   AND a.valid_from <= %(now)s AND coalesce(a.valid_to, 'infinity') > %(now)s"
            "  LEFT JOIN erp.locations l ON l.id = a.location_id"
            " WHERE s.id = ANY(%(ids)s)",
            {"ids": ids, "now": now},
        )
    }
    rows = []
    for s in shown:
        due, code, name, since = extra.get(s.id, (None, None, None, None))
        rows.append(
            SensorRow(
                sensor=s,
                battery=battery.get((s.gateway_id, s.uid)),
                calibration_due=due,
                calibration=calibration_level(due, today=now.date()),
                placement=None if code is None else Placement(code, name, since),
            )
        )
    return rows


def calibration_level(due: date | None, *, today: date) -> Level:
    """ALARM when the calibration is overdue, WARNING when due within 30 days."""
    if due is None:
        return Level.NEUTRAL
    if due < today:
        return Level.ALARM
    if due - today <= CALIBRATION_WARNING:
        return Level.WARNING
    return Level.OK


def _alarms(items: object) -> list[AlarmOutput]:
    # The state is whatever the gateway last sent: read it leniently, never fail on it.
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            on = item.get("output_on")
            error = item.get("error")
            out.append(
                AlarmOutput(
                    name=item["name"],
                    active=item.get("active") is True,
                    sounding=on if isinstance(on, bool) else None,
                    error=error if isinstance(error, str) else None,
                )
            )
    return out
