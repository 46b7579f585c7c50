"""Apply the declared privileges (``db.grants``) and compare them with the database.

``apply`` runs as the owner after every migration (``coldtrace db upgrade``), in one
transaction: revoke everything from PUBLIC and the application and reader roles on the
schemas and every table, view, sequence and function in them, then grant exactly what
the declaration says. Deny by default: an object nobody declared is usable by the owner
only, so a forgotten table breaks loudly (and the declaration test names it) instead of
being open.

Why not ``ALTER DEFAULT PRIVILEGES`` alone: default privileges fix one set of grants per
object *kind* at creation time, so a new protected table would get the same UPDATE and
DELETE as an ordinary one (or every table would be append-only); they apply only to
objects created by the role named, change nothing on existing objects, and leave no
reviewable list. They are used here for one thing: new functions get no EXECUTE for
PUBLIC until the next ``apply`` grants what is declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from db import grants
from db.roles import DatabaseRoles, RolesError, problems

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

_KIND = {"r": "table", "p": "table", "v": "view", "m": "view", "f": "table", "S": "sequence"}

_RELATIONS = """
SELECT c.relkind::text, n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   -- identity sequences go with their table; extension members are the extension's
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype IN ('i', 'e'))
 ORDER BY 2
"""

_ROUTINES = """
SELECT 'function', p.oid::regprocedure::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY(%(schemas)s)
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                      AND d.deptype = 'e')
 ORDER BY 2
"""


@dataclass(frozen=True, slots=True)
class DbObject:
    """One object of the declared schemas: ``kind`` is table, view, sequence or function."""

    kind: str
    name: str


def objects(conn: psycopg.Connection[Any]) -> list[DbObject]:
    """Every table, view, sequence and function of the declared schemas, as named in grants."""
    with conn.transaction():
        # Print routine signatures fully qualified, as the declaration writes them.
        conn.execute("SET LOCAL search_path = pg_catalog")
        params = {"schemas": list(grants.SCHEMAS)}
        rows = conn.execute(_RELATIONS, params).fetchall()
        rows += conn.execute(_ROUTINES, params).fetchall()
    return [DbObject(_KIND.get(str(k), str(k)), str(n)) for k, n in rows]


def _declared(obj: DbObject) -> grants.Grant | None:
    if obj.kind == "function":
        return grants.FUNCTIONS.get(obj.name)
    if obj.kind == "sequence":
        return grants.SEQUENCES.get(obj.name)
    return grants.TABLES.get(obj.name)


def undeclared(conn: psycopg.Connection[Any]) -> list[DbObject]:
    """Objects in the database that ``db.grants`` does not list."""
    return [o for o in objects(conn) if _declared(o) is None]


def stale(conn: psycopg.Connection[Any]) -> list[str]:
    """Declared objects (not marked optional) that the database does not have."""
    present = {o.name for o in objects(conn)}
    declared = {**grants.TABLES, **grants.SEQUENCES, **grants.FUNCTIONS}
    return sorted(n for n, g in declared.items() if n not in present and not g.optional)


def _privs(privileges: frozenset[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL(p) for p in sorted(privileges))


def _grant(kind: str, name: str, privileges: frozenset[str], role: str) -> sql.Composed:
    target = {
        "function": sql.SQL("ROUTINE {}").format(sql.SQL(name)),  # a regprocedure text
        "sequence": sql.SQL("SEQUENCE {}").format(sql.Identifier(*name.split(".", 1))),
    }.get(kind, sql.SQL("TABLE {}").format(sql.Identifier(*name.split(".", 1))))
    return sql.SQL("GRANT {} ON {} TO {}").format(_privs(privileges), target, sql.Identifier(role))


def statements(present: list[DbObject], roles: DatabaseRoles) -> list[sql.Composed]:
    """The REVOKE/GRANT statements that make the privileges what the declaration says."""
    app, reader = sql.Identifier(roles.app), sql.Identifier(roles.reader)
    out: list[sql.Composed] = [
        sql.SQL("ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON ROUTINES FROM PUBLIC").format(),
    ]
    for schema in grants.SCHEMAS:
        s = sql.Identifier(schema)
        out += [
            sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC, {}, {}").format(s, app, reader),
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}").format(s, app, reader),
        ]
        for kind in ("TABLES", "SEQUENCES", "ROUTINES"):
            out.append(
                sql.SQL("REVOKE ALL ON ALL {} IN SCHEMA {} FROM PUBLIC, {}, {}").format(
                    sql.SQL(kind), s, app, reader
                )
            )
    for obj in present:
        grant = _declared(obj)
        if grant is None:
            continue  # deny by default; the declaration test names it
        for role, privileges in ((roles.app, grant.app), (roles.reader, grant.reader)):
            if privileges:
                out.append(_grant(obj.kind, obj.name, privileges, role))
    return out


def apply(conn: psycopg.Connection[Any], roles: DatabaseRoles) -> list[DbObject]:
    """Make the privileges of ``roles`` exactly the declared ones; return undeclared objects.

    Runs as the owner, in one transaction (sessions see the old or the new privileges,
    never a mix). Raises RolesError when a role is missing or is not least-privileged.
    """
    found = problems(conn, roles)
    if found:
        raise RolesError("; ".join(found))
    present = objects(conn)
    with conn.transaction():
        for statement in statements(present, roles):
            conn.execute(statement)
        _database_access(conn, roles)
    return [o for o in present if _declared(o) is None]


def _database_access(conn: psycopg.Connection[Any], roles: DatabaseRoles) -> None:
    """Only the roles connect (and only the app makes temporary tables), if we own the DB."""
    row = conn.execute(
        "SELECT current_database(), pg_get_userbyid(datdba) = current_user"
        " FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    if row is None or not row[1]:
        return  # created by someone else (an init script as superuser): theirs to restrict
    db = sql.Identifier(str(row[0]))
    app, reader = sql.Identifier(roles.app), sql.Identifier(roles.reader)
    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC, {}, {}").format(db, app, reader))
    conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, app))
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, reader))


def held(conn: psycopg.Connection[Any], role: str) -> dict[str, frozenset[str]]:
    """The privileges ``role`` actually holds on each object (directly or through PUBLIC)."""
    result: dict[str, frozenset[str]] = {}
    for obj in objects(conn):
        if obj.kind == "function":
            checks: tuple[str, ...] = ("EXECUTE",)
            query = "SELECT has_function_privilege(%s, %s::regprocedure, %s)"
        elif obj.kind == "sequence":
            checks = ("USAGE", "SELECT", "UPDATE")
            query = "SELECT has_sequence_privilege(%s, %s::regclass, %s)"
        else:
            checks = TABLE_PRIVILEGES
            query = "SELECT has_table_privilege(%s, %s::regclass, %s)"
        result[obj.name] = frozenset(
            p for p in checks if (r := conn.execute(query, (role, obj.name, p)).fetchone()) and r[0]
        )
    return result


def declared(role_kind: str) -> dict[str, frozenset[str]]:
    """What the declaration gives the ``app`` or ``reader`` role, per object name."""
    everything = {**grants.TABLES, **grants.SEQUENCES, **grants.FUNCTIONS}
    return {name: getattr(g, role_kind) for name, g in everything.items()}
