"""The API and web UI as one FastAPI app, built by ``create_app`` from explicit settings.

Nothing is created at import: the connection pool opens in the app's lifespan and
closes with it, so tests build one app per database and the CLI builds one per process.
The pool opens without waiting, so the UI starts (and /health says 503) while the
database is still coming up.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool

from erp_core import health
from erp_core.alerts import api as alerts_api
from erp_core.alerts import pages as alerts_pages
from erp_core.audit import api as audit_api
from erp_core.audit.settings import RecordConfig, RecordSettings
from erp_core.auth import api as auth_api
from erp_core.deps import AppContext, Clock, DbConnection, utc_now
from erp_core.http_errors import install_error_handlers
from erp_core.metrics import ApiMetrics, install_metrics_middleware
from erp_core.monitoring import api as monitoring_api
from erp_core.monitoring import pages as monitoring_pages
from erp_core.release import api as release_api
from erp_core.release import pages as release_pages
from erp_core.settings import ApiSettings
from erp_core.stock import api as stock_api
from erp_core.web import session as web_session
from erp_core.web import signin

STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    settings: ApiSettings, *, clock: Clock = utc_now, records: RecordConfig | None = None
) -> FastAPI:
    """The API + web UI for ``settings``; ``clock`` is injectable so tests use fixed times.

    ``records`` (the record key that signs, the anchor file) default to
    ``COLDTRACE_RECORD_*``; without a key file the app does not start (RecordKeyError).
    """
    metrics = ApiMetrics()
    record_config = records if records is not None else RecordSettings().load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = open_pool(settings)
        app.state.context = AppContext(
            settings=settings, pool=pool, metrics=metrics, clock=clock, records=record_config
        )
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="ColdTrace",
        summary="Cold-chain telemetry: sensors, readings, gateways and dead letters.",
        version=_version(),
        lifespan=lifespan,
        docs_url="/docs",
    )
    install_metrics_middleware(app, metrics)
    install_error_handlers(app, clock=clock)
    app.include_router(health.router)
    app.include_router(auth_api.router)
    app.include_router(audit_api.router)
    auth_api.install_access_error_handlers(app, clock=clock)
    app.include_router(monitoring_api.router)
    app.include_router(alerts_api.router)
    app.include_router(release_api.router)
    web_session.install(app, clock=clock)
    app.include_router(signin.router)
    app.include_router(release_pages.router)
    app.include_router(alerts_pages.router)
    app.include_router(monitoring_pages.router)
    stock_api.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def open_pool(settings: ApiSettings) -> ConnectionPool[DbConnection]:
    """A pool that checks each connection before lending it; sessions run in UTC."""
    options = f"-c TimeZone=UTC -c statement_timeout={settings.statement_timeout_ms}"
    pool: ConnectionPool[DbConnection] = ConnectionPool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout_s,
        kwargs={"options": options},
        check=ConnectionPool.check_connection,
        name="coldtrace-api",
        open=False,
    )
    pool.open(wait=False)
    return pool


def serve(settings: ApiSettings, *, host: str, port: int) -> None:
    """Run the API with uvicorn until interrupted (``coldtrace api``)."""
    app = create_app(settings)
    # Move the import-time objects out of the collector's reach: otherwise a full
    # collection pass over them adds 100+ ms to a random request (docs/benchmarks.md).
    gc.freeze()
    uvicorn.run(app, host=host, port=port, proxy_headers=True)


def _version() -> str:
    try:
        return version("coldtrace")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
