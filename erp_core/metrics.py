"""Prometheus metrics of the API: one registry per app, so tests can build many apps.

Every label comes from a fixed set, so no client can grow the number of time series:
the route template (``/api/sensors/{sensor_id}/readings``, or ``unmatched``), never the
raw path; the method if it is one of ``METHODS``, else ``other`` (uvicorn passes any
token a client sends as a method).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram

UNMATCHED = "unmatched"
OTHER_METHOD = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiMetrics:
    """The API's counters and histograms, registered in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "coldtrace_api_requests",
            "HTTP requests answered, by route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "coldtrace_api_request_seconds",
            "Time to answer one HTTP request",
            ["method", "route"],
            registry=self.registry,
        )
        self.login_refusals = Counter(
            "coldtrace_api_login_refusals",
            "Password entries refused unchecked, by reason (pair_locked, source_throttled, "
            "account_locked, busy); refusals of a throttled source are counted only here",
            ["reason"],
            registry=self.registry,
        )

    def refused(self, reason: str) -> None:
        """Count one password entry refused without checking it."""
        self.login_refusals.labels(reason=reason).inc()

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.latency.labels(method=method, route=route).observe(seconds)


def install_metrics_middleware(app: FastAPI, metrics: ApiMetrics) -> None:
    """Make ``app`` count every request in ``metrics``."""

    @app.middleware("http")
    async def count_request(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises past every handler
        try:
            response = await call_next(request)
            status = response.status_code
        finally:
            metrics.observe(
                method=method_label(request.method),
                route=_route_template(request),
                status=status,
                seconds=time.perf_counter() - started,
            )
        return response


def method_label(method: str) -> str:
    """``method`` if it is a standard one, else ``other``."""
    return method if method in METHODS else OTHER_METHOD


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
