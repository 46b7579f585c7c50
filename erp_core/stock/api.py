"""Mount the stock domain on an app: its routers and the 409 answer for conflicts.

``install(app)`` is the one line ``erp_core.app`` needs; it also mounts the location
compliance endpoints (``erp_core.compliance``). Validation errors of this domain are
``InvalidArgumentError``s (422, handled by ``erp_core.http_errors``); conflicts with
stored records are ``StockConflictError``s, answered here as 409 with the rule's code.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from erp_core.compliance import api as compliance_api
from erp_core.stock import api_edge, api_lots, api_master, pages_edge
from erp_core.stock.errors import StockConflictError


def install(app: FastAPI) -> None:
    """Include the stock routers in ``app`` and map stock conflicts to 409."""
    app.include_router(api_master.router)
    app.include_router(api_lots.router)
    app.include_router(compliance_api.router)
    app.include_router(api_edge.router)
    app.include_router(pages_edge.router)

    @app.exception_handler(StockConflictError)
    def conflict(_request: Request, err: StockConflictError) -> Response:
        return JSONResponse({"detail": str(err), "code": err.code}, status_code=409)
