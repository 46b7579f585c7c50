"""Run the Alembic migration history programmatically (no alembic.ini needed).

``upgrade`` connects as the schema owner, migrates, then applies the declared privileges
of the application and reader roles (``db.privileges``): after every upgrade,
so a table a migration adds is covered the moment it exists.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql

from db import privileges
from db.roles import DatabaseRoles
from db.settings import alembic_url

MIGRATIONS = Path(__file__).parent / "migrations"
DROP_ATTEMPTS = 50  # 5 s for sessions that are closing to go
COPY_ATTEMPTS = 20  # PostgreSQL itself waits 5 s for other sessions at each
log = logging.getLogger(__name__)


def alembic_config(sqlalchemy_url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    return cfg


def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` if it does not exist; True if created."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    name = str(info.get("dbname", ""))
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def upgrade(
    url: str,
    sqlalchemy_url: str | None = None,
    revision: str = "head",
    *,
    roles: DatabaseRoles | None = None,
) -> list[privileges.DbObject]:
    """Create the database if needed, migrate it to ``revision`` and apply the privileges.

    ``url`` is the owner's login. ``roles`` default to ``coldtrace_app``/``coldtrace_reader``;
    they must exist (RolesError otherwise). Returns the objects the privilege declaration
    does not list (denied to everyone but the owner), which are also logged.
    """
    ensure_database(url)
    command.upgrade(alembic_config(sqlalchemy_url or alembic_url(url)), revision)
    with psycopg.connect(url, autocommit=True) as conn:
        missing = privileges.apply(conn, roles or DatabaseRoles())
    for obj in missing:
        log.warning(
            "%s %s is not in db/grants.py: only the owner may use it",
            *(obj.kind, obj.name),
        )
    return missing


def mark_template(url: str, *, superuser_url: str | None = None) -> bool:
    """Make the database named in ``url`` a template that copies never wait for; True if so.

    ``CREATE DATABASE … TEMPLATE`` fails while any session is connected to the template
    ("source database is being accessed by other users", after waiting 5 s). TimescaleDB
    keeps a background scheduler connected to each database with the extension, and on
    that very statement restarts the template's scheduler, which waits for the copy to
    finish while the copy waits for it to leave. A database that allows no connections
    gets no restart and no scheduler (the restart is skipped, the launcher passes it by),
    so this sets ``ALLOW_CONNECTIONS false`` and ends the sessions still there: the
    scheduler started when the migration created the extension, a superuser's process
    (``superuser_url``, a login to any database of the cluster, may end it). If they
    cannot be ended, connections are allowed again and False returned: copies then retry
    as before (``copy_database``).
    """
    name = str(psycopg.conninfo.conninfo_to_dict(url).get("dbname", ""))
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    allow = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(allow.format(sql.Identifier(name), sql.SQL("false")))
    ender = psycopg.conninfo.make_conninfo(superuser_url or url, dbname="postgres")
    with psycopg.connect(ender, autocommit=True) as conn:
        for _ in range(DROP_ATTEMPTS):
            try:
                left = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                ).fetchall()
            except psycopg.errors.InsufficientPrivilege:
                break
            if not left:
                return True
            time.sleep(0.1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(allow.format(sql.Identifier(name), sql.SQL("true")))
    log.warning("sessions on template %s could not be ended: copies may wait for them", name)
    return False


def copy_database(template_url: str, name: str) -> None:
    """Create database ``name`` as a copy of the database in ``template_url``.

    Retries while another session is leaving the template (PostgreSQL waits 5 s each time;
    ``mark_template`` makes sure none is there).
    """
    template = str(psycopg.conninfo.conninfo_to_dict(template_url).get("dbname", ""))
    admin = psycopg.conninfo.make_conninfo(template_url, dbname="postgres")
    create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(template)
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        for attempt in range(1, COPY_ATTEMPTS + 1):
            try:
                conn.execute(create)
                break
            except psycopg.errors.ObjectInUse as err:
                if attempt == COPY_ATTEMPTS:
                    raise
                log.warning("copy of %s, attempt %d: %s", template, attempt, err)


def drop_database(url: str) -> None:
    """Drop the database named in ``url`` (tests and demo clean-up)."""
    name = str(psycopg.conninfo.conninfo_to_dict(url).get("dbname", ""))
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin, autocommit=True) as conn:
        # A session another role just closed can outlive its client for a moment, and
        # FORCE may not end a superuser's session: wait for it to go rather than fail.
        for _ in range(DROP_ATTEMPTS - 1):
            try:
                conn.execute(drop)
            except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
                time.sleep(0.1)
            else:
                return
        conn.execute(drop)
