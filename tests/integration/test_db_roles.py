"""Least-privilege roles against the real database: what the application role cannot do.

Every statement here is one a compromised service (or an insider with its password)
would try, sent as ``coldtrace_app`` — the login of ingest, the API, the jobs and the
notifier. The declaration in db/grants.py is also held against the database:
every object listed, nothing more granted than declared.
"""

from __future__ import annotations

import importlib.util
import uuid

import psycopg
import pytest
from psycopg import errors
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from db import grants, migrate, privileges
from db.roles import DatabaseRoles, problems
from erp_core.audit.service import set_actor
from tests.fix_services import as_login
from tests.integration.access_helpers import add_user

APP = "coldtrace_app"
READER = "coldtrace_reader"

REFUSED_TO_THE_APP = [
    # the audit trail and its head
    "UPDATE erp.audit_log SET actor = 'mallory'",
    "DELETE FROM erp.audit_log",
    "TRUNCATE erp.audit_log",
    (
        "INSERT INTO erp.audit_log (seq, at, table_name, action, row_key, actor, prev_hash, hash)"
        " VALUES (999, now(), 'erp.lots', 'INSERT', '{}', 'mallory', 'x', 'y')"
    ),
    "UPDATE erp.audit_head SET seq = 0",
    "SELECT erp.audit_append('erp.lots', 'UPDATE', '{}', NULL, NULL, 'qa-lena', 'forged')",
    # signatures, readings, release decisions, movements
    "UPDATE erp.signatures SET meaning = 'Released'",
    "DELETE FROM erp.signatures",
    "UPDATE telemetry.readings SET value = 5",
    "DELETE FROM telemetry.readings",
    "TRUNCATE telemetry.readings",
    "SELECT erp.retention_delete(now(), 'everything', 'infinity')",
    "UPDATE erp.release_decisions SET verdict = 'allowed'",
    "DELETE FROM erp.release_decisions",
    "UPDATE erp.stock_movements SET quantity = 1",
    "DELETE FROM erp.login_attempts",
    # alert events are appended only by ingest's functions (migration 0023)
    "INSERT INTO telemetry.alert_events (alert_id, event) VALUES (1, 'closed')",
    "DELETE FROM telemetry.alert_events",
    "ALTER TABLE telemetry.alerts DISABLE TRIGGER alerts_lifecycle_guard",
    # the schema: alter, disable triggers, grant, create, become the owner
    "ALTER TABLE erp.audit_log DISABLE TRIGGER audit_log_append_only",
    "ALTER TABLE erp.user_roles DISABLE TRIGGER user_roles_separation",
    "ALTER TABLE telemetry.readings DISABLE TRIGGER readings_immutable",
    "ALTER TABLE erp.signatures DROP CONSTRAINT signatures_algorithm",
    "ALTER TABLE erp.lots ADD COLUMN note text",
    "DROP TRIGGER signatures_keyed ON erp.signatures",
    "CREATE TABLE erp.shadow (id int)",
    "CREATE FUNCTION erp.audit_hash_fake() RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$",
    "CREATE TRIGGER t BEFORE INSERT ON erp.lots FOR EACH ROW EXECUTE FUNCTION erp.forbid('x')",
    "SET ROLE coldtrace",
    "SET session_replication_role = replica",
]


@pytest.mark.parametrize("statement", REFUSED_TO_THE_APP)
def test_the_application_role_is_refused(db_url: str, statement: str) -> None:
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="mallory", reason="tampering")
        with pytest.raises((errors.InsufficientPrivilege, errors.InvalidParameterValue)):
            conn.execute(statement)


def test_the_application_role_cannot_grant_itself_anything(db_url: str) -> None:
    """GRANT by a non-owner only warns ("no privileges were granted"): nothing changes."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for statement in (
            "GRANT UPDATE, DELETE ON erp.audit_log TO coldtrace_app",
            "GRANT ALL ON telemetry.readings TO coldtrace_app",
            "GRANT UPDATE ON erp.signatures TO PUBLIC",
        ):
            conn.execute(statement)
        held = conn.execute(
            "SELECT has_table_privilege('erp.audit_log', 'UPDATE'),"
            " has_table_privilege('telemetry.readings', 'DELETE'),"
            " has_table_privilege('erp.signatures', 'UPDATE')"
        ).fetchone()
        assert held == (False, False, False)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("UPDATE erp.audit_log SET actor = 'mallory'")


def test_separation_of_duties_holds_for_the_application_role(db_url: str) -> None:
    """The trigger the issue found the owner could disable is out of the app's reach."""
    user = add_user(db_url, "ida", ["admin"], "adm-Pass-4711!")
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="mallory", reason="sneak in qa_manager")
        with pytest.raises(errors.CheckViolation):
            conn.execute(
                "INSERT INTO erp.user_roles (user_id, role, granted_at)"
                " VALUES (%s, 'qa_manager', now())",
                (user.id,),
            )


def test_the_reader_reads_what_reports_show_and_nothing_else(reader_db_url: str) -> None:
    with psycopg.connect(reader_db_url) as conn:
        conn.execute("SELECT count(*) FROM telemetry.readings").fetchone()
        conn.execute("SELECT count(*) FROM erp.lots").fetchone()
        conn.execute("SELECT count(*) FROM erp.audit_log").fetchone()
        conn.execute("SELECT * FROM erp.protected_ranges").fetchall()
    for statement in (
        "SELECT password_hash FROM erp.users",
        "SELECT * FROM erp.web_sessions",
        "SELECT email FROM telemetry.recipients",
        "INSERT INTO telemetry.readings (time, sensor_id, value) VALUES (now(), 1, 1)",
        "UPDATE erp.lots SET quantity = 0",
        "SELECT erp.retention_run(now(), 'x')",
    ):
        with psycopg.connect(reader_db_url) as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)


def test_every_object_is_declared(owner_db_url: str) -> None:
    """A table, view, sequence or function a migration adds must be in grants.py."""
    with psycopg.connect(owner_db_url, autocommit=True) as conn:
        missing = privileges.undeclared(conn)
        gone = privileges.stale(conn)
    assert not missing, (
        "objects without a declaration in db/grants.py (denied to the app until "
        "declared); add:\n" + "\n".join(grants.suggestion(o.kind, o.name) for o in missing)
    )
    assert not gone, f"declared in db/grants.py but not in the database: {gone}"


STOCK_DOMAINS = ("masterdata", "lots", "movements", "shipments", "lot_history", "edge_events")


def test_every_declared_object_names_its_owning_package() -> None:
    everything = {**grants.TABLES, **grants.SEQUENCES, **grants.FUNCTIONS}
    packages = {"ingest", "ingest.notify", "erp_core.audit", "erp_core.signatures"}
    packages |= {"erp_core.auth", "erp_core.release", "erp_core.deviations"}
    packages |= {"erp_core.production"}
    packages |= {f"erp_core.{d}" for d in STOCK_DOMAINS}
    assert {g.owner for g in everything.values()} <= packages
    # every owner is a package that exists (a renamed package leaves no stale owner)
    assert all(importlib.util.find_spec(g.owner) for g in everything.values())
    # Protected records: the application may never change or delete them.
    for name in (
        "erp.audit_log",
        "erp.audit_head",
        "erp.signatures",
        "telemetry.readings",
        "erp.release_decisions",
        "erp.stock_movements",
        "erp.login_attempts",
        "erp.material_issues",
    ):
        assert not grants.TABLES[name].app & {"UPDATE", "DELETE"}, name


@pytest.mark.parametrize(("kind", "role"), [("app", APP), ("reader", READER)])
def test_privileges_held_are_exactly_the_declared_ones(
    owner_db_url: str, kind: str, role: str
) -> None:
    with psycopg.connect(owner_db_url, autocommit=True) as conn:
        held = privileges.held(conn, role)
        public = privileges.held(conn, "public")
    want = privileges.declared(kind)
    assert {n: p for n, p in held.items() if p != want.get(n, frozenset())} == {}
    assert {n: p for n, p in public.items() if p} == {}  # PUBLIC: nothing at all


def test_a_table_nobody_declared_is_denied_to_the_application(
    owner_db_url: str, db_url: str
) -> None:
    """Deny by default: a later migration's table is the owner's until it is declared."""
    with psycopg.connect(owner_db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE telemetry.later_table (id int)")
        conn.execute("GRANT ALL ON telemetry.later_table TO coldtrace_app")  # a migration's slip
        undeclared = privileges.apply(conn, DatabaseRoles())
    assert [(o.kind, o.name) for o in undeclared] == [("table", "telemetry.later_table")]
    with psycopg.connect(db_url) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM telemetry.later_table")


def test_the_roles_are_least_privileged(owner_db_url: str, superuser_db_url: str) -> None:
    with psycopg.connect(owner_db_url) as conn:
        assert problems(conn, DatabaseRoles()) == []
    # A reader role that may act as the owner makes every grant void: refused.
    name = f"ct_bad_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(superuser_db_url, autocommit=True) as su:
        su.execute(f"CREATE ROLE {name} LOGIN IN ROLE coldtrace")
        try:
            with psycopg.connect(owner_db_url, autocommit=True) as conn:
                found = problems(conn, DatabaseRoles(app=APP, reader=name))
                with pytest.raises(migrate.privileges.RolesError, match="member of the owner"):
                    privileges.apply(conn, DatabaseRoles(app=APP, reader=name))
        finally:
            su.execute(f"DROP ROLE {name}")
    assert found == [f"role {name} is a member of the owner coldtrace: REVOKE it"]


def test_db_privileges_command_finds_no_difference(owner_db_url: str) -> None:
    result = CliRunner().invoke(
        cli, ["db", "privileges"], env={"COLDTRACE_DATABASE_OWNER_URL": owner_db_url}
    )
    assert result.exit_code == 0, result.output
    assert "exactly those declared" in result.output


def test_db_roles_creates_and_repairs_the_roles(superuser_db_url: str, owner_db_url: str) -> None:
    """`coldtrace db roles` is idempotent and takes away what a least-privileged role must
    not have (here: CREATEDB and membership of the owner, as a careless admin left them)."""
    suffix = uuid.uuid4().hex[:8]
    app, reader = f"ct_app_{suffix}", f"ct_reader_{suffix}"
    env = {
        "COLDTRACE_DATABASE_ADMIN_URL": superuser_db_url,
        "COLDTRACE_DATABASE_OWNER_URL": owner_db_url,
        "COLDTRACE_DATABASE_APP_ROLE": app,
        "COLDTRACE_DATABASE_READER_ROLE": reader,
        "COLDTRACE_DB_APP_PASSWORD": "app-secret-for-this-test",
    }
    with psycopg.connect(superuser_db_url, autocommit=True) as su:
        su.execute(f"CREATE ROLE {app} LOGIN CREATEDB IN ROLE coldtrace")
        try:
            first = CliRunner().invoke(cli, ["db", "roles"], env=env)
            assert first.exit_code == 0, first.output
            assert f"created role {reader}" in first.output
            assert f"revoked membership of coldtrace from {app}" in first.output
            again = CliRunner().invoke(cli, ["db", "roles"], env=env)
            assert again.exit_code == 0, again.output
            assert "created" not in again.output
            with psycopg.connect(owner_db_url) as conn:
                assert problems(conn, DatabaseRoles(app=app, reader=reader)) == []
                settings = conn.execute(
                    "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r"
                    " ON r.oid = s.setrole WHERE r.rolname = %s AND s.setdatabase = 0",
                    (reader,),
                ).fetchone()
            assert settings == (["jit=off"],), "Grafana's role compiles no JIT (db/roles.py)"
            with psycopg.connect(as_login(owner_db_url, f"{app}:app-secret-for-this-test")):
                pass  # the password was set
        finally:
            su.execute(f"DROP ROLE IF EXISTS {app}")
            su.execute(f"DROP ROLE IF EXISTS {reader}")


def test_db_upgrade_without_the_roles_says_what_to_do(owner_db_url: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["db", "upgrade"],
        env={
            "COLDTRACE_DATABASE_OWNER_URL": owner_db_url,
            "COLDTRACE_DATABASE_APP_ROLE": "ct_no_such_role",
            "COLUMNS": "250",
        },
    )
    assert result.exit_code == 1
    assert "role ct_no_such_role does not exist" in result.output
    assert "coldtrace db roles" in result.output
