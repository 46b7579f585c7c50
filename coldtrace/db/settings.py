"""Database connection settings, built by each service's ``main`` (never at import).

Two logins, two URLs (docs/access-and-audit.md, "Database roles"): the services connect
as the application role (``COLDTRACE_DATABASE_URL``); ``coldtrace db upgrade`` connects
as the owner of the schema (``COLDTRACE_DATABASE_OWNER_URL``), migrates, and applies the
privileges of the application and reader roles. The defaults carry no password: libpq
takes it from ``PGPASSWORD``, a ``~/.pgpass`` file (``PGPASSFILE``) or the URL you set.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_URL = "postgresql://coldtrace_app@127.0.0.1:5432/coldtrace"
DEFAULT_OWNER_URL = "postgresql://coldtrace@127.0.0.1:5432/coldtrace"


def alembic_url(url: str) -> str:
    """A libpq URL as SQLAlchemy/Alembic wants it, with the psycopg 3 driver."""
    _, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}"


class DatabaseSettings(BaseSettings):
    """Where the database is and which roles use it (``COLDTRACE_DATABASE_*``)."""

    model_config = SettingsConfigDict(env_prefix="COLDTRACE_DATABASE_")

    # The application role's login: ingest, API, ERP jobs, notifier, admin CLI.
    url: str = DEFAULT_URL
    # The owner's login: migrations and privileges (`coldtrace db upgrade`) only.
    owner_url: str = DEFAULT_OWNER_URL
    # A login that may create roles (CREATEROLE), for the one-time `coldtrace db roles`.
    admin_url: str | None = None
    # The names the privileges are granted to (cluster-wide roles).
    app_role: str = "coldtrace_app"
    reader_role: str = "coldtrace_reader"

    @property
    def sqlalchemy_url(self) -> str:
        """``url`` for SQLAlchemy/Alembic with the psycopg 3 driver."""
        return alembic_url(self.url)
