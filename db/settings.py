"""Database connection settings, built by each service's ``main`` (never at import).

Two logins, two URLs (docs/access-and-audit.md, "Database roles"): the services connect
as the application role (``COLDTRACE_DATABASE_URL``); ``coldtrace db upgrade`` connects
as the owner of the schema (``COLDTRACE_DATABASE_OWNER_URL``), migrates, and applies the
privileges of the application and reader roles. The defaults carry no password: libpq
takes it from ``PGPASSWORD``, a ``~/.pgpass`` file (``PGPASSFILE``) or the URL you set.
"""

from __future__ import annotations

import logging
import os

from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

DEFAULT_URL = "postgresql://coldtrace_app@127.0.0.1:5432/coldtrace"
DEFAULT_OWNER_URL = "postgresql://coldtrace@127.0.0.1:5432/coldtrace"
URL_ENV = "COLDTRACE_DATABASE_URL"
# The API's own variable before every process read URL_ENV; still read, with a warning.
DEPRECATED_URL_ENV = "COLDTRACE_API_DATABASE_URL"


def url_from_env() -> str:
    """The application role's URL: ``COLDTRACE_DATABASE_URL``, else the deprecated alias."""
    url = os.environ.get(URL_ENV)
    if url is None:
        url = os.environ.get(DEPRECATED_URL_ENV)
    return url if url is not None else DEFAULT_URL


def warn_deprecated_url() -> None:
    """Log a warning when the deprecated ``COLDTRACE_API_DATABASE_URL`` is set.

    Used when it is the only one of the two; ignored, and said so, when both are set and
    differ.
    """
    url = os.environ.get(URL_ENV)
    old = os.environ.get(DEPRECATED_URL_ENV)
    if old is None:
        return
    if url is None:
        log.warning("%s is deprecated: rename it to %s", DEPRECATED_URL_ENV, URL_ENV)
    elif old != url:
        log.warning(
            "%s is deprecated and differs from %s, which is used: remove it",
            DEPRECATED_URL_ENV,
            URL_ENV,
        )


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
