"""Typed FastAPI dependencies: the one place views get the connection, clock and settings.

Everything here hangs off the ``AppContext`` that the app's lifespan builds, so there is
no module-level pool or settings object, and a test builds as many apps as it likes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from erp_core.metrics import ApiMetrics
from erp_core.settings import ApiSettings

Clock = Callable[[], datetime]
DbConnection = psycopg.Connection[TupleRow]


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AppContext:
    """What one running app owns: its settings, connection pool, metrics and clock."""

    settings: ApiSettings
    pool: ConnectionPool[DbConnection]
    metrics: ApiMetrics
    clock: Clock


def get_context(request: Request) -> AppContext:
    """The context of the app serving ``request`` (set by its lifespan)."""
    context = getattr(request.app.state, "context", None)
    if not isinstance(context, AppContext):
        msg = "the app has not started: build it with create_app() and run its lifespan"
        raise RuntimeError(msg)  # noqa: TRY004 - a programming error, not a type check
    return context


Context = Annotated[AppContext, Depends(get_context)]


def get_settings(context: Context) -> ApiSettings:
    """The settings the app was built with."""
    return context.settings


def get_connection(context: Context) -> Iterator[DbConnection]:
    """A pooled connection for one request; committed at the end, rolled back on error."""
    with context.pool.connection() as conn:
        yield conn


def get_now(context: Context) -> datetime:
    """The current time from the app's clock (fixed in tests)."""
    return context.clock()


Settings = Annotated[ApiSettings, Depends(get_settings)]
Connection = Annotated[DbConnection, Depends(get_connection)]
Now = Annotated[datetime, Depends(get_now)]
