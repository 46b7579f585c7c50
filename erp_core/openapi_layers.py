"""What the layers around the views do to each operation, declared in the OpenAPI document.

FastAPI documents an operation's success and its own 422; what the layers around a view
do is invisible to it: the hardening middleware (400 for a control character in the
path or query, 413 for a body over the limit), an undecodable body (400), the
bearer-token dependency (401), the role and password-change checks (403), a record the
path or body names that does not exist (404), the sign-in gate (429, 503) and an
unreachable database (503). Schemathesis found the document silent on all of them
(docs/api.md, "API fuzzing"). ``install`` adds them to each operation from what the
operation depends on, so a new endpoint is documented the same way without anyone
remembering to; a code an endpoint declares itself keeps its own description.

Every one of these answers is ``{"detail": "<why>"}`` (a 409 of the stock domain adds a
``code``), the ``Error`` schema added here; 422 keeps FastAPI's validation shape. String
parameters of the path and query also get the pattern the middleware holds them to (no
control character), so a client generating requests from the document is told.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from erp_core.deps import get_connection, get_current_user, get_gate, token_claims

NO_CONTROL_CHARACTERS = "^[^\\x00-\\x1f\\x7f]*$"  # erp_core.hardening.invalid_request_text
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {
        "detail": {"type": "string", "title": "Detail", "description": "Why, for people"},
        "code": {"type": "string", "title": "Code", "description": "The rule's code (409)"},
    },
    "required": ["detail"],
}
_REF = {"$ref": "#/components/schemas/Error"}

DESCRIPTIONS = {
    400: "A control character in the path or query string, or a body that cannot be parsed",
    401: "No valid bearer token (missing, expired, or older than a password change), "
    "or wrong credentials",
    403: "The user lacks the role, or must first replace a password an administrator set",
    404: "A record the path or body names does not exist",
    413: "The request body is larger than the limit (COLDTRACE_API_MAX_BODY_BYTES)",
    429: "Too many failed password entries for this account or from this address: "
    "refused until the time in Retry-After",
    503: "The database does not answer, or sign-in checks are all busy: try again",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
}


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare what the layers do to each operation (module doc)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI's, cached until the routes change
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        if "Error" not in schemas:
            schemas["Error"] = ERROR_SCHEMA
            for context in iter_route_contexts(app.routes):
                if isinstance(context.original_route, APIRoute) and context.include_in_schema:
                    _declare(document, cast("APIRoute", context))
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def error_codes(route: APIRoute) -> set[int]:
    """The status codes the layers around ``route``'s view may answer with (404 aside)."""
    calls = {d.call for d in _dependants(route.dependant)}
    codes = {400}  # the hardening middleware, before routing
    if route.body_field is not None:
        codes |= {413}
    if token_claims in calls:
        codes |= {401}
    if get_current_user in calls:
        codes |= {403}
    if any(d.path_params for d in _dependants(route.dependant)):
        codes |= {404}
    if get_gate in calls:
        codes |= {401, 429, 503}
    if get_connection in calls:
        codes |= {503}
    return codes


def _declare(document: dict[str, Any], route: APIRoute) -> None:
    operations = document.get("paths", {}).get(route.path_format, {})
    schemas = document["components"]["schemas"]
    for method in route.methods or ():
        operation = operations.get(method.lower())
        if operation is None:
            continue
        codes = error_codes(route)
        if _names_records(operation.get("requestBody", {}), schemas):
            codes.add(404)
        responses = operation.setdefault("responses", {})
        for code in sorted(codes):
            answer = responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
            if code in _HEADERS:
                answer.setdefault("headers", _HEADERS[code])
        for code, answer in responses.items():  # e.g. a 409 declared without a body
            if code.isdigit() and int(code) >= 400 and code != "422":
                answer.setdefault("content", {"application/json": {"schema": _REF}})
        for parameter in operation.get("parameters", []):
            if parameter.get("in") in {"path", "query"}:
                _no_control_characters(parameter.get("schema", {}))


def _no_control_characters(schema: dict[str, Any]) -> None:
    if schema.get("type") == "string" and not {"pattern", "format", "enum"} & schema.keys():
        schema["pattern"] = NO_CONTROL_CHARACTERS
    for option in schema.get("anyOf", []):
        _no_control_characters(option)


def _names_records(body: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether a request body has a field ``…_id``/``…_ids`` (at any depth)."""
    seen: set[str] = set()

    def walk(node: object) -> bool:
        if isinstance(node, list):
            return any(walk(n) for n in node)
        if not isinstance(node, dict):
            return False
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name in seen:
                return False
            seen.add(name)
            return walk(schemas.get(name))
        names = node.get("properties", {})
        if any(str(n).endswith(("_id", "_ids")) for n in names):
            return True
        return any(walk(v) for v in node.values())

    return walk(body)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)
