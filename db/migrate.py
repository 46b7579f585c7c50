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


def mark_template(url: str) -> None:
    """Make the database named in ``url`` a template that copies are made from.

    A template (``IS_TEMPLATE``) is what TimescaleDB's scheduler stays out of: on
    ``CREATE DATABASE … TEMPLATE`` TimescaleDB restarts the template's scheduler, and a
    scheduler that reconnects to an ordinary database makes the copy fail ("source
    database is being accessed by other users"); in a template it exits at once.
    """
    name = str(psycopg.conninfo.conninfo_to_dict(url).get("dbname", ""))
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE true").format(sql.Identifier(name)))


def copy_database(template_url: str, name: str) -> None:
    """Create database ``name`` as a copy of the database in ``template_url``.

    Retries while another session is leaving the template (PostgreSQL waits 5 s each time).
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
    """Drop the database named in ``url`` (tests and demo clean-up), a template too."""
    name = str(psycopg.conninfo.conninfo_to_dict(url).get("dbname", ""))
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s AND datistemplate", (name,)
        ).fetchone():
            conn.execute(
                sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name))
            )
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
