"""The sensors an evaluation works on: their facts for messages and their alarm profile.

Shared by the per-batch evaluation (``ingest.evaluate``), its episode and condition
parts and the periodic sweep, so each loads sensors and profiles the same way: from
``telemetry.sensor_effective_profiles`` (migration 0022), the one definition of "the
sensor's assigned profile, else the default profile of its quantity".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from coldchain.errors import ProfileError
from coldchain.profiles import AlarmProfile, profile_from_dict
from ingest.alerts import SensorInfo

Conn = psycopg.Connection[Any]
LOCK_NAMESPACE = 7231  # first key of pg_advisory_xact_lock(int, int): "sensor evaluation"
LATE_AFTER = timedelta(minutes=10)
CONDITION_QUANTITIES = ("power", "battery")

_PROFILE_SQL = """
SELECT s.id, s.uid, s.quantity, s.unit, s.gateway_id, g.site, p.spec, p.profile_id
  FROM telemetry.sensors s
  LEFT JOIN telemetry.gateways g ON g.id = s.gateway_id
  LEFT JOIN telemetry.sensor_effective_profiles p ON p.sensor_id = s.id
 WHERE s.id = ANY(%s)
"""


@dataclass(frozen=True, slots=True)
class Target:
    """One sensor to evaluate, with its profile (or the error that made it unusable)."""

    sensor: SensorInfo
    profile: AlarmProfile | None
    profile_id: int | None
    profile_error: ProfileError | None = None


def load_targets(conn: Conn, sensor_ids: list[int]) -> dict[int, Target]:
    """The sensors with their profiles; a broken profile is kept as its error."""
    out: dict[int, Target] = {}
    location = _locations(conn, sensor_ids)
    for sid, uid, qty, unit, gw, site, spec, pid in conn.execute(_PROFILE_SQL, (sensor_ids,)):
        info = SensorInfo(sid, uid, qty, unit, gw, site, location.get(sid))
        try:
            out[sid] = Target(info, profile_from_dict(spec) if spec else None, pid)
        except ProfileError as err:  # one bad profile must not stop the other sensors
            out[sid] = Target(info, None, pid, err)
    return out


def _locations(conn: Conn, sensor_ids: list[int]) -> dict[int, str]:
    """Current ERP location names of the sensors, when the ERP schema is there."""
    (exists,) = conn.execute("SELECT to_regclass('erp.sensor_assignments') IS NOT NULL").fetchone()  # type: ignore[misc]
    if not exists:
        return {}
    rows = conn.execute(
        "SELECT sa.sensor_id, l.name FROM erp.sensor_assignments sa "
        "JOIN erp.locations l ON l.id = sa.location_id "
        "WHERE sa.sensor_id = ANY(%s) AND sa.valid_to IS NULL",
        (sensor_ids,),
    ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}
