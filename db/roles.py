"""The three database roles and the one-time step that creates them.

* the **owner** (e.g. ``coldtrace``) owns every schema object and runs the migrations;
* the **application** role (``coldtrace_app``) is what ingest, the API, the ERP jobs and
  the notifier log in as: it owns nothing, so it cannot ALTER a table, disable a
  trigger or GRANT, and it holds only the privileges of ``db.grants``;
* the **reader** (``coldtrace_reader``) is Grafana's and the reports': SELECT on what
  they show, nothing else.

Roles belong to the PostgreSQL cluster, not to one database, so creating them needs a
login with CREATEROLE (or a superuser) once: ``coldtrace db roles`` (or
``scripts/services.sh`` on a development machine, the init script in docker-compose).
Before privileges are applied, ``problems`` checks that the application and reader roles
really are unprivileged: neither superuser nor able to create roles or databases nor a
member of the owner (else every grant below would be void).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql


class RolesError(Exception):
    """The roles are missing or not least-privileged; the message says what to do."""


@dataclass(frozen=True, slots=True)
class DatabaseRoles:
    """The names of the application and reader roles (the owner is whoever migrates)."""

    app: str = "coldtrace_app"
    reader: str = "coldtrace_reader"


def problems(conn: psycopg.Connection[Any], roles: DatabaseRoles) -> list[str]:
    """What is wrong with the roles, seen from the owner's connection ([] when all is well)."""
    found: list[str] = []
    owner = conn.execute("SELECT current_user").fetchone()
    owner_name = str(owner[0]) if owner else ""
    for role in (roles.app, roles.reader):
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication,"
            " pg_has_role(oid, %s, 'MEMBER'), rolcanlogin FROM pg_roles WHERE rolname = %s",
            (owner_name, role),
        ).fetchone()
        if row is None:
            found.append(
                f"role {role} does not exist: create the roles once with `coldtrace db roles` "
                "(a login with CREATEROLE) or scripts/services.sh"
            )
            continue
        flags = ("SUPERUSER", "CREATEROLE", "CREATEDB", "BYPASSRLS", "REPLICATION")
        for flag, on in zip(flags, row[:5], strict=True):
            if on:
                found.append(f"role {role} has {flag}: ALTER ROLE {role} NO{flag}")
        if row[5]:
            found.append(f"role {role} is a member of the owner {owner_name}: REVOKE it")
        if not row[6]:
            found.append(f"role {role} cannot log in: ALTER ROLE {role} LOGIN")
    if owner_name in (roles.app, roles.reader):
        found.append(f"the application/reader role must not be the owner {owner_name}")
    return found


def create(
    conn: psycopg.Connection[Any],
    *,
    owner: str,
    roles: DatabaseRoles,
    passwords: dict[str, str | None],
) -> list[str]:
    """Create (or repair) the owner, application and reader roles; return what was done.

    Run by a login with CREATEROLE. Existing roles keep their password unless one is
    given; the application and reader roles lose any dangerous attribute or membership.
    """
    done: list[str] = []
    for name, extra in ((owner, "CREATEDB"), (roles.app, ""), (roles.reader, "")):
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        ident = sql.Identifier(name)
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN " + extra).format(ident))
            done.append(f"created role {name}")
        password = passwords.get(name)
        if password:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password)))
            done.append(f"set the password of {name}")
        if name != owner:
            conn.execute(
                sql.SQL(
                    "ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "NOBYPASSRLS"
                ).format(ident)
            )
            for (granted,) in conn.execute(
                "SELECT r.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid"
                " JOIN pg_roles u ON u.oid = a.member WHERE u.rolname = %s",
                (name,),
            ).fetchall():
                conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(granted), ident))
                done.append(f"revoked membership of {granted} from {name}")
    # Grafana sends each panel's SQL as it is, with no session settings of its own. On a
    # big readings table the planner's cost estimates switch JIT compilation on, which
    # alone takes most of a second for queries that run in tens of milliseconds
    # (docs/grafana.md, "Downsampling"); the API turns it off per transaction.
    conn.execute(sql.SQL("ALTER ROLE {} SET jit = off").format(sql.Identifier(roles.reader)))
    return done
