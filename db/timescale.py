"""Whether the migrations may use TimescaleDB here, decided before anything is tried.

``CREATE EXTENSION timescaledb`` on a server that has the extension's files but does not
preload its library (the state right after installing the package, before tuning) is
answered with FATAL: the server closes the connection, no savepoint can catch it, and
the migration dies with ``PendingRollbackError``. So the probe asks first: is the
extension installed (``pg_available_extensions``), is its loader in
``shared_preload_libraries`` (readable by superusers and ``pg_read_all_settings``) — or,
for other roles, has the loader defined its settings in this session, which it does only
when preloaded. ``decide`` is the pure rule; ``probe`` reads the facts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

EXTENSION = "timescaledb"
# Defined by the loader's _PG_init only when it was preloaded (PGC_POSTMASTER).
LOADER_SETTING = "timescaledb.bgw_launcher_poll_time"


@dataclass(frozen=True, slots=True)
class Facts:
    """What the server says about TimescaleDB, as read by ``probe``."""

    created: bool  # the extension exists in this database
    available: bool  # its files are installed (pg_available_extensions)
    preload: str | None  # shared_preload_libraries, None when this role may not read it
    loader_present: bool  # the loader's own settings exist in this session


@dataclass(frozen=True, slots=True)
class Decision:
    """Use TimescaleDB (hypertable, compression, retention job) or plain tables, and why."""

    timescale: bool
    reason: str

    def summary(self) -> str:
        """One line for people: which storage telemetry.readings has, and why."""
        if self.timescale:
            return f"telemetry.readings: TimescaleDB hypertable, compressed ({self.reason})"
        return f"telemetry.readings: plain PostgreSQL table ({self.reason})"


def _preloaded(preload: str) -> bool:
    names = (part.strip().strip('"').rsplit("/", 1)[-1] for part in preload.split(","))
    return any(name in {EXTENSION, f"{EXTENSION}.so"} for name in names)


def decide(facts: Facts) -> Decision:
    """The path the migrations take (pure; see the module docstring)."""
    if facts.created:
        return Decision(timescale=True, reason="the timescaledb extension exists in this database")
    if not facts.available:
        return Decision(timescale=False, reason="timescaledb is not installed on this server")
    if facts.preload is not None:
        if _preloaded(facts.preload):
            return Decision(timescale=True, reason="timescaledb is installed and preloaded")
        return Decision(
            timescale=False,
            reason="timescaledb is installed but not in shared_preload_libraries "
            f"({facts.preload!r}); add it and restart PostgreSQL to use it",
        )
    if facts.loader_present:
        return Decision(timescale=True, reason="timescaledb is installed and its loader is running")
    return Decision(
        timescale=False,
        reason="timescaledb is installed but its loader is not running (not in "
        "shared_preload_libraries); add it and restart PostgreSQL to use it",
    )


PROBE = f"""
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = '{EXTENSION}'),
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = '{EXTENSION}'),
       (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'),
       current_setting('{LOADER_SETTING}', true) IS NOT NULL
"""  # noqa: S608 - constants


def _facts(row: tuple[object, ...]) -> Facts:
    preload = row[2]
    return Facts(
        created=bool(row[0]),
        available=bool(row[1]),
        preload=None if preload is None else str(preload),
        loader_present=bool(row[3]),
    )


def probe(conn: Connection) -> Facts:
    """Read the facts ``decide`` needs (in a migration); never touches the extension itself."""
    return _facts(tuple(conn.exec_driver_sql(PROBE).one()))


def storage(url: str) -> Decision:
    """The path a database at ``url`` is on, and why (for ``db upgrade`` and the demo)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(PROBE).fetchone()
    assert row is not None
    return decide(_facts(tuple(row)))


def enable(conn: Connection) -> bool:
    """Create the extension where ``decide`` allows it; log which path was taken; True if in use."""
    facts = probe(conn)
    decision = decide(facts)
    if decision.timescale and not facts.created:
        nested = conn.begin_nested()
        try:
            conn.exec_driver_sql(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION}")
        except DBAPIError as err:  # preloaded, but this role may not create it
            nested.rollback()
            decision = Decision(
                timescale=False, reason=f"CREATE EXTENSION {EXTENSION} failed: {err.orig}"
            )
        else:
            nested.commit()
    if decision.timescale:
        log.info("TimescaleDB in use: telemetry.readings is a hypertable (%s)", decision.reason)
    else:  # a warning only when it is installed but cannot be used
        log.log(
            logging.WARNING if facts.available else logging.INFO,
            "TimescaleDB not used, plain PostgreSQL tables: %s",
            decision.reason,
        )
    return decision.timescale


def in_use(conn: Connection) -> bool:
    """True when the extension exists in this database (later migrations ask this)."""
    return probe(conn).created
