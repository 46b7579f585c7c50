"""Prometheus metrics of the API: one registry per app, so tests can build many apps.

Requests are labelled by route template (``/api/sensors/{sensor_id}/readings``), never
by the raw path, so the number of time series stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram

UNMATCHED = "unmatched"


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
                method=request.method,
                route=_route_template(request),
                status=status,
                seconds=time.perf_counter() - started,
            )
        return response


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
