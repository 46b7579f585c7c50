"""What schemathesis and the form fuzzing found, each pinned by a plain test (docs/api.md,
"API fuzzing"). Each of these failed on the code before its fix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from erp_core.app import create_app
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import PASSWORDS, add_user, bearer, token_for
from tests.integration.web_helpers import csrf_of

SECRET = "fuzz-findings-secret-0123456789abcdef"
HUGE = "x" * 300_000  # under the body limit, far over what an index row holds (~2.7 kB)


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    add_user(db_url, "ida", ["admin"], PASSWORDS["admin"])
    add_user(db_url, "quinn", ["qa_manager"], PASSWORDS["qa_manager"])
    add_user(db_url, "walt", ["warehouse"], PASSWORDS["warehouse"])
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=4, jwt_secret=SecretStr(SECRET)
    )
    with TestClient(create_app(settings)) as c:
        yield c


def auth(client: TestClient, who: str) -> dict[str, str]:
    role = {"ida": "admin", "quinn": "qa_manager", "walt": "warehouse"}[who]
    return bearer(token_for(client, who, PASSWORDS[role]))


# --- 5xx -------------------------------------------------------------------------------------


def test_inspection_of_an_unknown_lot_is_404_not_500(client: TestClient) -> None:
    """The insert hit the lot's foreign key: ForeignKeyViolation, unhandled, 500."""
    body = {"kind": "visual", "result": "passed"}
    r = client.post("/api/lots/4118109/inspections", json=body, headers=auth(client, "quinn"))
    assert r.status_code == 404, r.text
    assert r.json() == {"detail": "lot 4118109 not found"}
    for path in ("/api/lots/4118109/release", "/api/lots/4118109/deviations"):
        assert client.get(path, headers=auth(client, "quinn")).status_code == 404, path


def test_a_name_too_long_to_index_is_422_not_503(client: TestClient) -> None:
    """A 300 kB user name at sign-in (no account needed) made the attempt log's index
    refuse the row (SQLSTATE 54000), answered 503 'database unavailable'."""
    r = client.post("/api/auth/token", data={"username": HUGE, "password": "x"})
    assert r.status_code == 422, r.text
    assert "too large to store" in r.json()["detail"][0]["msg"]
    form = client.get("/sign-in")
    data = {"username": HUGE, "password": "x", "csrf_token": csrf_of(form.text)}
    page = client.post("/sign-in", data=data)
    assert page.status_code == 422
    assert "too large to store" in page.text
    # the same for every value that ends up in a unique index, e.g. a location code
    location = {"code": HUGE, "name": "n", "kind": "site"}
    r = client.post("/api/locations", json=location, headers=auth(client, "ida"))
    assert r.status_code == 422, r.text
    # and the database is still there: the next request is served
    assert client.get("/api/locations", headers=auth(client, "ida")).status_code == 200


# --- the OpenAPI document against what the API answers ----------------------------------------


def test_weak_password_422_has_the_validation_shape(client: TestClient) -> None:
    """Every 422 is FastAPI's validation body (erp_core.http_errors); this one had a string."""
    body = {"username": "newbie", "full_name": "New Bie", "password": "1234567890"}
    r = client.post("/api/users", json=body, headers=auth(client, "ida"))
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, list)
    assert detail[0]["loc"] == ["body"]
    assert "at least 12 characters" in detail[0]["msg"]


def test_a_bare_number_is_not_a_time(client: TestClient, db_url: str) -> None:
    """``start=0.0`` was read as Unix seconds (1970) where the document says date-time."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
            " VALUES ('fridge-1', 'temperature', 'Cel', 'gw-1') RETURNING id"
        ).fetchone()
    assert row is not None
    path = f"/api/sensors/{row[0]}/readings"
    for query in ("start=0.0", "end=1700000000", "start=false&start=0"):
        r = client.get(f"{path}?{query}", headers=auth(client, "walt"))
        assert r.status_code == 422, (query, r.text)
        assert "ISO 8601" in r.text
    ok = client.get(f"{path}?start=2026-01-01T00:00:00Z", headers=auth(client, "walt"))
    assert ok.status_code == 200, ok.text


def test_a_refused_body_field_is_located_in_the_body(client: TestClient) -> None:
    """A service's 422 said ``loc: ["query", "gtin"]`` for a field of the JSON body."""
    item = {"gtin": "04006381333932", "name": "Stent", "range_low": 2, "range_high": 8}
    r = client.post("/api/items", json=item, headers=auth(client, "ida"))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "gtin"]


def responses(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return dict(spec["paths"][path][method]["responses"])


def test_the_document_declares_the_answers_of_the_layers_around_each_view(
    client: TestClient,
) -> None:
    spec = client.get("/openapi.json").json()
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            codes = operation["responses"]
            assert "400" in codes, (method, path)  # control characters: the middleware
            if "requestBody" in operation:
                assert "413" in codes, (method, path)
            if path not in {"/health", "/metrics", "/api/auth/token"}:
                assert "401" in codes, (method, path)
                assert codes["401"]["headers"]["WWW-Authenticate"]
            if "{" in path:
                assert "404" in codes, (method, path)
            for code, answer in codes.items():
                if code.startswith("4") and code != "422":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == error or "$ref" in schema, (method, path, code)
    assert "403" in responses(spec, "get", "/api/users")  # admin only
    assert "403" not in responses(spec, "get", "/api/auth/me")  # also while a change is due
    token = responses(spec, "post", "/api/auth/token")
    assert {"401", "429", "503"} <= token.keys()
    assert token["429"]["headers"]["Retry-After"]
    assert "409" in responses(spec, "post", "/api/users")  # name taken, separation of duties
    assert "409" in responses(spec, "put", "/api/users/{username}/roles")
    assert "404" in responses(spec, "post", "/api/lots")  # names its item
    assert "404" not in responses(spec, "post", "/api/users")  # names no record
    refused = responses(spec, "post", "/api/lots/{lot_id}/release")["409"]
    assert refused["content"]["application/json"]["schema"]["$ref"].endswith("/RefusalOut")
    readings = spec["paths"]["/api/sensors/{sensor_id}/readings"]["get"]["parameters"]
    audit = spec["paths"]["/api/audit"]["get"]["parameters"]
    table = next(p for p in audit if p["name"] == "table")
    assert table["schema"]["pattern"] == "^[^\\x00-\\x1f\\x7f]*$"
    start = next(p for p in readings if p["name"] == "start")
    assert "pattern" not in start["schema"]["anyOf"][0]  # a date-time has its own format


def test_the_declared_answers_are_the_real_ones(client: TestClient) -> None:
    """Spot checks that the declared codes and bodies are what the layers answer."""
    assert client.get("/api/users").json() == {"detail": "not authenticated"}
    r = client.get("/api/audit?table=erp.lots%01")
    assert r.status_code == 400
    assert set(r.json()) == {"detail"}
    r = client.post(
        "/api/users",
        content=b"x" * (2 * 1024 * 1024),
        headers={**auth(client, "ida"), "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert set(r.json()) == {"detail"}
    r = client.get("/api/users", headers=auth(client, "walt"))
    assert r.status_code == 403
    assert set(r.json()) == {"detail"}
