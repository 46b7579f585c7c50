"""The API and web UI as one FastAPI app, built by ``create_app`` from explicit settings.

Nothing is created at import: the connection pools and the sign-in gate open in the
app's lifespan and close with it, so tests build one app per database and the CLI builds
one per process. The pool opens without waiting, so the UI starts (and /health says 503)
while the database is still coming up. ``create_app`` refuses unsafe settings (no JWT
secret) with an error naming the variable; the hardening middleware (body limit,
invalid text, security headers, trusted proxies) wraps everything (``erp_core.hardening``).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool

from erp_core import docs, hardening, health, openapi_layers
from erp_core.alerts import api as alerts_api
from erp_core.alerts import pages as alerts_pages
from erp_core.audit import api as audit_api
from erp_core.audit.settings import RecordConfig, RecordSettings
from erp_core.auth import api as auth_api
from erp_core.auth.gate import GateLimits, LoginGate
from erp_core.compliance import api as compliance_api
from erp_core.deps import AppContext, Clock, DbConnection, login_policy, utc_now
from erp_core.deviations import api as deviations_api
from erp_core.devices import pages as devices_pages
from erp_core.edge_events import api as edge_events_api
from erp_core.edge_events import pages as edge_events_pages
from erp_core.http_errors import install_error_handlers
from erp_core.lot_history import api as lot_history_api
from erp_core.lots import api as lots_api
from erp_core.masterdata import api as masterdata_api
from erp_core.masterdata import pages as masterdata_pages
from erp_core.metrics import ApiMetrics, install_metrics_middleware
from erp_core.monitoring import api as monitoring_api
from erp_core.monitoring import pages as monitoring_pages
from erp_core.movements import api as movements_api
from erp_core.production import api as production_api
from erp_core.release import api as release_api
from erp_core.release import override_pages as release_override_pages
from erp_core.release import pages as release_pages
from erp_core.reports import api as reports_api
from erp_core.settings import ApiSettings, UnsafeSettingsError, require_safe
from erp_core.shipments import api as shipments_api
from erp_core.shipments import pages as shipments_pages
from erp_core.web import account, signin
from erp_core.web import session as web_session
from erp_core.web.format import parse_zone
from erp_core.web.session import install_site_zone

STATIC_DIR = Path(__file__).parent / "static"

ROUTERS: tuple[APIRouter, ...] = (
    # the JSON API (in this order in the OpenAPI document): each domain's ``api.router``
    health.router,
    auth_api.router,
    audit_api.router,
    monitoring_api.router,
    alerts_api.router,
    release_api.router,
    deviations_api.router,
    masterdata_api.router,
    lots_api.router,
    lot_history_api.router,
    movements_api.router,
    shipments_api.router,
    compliance_api.router,
    edge_events_api.router,
    reports_api.router,
    production_api.router,
    # the HTML pages: each domain's ``pages.router`` (and the web package's sign-in, account)
    signin.router,
    account.router,
    release_pages.router,
    release_override_pages.router,
    alerts_pages.router,
    monitoring_pages.router,
    edge_events_pages.router,
    shipments_pages.router,
    devices_pages.router,
    masterdata_pages.router,
)
"""Every router of the app: a domain package mounts its ``api.router`` and ``pages.router``.

A new domain adds its routers here, and nothing else to this file: its errors are
``erp_core.errors`` subclasses, answered by ``erp_core.http_errors`` (409 for a
``ConflictError``), and ``tests/unit/test_app_routers.py`` fails for a domain whose
router is not listed.
"""


def create_app(
    settings: ApiSettings, *, clock: Clock = utc_now, records: RecordConfig | None = None
) -> FastAPI:
    """The API + web UI for ``settings``; ``clock`` is injectable so tests use fixed times.

    UnsafeSettingsError (naming the variable) if the settings must not be served.
    ``records`` (the record key that signs, the anchor file) default to
    ``COLDTRACE_RECORD_*``; without a key file the app does not start (RecordKeyError).
    """
    require_safe(settings)
    metrics = ApiMetrics()
    record_config = records if records is not None else RecordSettings().load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = open_pool(settings)
        attempt_pool = open_pool(settings, name="coldtrace-api-attempts", min_size=0, max_size=2)
        gate = LoginGate(
            pool=pool,
            policy=login_policy(settings),
            limits=GateLimits(
                hash_slots=settings.login_hash_concurrency,
                db_slots=settings.login_db_concurrency,
                queue_timeout_s=settings.login_queue_timeout_s,
            ),
            keyring=record_config.keyring,
            on_refusal=lambda kind: metrics.refused(str(kind)),
        )
        app.state.context = AppContext(
            settings=settings,
            pool=pool,
            metrics=metrics,
            clock=clock,
            gate=gate,
            attempt_pool=attempt_pool,
            records=record_config,
        )
        try:
            yield
        finally:
            attempt_pool.close()
            pool.close()

    app = FastAPI(
        title="ColdTrace",
        summary="Cold-chain telemetry: sensors, readings, gateways and dead letters.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # served offline by erp_core.docs
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    install_metrics_middleware(app, metrics)
    install_site_zone(app, parse_zone(settings.site_timezone))
    install_error_handlers(app, clock=clock)
    auth_api.install_access_error_handlers(app, clock=clock)
    web_session.install(app, clock=clock)
    for router in ROUTERS:
        app.include_router(router)
    openapi_layers.install(app)  # after every router: declares their error answers
    docs.install(app)  # its asset mount goes before the /static mount
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    hardening.install(
        app, max_body_bytes=settings.max_body_bytes, trusted_proxies=settings.trusted_proxies
    )
    return app


def open_pool(
    settings: ApiSettings,
    *,
    name: str = "coldtrace-api",
    min_size: int | None = None,
    max_size: int | None = None,
) -> ConnectionPool[DbConnection]:
    """A pool that checks each connection before lending it; sessions run in UTC."""
    options = f"-c TimeZone=UTC -c statement_timeout={settings.statement_timeout_ms}"
    size = settings.pool_max_size if max_size is None else max_size
    pool: ConnectionPool[DbConnection] = ConnectionPool(
        settings.database_url,
        min_size=min(settings.pool_min_size if min_size is None else min_size, size),
        max_size=size,
        timeout=settings.pool_timeout_s,
        kwargs={"options": options},
        check=ConnectionPool.check_connection,
        name=name,
        open=False,
    )
    pool.open(wait=False)
    return pool


def serve(settings: ApiSettings, *, host: str, port: int) -> None:
    """Run the API with uvicorn until interrupted (``coldtrace api``).

    Exits with the reason if the settings are unsafe (e.g. no COLDTRACE_API_JWT_SECRET).
    Forwarded headers are handled by the app (trusted proxies only), not by uvicorn,
    whose default would believe any process on this machine.
    """
    try:
        app = create_app(settings)
    except UnsafeSettingsError as err:
        raise SystemExit(f"coldtrace api: {err}") from err
    # Move the import-time objects out of the collector's reach: otherwise a full
    # collection pass over them adds 100+ ms to a random request (docs/benchmarks.md).
    gc.freeze()
    uvicorn.run(app, host=host, port=port, proxy_headers=False, server_header=False)


def _version() -> str:
    try:
        return version("coldtrace")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
