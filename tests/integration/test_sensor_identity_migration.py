"""Migration 0015: sensors without a gateway get one where the evidence is unambiguous.

A fresh database is migrated to 0014, given sensors registered by hand (no gateway) and
gateways with their last state messages, then upgraded: each sensor is given the one
gateway that reports it, or the only gateway there is, or ``(unassigned)``; afterwards
a device id may exist once per gateway, and a sensor must name its gateway.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from db import migrate
from db.settings import DatabaseSettings
from tests.fix_services import ADMIN_URL


@pytest.fixture
def at_0014() -> Iterator[str]:
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/ct_mig_{uuid.uuid4().hex[:10]}"
    migrate.upgrade(url, DatabaseSettings(url=url).sqlalchemy_url, "0014")
    yield url
    migrate.drop_database(url)


def upgrade(url: str) -> None:
    migrate.upgrade(url, DatabaseSettings(url=url).sqlalchemy_url, "0015")


def state(*sensors: str) -> str:
    return json.dumps({"gateway": "x", "sensors": [{"sensor": s, "last_t": 1} for s in sensors]})


def test_backfill_uses_the_gateway_that_reports_the_device(at_0014: str) -> None:
    with psycopg.connect(at_0014) as conn:
        conn.execute(
            "INSERT INTO telemetry.gateways (id, site, state) VALUES"
            " ('gw-a', 'p', %s::jsonb), ('gw-b', 'p', %s::jsonb), ('gw-c', 'p', NULL)",
            (state("F-1", "SHARED"), state("F-2", "SHARED")),
        )
        conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id) VALUES"
            " ('F-1', 'temperature', 'Cel', NULL), ('F-2', 'temperature', 'Cel', NULL),"
            " ('SHARED', 'temperature', 'Cel', NULL), ('LOOSE', 'temperature', 'Cel', NULL),"
            " ('F-9', 'temperature', 'Cel', 'gw-c')"
        )
    upgrade(at_0014)
    with psycopg.connect(at_0014) as conn:
        rows = dict(conn.execute("SELECT uid, gateway_id FROM telemetry.sensors").fetchall())
        assert rows == {
            "F-1": "gw-a",
            "F-2": "gw-b",
            "SHARED": "(unassigned)",  # two gateways report it: no guess
            "LOOSE": "(unassigned)",
            "F-9": "gw-c",  # untouched
        }
        # one device id per gateway, now; the same id under another gateway is another sensor
        conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
            " VALUES ('F-1', 'temperature', 'Cel', 'gw-b')"
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
                " VALUES ('F-1', 'temperature', 'Cel', 'gw-a')"
            )
        conn.rollback()
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute(
                "INSERT INTO telemetry.sensors (uid, quantity, unit) VALUES ('X', 'humidity', '%')"
            )


def test_backfill_of_a_single_gateway_plant(at_0014: str) -> None:
    with psycopg.connect(at_0014) as conn:
        conn.execute("INSERT INTO telemetry.gateways (id, site) VALUES ('gw-only', 'p')")
        conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit) VALUES ('F-1', 'humidity', '%')"
        )
    upgrade(at_0014)
    with psycopg.connect(at_0014) as conn:
        assert conn.execute("SELECT gateway_id FROM telemetry.sensors").fetchall() == [("gw-only",)]
