"""Database connection settings, built by each service's ``main`` (never at import)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_URL = "postgresql://coldtrace:coldtrace@127.0.0.1:5432/coldtrace"


class DatabaseSettings(BaseSettings):
    """Where the database is: ``COLDTRACE_DATABASE_URL`` (a libpq URL)."""

    model_config = SettingsConfigDict(env_prefix="COLDTRACE_DATABASE_")

    url: str = DEFAULT_URL

    @property
    def sqlalchemy_url(self) -> str:
        """The same URL for SQLAlchemy/Alembic with the psycopg 3 driver."""
        scheme, rest = self.url.split("://", 1)
        del scheme
        return f"postgresql+psycopg://{rest}"
