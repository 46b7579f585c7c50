"""The interactive API docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``), served offline.

FastAPI's own pages load Swagger UI from a CDN and start it with an inline script, so
``/docs`` is blank on a plant network without internet and breaks a Content-Security-
Policy without inline script. Here the assets come from the installed ``fastapi-offline``
package (mounted at ``/static/docs-vendor``; nothing third-party is copied into this
repository), and Swagger UI is started by ``/static/swagger-init.js``. The pages reference
only URLs of this server.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

VENDOR_URL = "/static/docs-vendor"

_SWAGGER = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} · API (Swagger UI)</title>
<link rel="stylesheet" href="{vendor}/swagger-ui.css">
<link rel="icon" href="{vendor}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{vendor}/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
"""

_REDOC = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} · API (ReDoc)</title>
<link rel="icon" href="{vendor}/favicon.png">
</head>
<body>
<redoc spec-url="{openapi}"></redoc>
<script src="{vendor}/redoc.standalone.js"></script>
</body>
</html>
"""


def vendor_dir() -> Path:
    """Where the installed package keeps the Swagger UI and ReDoc files."""
    return Path(str(resources.files("fastapi_offline").joinpath("static")))


def install(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets (mount before the ``/static`` mount)."""
    title = app.title
    openapi = app.openapi_url or "/openapi.json"
    app.mount(VENDOR_URL, StaticFiles(directory=vendor_dir()), name="docs-vendor")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(_SWAGGER.format(title=title, vendor=VENDOR_URL))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(_REDOC.format(title=title, vendor=VENDOR_URL, openapi=openapi))
