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
