"""Liveness and metrics endpoints for operators and Prometheus, outside the ``/api`` domain.

``/health`` takes a connection with a short timeout itself instead of through the
request dependency, so a dead database gives a fast, explicit 503 rather than a wait.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import psycopg
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from erp_core.deps import Context

HEALTH_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """Whether the API can reach its database."""

    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"]


def ping(conn: psycopg.Connection[Any]) -> None:
    """Run a trivial query; raises psycopg.Error when the database does not answer."""
    conn.execute("SELECT 1").fetchone()


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "Database unreachable"}},
)
def health(context: Context) -> Health | JSONResponse:
    """200 when the database answers, 503 when it does not."""
    try:
        timeout = min(HEALTH_TIMEOUT_S, context.settings.pool_timeout_s)
        with context.pool.connection(timeout=timeout) as conn:
            ping(conn)
    except psycopg.Error as err:
        log.warning("health check: database unreachable: %s", err)
        body = Health(status="unavailable", database="unreachable")
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok", database="ok")


@router.get("/metrics", response_class=Response)
def metrics(context: Context) -> Response:
    """Prometheus text exposition of the API's metrics."""
    return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)
