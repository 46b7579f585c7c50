"""Turn ERP and database errors into HTTP answers: JSON under /api, a readable page elsewhere.

The only place that maps ``ErpError`` subclasses to status codes. Validation-type
errors use FastAPI's own 422 body shape, so a client parses one format for all of them.

Text the database cannot take (a NUL byte, a lone surrogate), values it refuses as
data (SQLSTATE class 22) and values too large for it to keep (54000, e.g. a name too long
for its unique index) are the client's input, whatever field, form or JSON body they
came in: they are answered 422 here, at the one place every such value ends up, instead
of a 500 (or a 503 that blamed the database). NUL in the path or query is refused
earlier (``erp_core.hardening``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from erp_core.deps import Clock
from erp_core.errors import (
    ConflictError,
    InvalidArgumentError,
    InvalidRangeError,
    NotFoundError,
)
from erp_core.web import errors_i18n
from erp_core.web.html import Html, page
from erp_core.web.i18n import translations
from erp_core.web.session import request_locale
from erp_core.web.templates import render_template
from erp_core.web.words import N_

JSON_PREFIXES = ("/api/", "/health", "/metrics", "/openapi.json", "/docs")

log = logging.getLogger(__name__)
Answer = Callable[[Request, int, str, str, object], Response]  # status, title, message, json


def install_error_handlers(app: FastAPI, *, clock: Clock) -> None:
    """Register the handlers on ``app``; ``clock`` dates the error pages."""

    def answer(request: Request, status: int, title: str, message: str, json: object) -> Response:
        """JSON under the API paths; else a page in the browser's language.

        ``title`` is always ours (a gettext message); ``message`` is translated when it is
        one of ours, and shown as it is when it comes from a service or the database.
        """
        if request.url.path.startswith(JSON_PREFIXES):
            return JSONResponse({"detail": json}, status_code=status)
        locale = request_locale(request)
        _ = translations(locale).gettext
        body = render_template("web/message.html", locale=locale, heading="", message=_(message))
        html = page(title=_(title), body=Html(body), now=clock(), locale=locale)
        return HTMLResponse(html, status_code=status)

    @app.exception_handler(NotFoundError)
    def not_found(request: Request, err: NotFoundError) -> Response:
        return answer(request, 404, N_("Not found"), str(err), str(err))

    @app.exception_handler(InvalidRangeError)
    def invalid_range(request: Request, err: InvalidRangeError) -> Response:
        detail = [_validation_item("start", str(err), err.start.isoformat())]
        return answer(request, 422, N_("Invalid time range"), str(err), detail)

    @app.exception_handler(InvalidArgumentError)
    def invalid_argument(request: Request, err: InvalidArgumentError) -> Response:
        message = errors_i18n.invalid_detail(str(err), errors_i18n.locale_of(request))
        detail = [_validation_item(err.name, message, err.value, where=_where(request, err.name))]
        return answer(request, 422, N_("Invalid request"), message, detail)

    @app.exception_handler(ConflictError)
    def conflict(request: Request, err: ConflictError) -> Response:
        # JSON on every path, pages included: the rule's code is for the client, the
        # detail for a person, in the request's language (erp_core.web.errors_i18n)
        locale = errors_i18n.locale_of(request)
        detail = errors_i18n.conflict_detail(err.code, str(err), locale)
        return JSONResponse({"detail": detail, "code": err.code}, status_code=409)

    @app.exception_handler(RequestValidationError)
    def invalid_body(request: Request, err: RequestValidationError) -> Response:
        # FastAPI's own 422 shape; only ``msg`` is in the request's language
        detail = errors_i18n.translate_validation(err.errors(), errors_i18n.locale_of(request))
        if not request.url.path.startswith(JSON_PREFIXES):
            # a page's query or form refused by the framework (a URL typed or tampered
            # with): a page in the reader's language naming each field, not raw JSON
            message = "; ".join(f"{d['loc'][-1]}: {d['msg']}" for d in detail if d["loc"])
            return answer(request, 422, N_("Invalid request"), message, detail)
        return JSONResponse({"detail": _finite(jsonable_encoder(detail))}, status_code=422)

    _install_database_handlers(app, answer)


def _install_database_handlers(app: FastAPI, answer: Answer) -> None:
    """What the database refuses: the client's input (409, 422) or unavailability (503)."""

    @app.exception_handler(psycopg.errors.CheckViolation)
    def refused_by_database(request: Request, err: psycopg.errors.CheckViolation) -> Response:
        # a rule the database itself holds (e.g. release only through a signed decision)
        message = (err.diag.message_primary or str(err)).strip()
        return answer(request, 409, N_("Not allowed"), message, message)

    @app.exception_handler(psycopg.DataError)
    def invalid_data(request: Request, err: psycopg.DataError) -> Response:
        # NUL in text (refused by psycopg before sending), a number out of range, a
        # malformed value: the input is at fault, not the server
        message = (err.diag.message_primary or str(err)).strip()
        log.info("invalid input for %s %s: %s", request.method, request.url.path, message)
        detail = [_body_item(f"invalid input: {message}")]
        return answer(request, 422, N_("Invalid input"), f"Invalid input: {message}", detail)

    @app.exception_handler(UnicodeError)
    def invalid_text(request: Request, err: UnicodeError) -> Response:
        # e.g. a lone surrogate ("\ud800" in JSON) that cannot be encoded for the database
        log.info("invalid text for %s %s: %s", request.method, request.url.path, err)
        message = "text that is not valid Unicode (e.g. a lone surrogate)"
        return answer(
            request, 422, N_("Invalid input"), f"Invalid input: {message}", [_body_item(message)]
        )

    @app.exception_handler(psycopg.errors.ProgramLimitExceeded)
    def too_large_to_store(request: Request, err: psycopg.errors.ProgramLimitExceeded) -> Response:
        # SQLSTATE 54000 only (not 54001 and its siblings, which are faults of a query):
        # a value too large for the database to keep, e.g. a 300 kB name where a unique
        # index must hold it (~2.7 kB). Was answered 503 "database unavailable".
        message = (err.diag.message_primary or str(err)).strip()
        log.info("value too large for %s %s: %s", request.method, request.url.path, message)
        text = "a value is too large to store (names, codes and numbers: at most ~2,000 bytes)"
        return answer(
            request, 422, N_("Invalid input"), f"Invalid input: {text}", [_body_item(text)]
        )

    @app.exception_handler(psycopg.OperationalError)
    def database_unavailable(request: Request, err: psycopg.OperationalError) -> Response:
        log.warning("database unavailable for %s %s: %s", request.method, request.url.path, err)
        return answer(
            request,
            503,
            N_("Database unavailable"),
            N_(
                "The database is not answering, so current readings cannot be shown. "
                "Tell the on-call engineer; this page will work again once it is back."
            ),
            "database unavailable; see the API log",
        )


def _body_item(message: str) -> dict[str, object]:
    return {"type": "value_error", "loc": ["request"], "msg": message, "input": None}


def _where(request: Request, name: str) -> str:
    """Where the value a service refused came from: the path, the query or the body."""
    if name in request.path_params:
        return "path"
    if name in request.query_params or request.method in {"GET", "HEAD"}:
        return "query"
    return "body"  # e.g. a GTIN without a valid check digit in POST /api/items


def _validation_item(
    name: str, message: str, value: object, *, where: str = "query"
) -> dict[str, object]:
    return {
        "type": "value_error",
        "loc": [where, name],
        "msg": message,
        "input": value if _json_safe(value) else str(value),
    }


def _finite(value: object) -> object:
    """``value`` with every inf or NaN written as text (a 422 echoing them back).

    Python's JSON reads ``NaN`` and ``Infinity`` in a body, but cannot write them.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _json_safe(value: object) -> bool:
    """A value JSON carries as itself: text, an integer, a finite number (not inf, NaN)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int)
