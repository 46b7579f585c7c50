"""Readings are immutable: no UPDATE, no DELETE but the audited retention; and the CLI's
acting user is the operating-system account, never a name given on the command line."""

from __future__ import annotations

import os
import pwd
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from erp_core.audit.service import set_actor, verify

OS_USER = f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
OLD = datetime(2020, 1, 1, tzinfo=UTC)


def sensor_with_readings(db_url: str, uid: str, start: datetime, n: int) -> int:
    with psycopg.connect(db_url) as conn:
        (sid,) = conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
            " VALUES (%s, 'temperature', 'Cel', 'gw-1')"
            " RETURNING id",
            (uid,),
        ).fetchone()
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value)"
            " SELECT %s + i * interval '1 minute', %s, 5.0 FROM generate_series(0, %s - 1) i",
            (start, sid, n),
        )
    return int(sid)


def count(db_url: str, sensor: int) -> int:
    with psycopg.connect(db_url) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM telemetry.readings WHERE sensor_id = %s", (sensor,)
        ).fetchone()
    return int(n)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE telemetry.readings SET value = 99",
        "DELETE FROM telemetry.readings",
        "TRUNCATE telemetry.readings",
    ],
)
def test_not_even_the_owner_changes_or_deletes_a_reading(
    db_url: str, owner_db_url: str, statement: str
) -> None:
    sensor = sensor_with_readings(db_url, "T-1", OLD, 10)
    with psycopg.connect(owner_db_url) as conn, pytest.raises(errors.InsufficientPrivilege) as err:
        conn.execute(statement)
    assert "retention" in str(err.value)
    with psycopg.connect(db_url) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)  # the application role: no privilege at all
    assert count(db_url, sensor) == 10


def test_retention_deletes_through_the_owner_function_and_records_what_went(db_url: str) -> None:
    old = sensor_with_readings(db_url, "T-OLD", OLD, 30)
    recent = sensor_with_readings(db_url, "T-NEW", datetime.now(UTC) - timedelta(hours=1), 5)
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="cli:ops", reason="5-year retention")
        (n,) = conn.execute(
            "SELECT erp.retention_run(%s, %s)", (datetime(2021, 1, 1, tzinfo=UTC), "RITM-1")
        ).fetchone()
    assert n == 30
    assert (count(db_url, old), count(db_url, recent)) == (0, 5)
    with psycopg.connect(db_url) as conn:
        entry = conn.execute(
            "SELECT action, row_key, old_values, actor, reason, db_role FROM erp.audit_log"
            " WHERE table_name = 'telemetry.readings'"
        ).fetchone()
        assert verify(conn).ok
    action, key, what, actor, reason, db_role = entry
    assert (action, actor, reason, db_role) == ("DELETE", "cli:ops", "RITM-1", "coldtrace_app")
    assert datetime.fromisoformat(key["cutoff"]) == datetime(2021, 1, 1, tzinfo=UTC)
    assert what["deleted"] == 30
    assert datetime.fromisoformat(what["first"]) == OLD
    assert datetime.fromisoformat(what["last"]) == OLD + timedelta(minutes=29)
    assert what["sensors"] == {
        str(old): {
            "n": 30,
            "first": what["first"],
            "last": what["last"],
        }
    }


@pytest.mark.parametrize(
    ("actor", "cutoff", "reason", "error"),
    [
        (None, OLD, "why", errors.InsufficientPrivilege),  # nobody named
        ("cli:ops", OLD, " ", errors.InvalidParameterValue),  # no reason
        ("cli:ops", datetime(2999, 1, 1, tzinfo=UTC), "why", errors.InvalidParameterValue),
    ],
)
def test_retention_refuses_without_user_reason_or_with_a_future_cutoff(
    db_url: str, actor: str | None, cutoff: datetime, reason: str, error: type[Exception]
) -> None:
    sensor = sensor_with_readings(db_url, "T-1", OLD, 3)
    with psycopg.connect(db_url) as conn:
        if actor:
            set_actor(conn, user=actor)
        with pytest.raises(error):
            conn.execute("SELECT erp.retention_run(%s, %s)", (cutoff, reason))
    assert count(db_url, sensor) == 3


def test_retention_command_names_the_os_user(db_url: str) -> None:
    sensor = sensor_with_readings(db_url, "T-1", OLD, 4)
    result = CliRunner().invoke(
        cli,
        ["db", "retention", "--before", "2021-01-01T00:00Z", "--reason", "RITM-2"],
        env={"COLDTRACE_DATABASE_URL": db_url, "USER": "qa-lena", "LOGNAME": "qa-lena"},
    )
    assert result.exit_code == 0, result.output
    assert "4 readings deleted" in result.output
    assert count(db_url, sensor) == 0
    with psycopg.connect(db_url) as conn:
        (actor,) = conn.execute(
            "SELECT actor FROM erp.audit_log WHERE table_name = 'telemetry.readings'"
        ).fetchone()
    assert actor == OS_USER


def test_the_cli_actor_is_the_os_account_and_cannot_be_chosen(db_url: str) -> None:
    env = {
        "COLDTRACE_DATABASE_URL": db_url,
        "COLDTRACE_NEW_USER_PASSWORD": "Quality-First-2026",
        "USER": "qa-lena",  # getpass.getuser() would believe these
        "LOGNAME": "qa-lena",
    }
    args = ["users", "add", "--username", "ida", "--full-name", "Ida Admin", "--role", "admin"]
    refused = CliRunner().invoke(cli, [*args, "--actor", "qa-lena"], env=env)
    assert refused.exit_code == 2
    assert "No such option" in refused.output
    done = CliRunner().invoke(cli, args, env=env)
    assert done.exit_code == 0, done.output
    with psycopg.connect(db_url) as conn:
        actors = {
            r[0]
            for r in conn.execute(
                "SELECT actor FROM erp.audit_log WHERE table_name LIKE 'erp.user%'"
            ).fetchall()
        }
    assert actors == {OS_USER}
