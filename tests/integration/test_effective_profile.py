"""A sensor's effective alarm profile is one SQL definition that every reader sees alike.

Its own profile, else the default of its quantity (``telemetry.sensor_effective_profiles``,
migration 0022). The evaluator (``ingest.eval_target``), the notifier's coverage figure
(``ingest.notify.admin.required_people``) and the ERP's location compliance
(``erp_core.compliance.service``) must all see the same profile, also after a sensor's
profile and the quantity's default change. Each profile here has its own
``min_recipients``, so the notifier's per-site figure names the profile it saw.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import psycopg

from coldchain.profiles import AlarmProfile
from erp_core.audit.service import set_actor
from erp_core.compliance import service as compliance
from erp_core.masterdata import service as master
from erp_core.masterdata.models import AssignmentIn, LocationIn
from ingest.eval_target import load_targets
from ingest.notify.admin import required_people

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def add_profile(conn: psycopg.Connection, name: str, min_recipients: int) -> int:
    spec = AlarmProfile(name=name, low=2, high=8, min_recipients=min_recipients).to_dict()
    row = conn.execute(
        "INSERT INTO telemetry.alarm_profiles (name, spec) VALUES (%s, %s) RETURNING id",
        (name, json.dumps(spec)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_sensor(conn: psycopg.Connection, uid: str, site: str, quantity: str) -> int:
    conn.execute("INSERT INTO telemetry.gateways (id, site) VALUES (%s, %s)", (f"gw-{site}", site))
    row = conn.execute(
        "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id) "
        "VALUES (%s, %s, 'Cel', %s) RETURNING id",
        (uid, quantity, f"gw-{site}"),
    ).fetchone()
    assert row is not None
    return int(row[0])


def fridge_with(conn: psycopg.Connection, code: str, sensor_id: int) -> int:
    site = master.create_location(
        conn, location=LocationIn(code=f"S-{code}", name=code, kind="site")
    ).id
    fridge = master.create_location(
        conn, location=LocationIn(code=code, name=code, kind="fridge", parent_id=site)
    ).id
    master.assign_sensor(
        conn,
        assignment=AssignmentIn(
            sensor_id=sensor_id, location_id=fridge, valid_from=NOW - timedelta(days=1)
        ),
    )
    return fridge


def seen(conn: psycopg.Connection, db_url: str, sensors: dict[str, int], fridges: dict[str, int]):
    """Per sensor: (evaluator's profile, notifier's min_recipients, compliance's profiles)."""
    targets = load_targets(conn, list(sensors.values()))

    async def people() -> dict[str | None, int]:
        async with await psycopg.AsyncConnection.connect(db_url) as aconn:
            return await required_people(aconn)

    conn.commit()  # the notifier reads on a connection of its own
    set_actor(conn, user="test")
    required = asyncio.run(people())
    out = {}
    for name, sid in sensors.items():
        profile = targets[sid].profile
        checked = (
            compliance.check_location(conn, location_id=fridges[name], now=NOW).profiles
            if name in fridges
            else None
        )
        out[name] = (profile.name if profile else None, required.get(f"site-{name}"), checked)
    return out


def test_evaluator_notifier_and_compliance_see_the_same_effective_profile(
    db_url: str, owner_db_url: str
) -> None:
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test")
        own = add_profile(conn, "own", 3)
        other = add_profile(conn, "other", 5)
        new_default = add_profile(conn, "new-default", 4)
        (old_default,) = conn.execute(
            "SELECT (spec->>'min_recipients')::int FROM telemetry.alarm_profiles "
            "WHERE default_for_quantity = 'temperature'"
        ).fetchone()
        sensors = {
            "a": add_sensor(conn, "a", "site-a", "temperature"),  # its own profile
            "b": add_sensor(conn, "b", "site-b", "temperature"),  # the default
            "h": add_sensor(conn, "h", "site-h", "humidity"),  # none at all
        }
        conn.execute(
            "INSERT INTO telemetry.sensor_profiles (sensor_id, profile_id) VALUES (%s, %s)",
            (sensors["a"], own),
        )
        fridges = {n: fridge_with(conn, n.upper(), sensors[n]) for n in ("a", "b")}

        assert seen(conn, db_url, sensors, fridges) == {
            "a": ("own", 3, ["own"]),
            "b": ("fridge-2-8", old_default, ["fridge-2-8"]),
            "h": (None, None, None),
        }

        # Another profile for a, another default for temperature.
        conn.execute(
            "UPDATE telemetry.sensor_profiles SET profile_id = %s WHERE sensor_id = %s",
            (other, sensors["a"]),
        )
        conn.execute(
            "UPDATE telemetry.alarm_profiles SET default_for_quantity = NULL "
            "WHERE default_for_quantity = 'temperature'"
        )
        conn.execute(
            "UPDATE telemetry.alarm_profiles SET default_for_quantity = 'temperature' "
            "WHERE id = %s",
            (new_default,),
        )
        assert seen(conn, db_url, sensors, fridges) == {
            "a": ("other", 5, ["other"]),
            "b": ("new-default", 4, ["new-default"]),
            "h": (None, None, None),
        }

        # Without a profile of its own, a falls back to the default too.
        conn.commit()
        with psycopg.connect(owner_db_url) as owner:  # the application role never deletes
            owner.execute(
                "DELETE FROM telemetry.sensor_profiles WHERE sensor_id = %s", (sensors["a"],)
            )
        set_actor(conn, user="test")
        assert seen(conn, db_url, sensors, fridges) == {
            "a": ("new-default", 4, ["new-default"]),
            "b": ("new-default", 4, ["new-default"]),
            "h": (None, None, None),
        }
        rows = conn.execute(
            "SELECT sensor_id, profile_name, is_default FROM telemetry.sensor_effective_profiles "
            "WHERE sensor_id = ANY(%s) ORDER BY sensor_id",
            (list(sensors.values()),),
        ).fetchall()
        assert rows == [(sensors["a"], "new-default", True), (sensors["b"], "new-default", True)]
        conn.rollback()
