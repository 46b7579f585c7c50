"""API hardening: body limit, invalid text, metrics labels, security headers, proxies,
offline docs, the required JWT secret."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import psutil
import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from erp_core.app import create_app
from erp_core.settings import ApiSettings, UnsafeSettingsError
from tests.integration.access_helpers import PASSWORDS, add_user, bearer, token_for
from tests.integration.live_api import client as live_client
from tests.integration.live_api import serve
from tests.integration.web_helpers import csrf_of, sign_in_response

SECRET = "hardening-tests-secret-0123456789abcdef"
MiB = 1024 * 1024


def make_settings(db_url: str, **kw: Any) -> ApiSettings:
    return ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=4, jwt_secret=SecretStr(SECRET), **kw
    )


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    add_user(db_url, "ida", ["admin"], PASSWORDS["admin"])
    add_user(db_url, "quinn", ["qa"], PASSWORDS["qa"])
    add_user(db_url, "walt", ["warehouse"], PASSWORDS["warehouse"])
    with TestClient(create_app(make_settings(db_url))) as c:
        yield c


# --- request body limit -------------------------------------------------------------------


def test_declared_oversized_body_is_refused_before_authentication(client: TestClient) -> None:
    big = b"x" * (MiB + 1)
    for path in ("/api/auth/token", "/api/users", "/sign-in"):
        r = client.post(path, content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413, path  # not 401: nothing looked at who sent it
        assert "larger than" in r.json()["detail"]
    ok = client.post("/api/auth/token", data={"username": "ida", "password": "x" * 100})
    assert ok.status_code == 401


def test_streamed_body_is_cut_at_the_limit_and_memory_stays_flat(db_url: str) -> None:
    """400 MiB bodies took 2.4 GiB before; now each stops after the limit."""
    chunk = b"a" * (64 * 1024)
    sent = 0

    def body() -> Iterator[bytes]:  # chunked: no Content-Length to refuse it by
        nonlocal sent
        while sent < 300 * MiB:
            sent += len(chunk)
            yield chunk

    me = psutil.Process()
    with serve(create_app(make_settings(db_url, max_body_bytes=256 * 1024))) as url:
        before = me.memory_info().rss
        kinds = {
            "/api/auth/token": "application/x-www-form-urlencoded",
            "/api/users": "application/json",
        }
        for path, kind in kinds.items():
            sent = 0
            with live_client(url) as c:
                try:
                    r = c.post(path, content=body(), headers={"content-type": kind})
                except Exception as err:  # the server may close while the client still writes
                    status = type(err).__name__
                else:
                    status = r.status_code
            # 413, or the server closed the connection after its 413 while the client wrote
            assert status in (413, "WriteError", "RemoteProtocolError", "ReadError"), status
            assert sent < 64 * MiB, sent  # the server stopped reading long before 300 MiB
        grown = me.memory_info().rss - before
    assert grown < 64 * MiB, grown / MiB


# --- NUL and other invalid text --------------------------------------------------------------


def test_nul_in_sign_in_and_token_endpoints_is_a_4xx(client: TestClient) -> None:
    for username in ("ida\x00", "\x00", "ida"):
        for password in ("x\x00y", PASSWORDS["admin"] + "\x00"):
            r = client.post("/api/auth/token", data={"username": username, "password": password})
            assert 400 <= r.status_code < 500, (username, password, r.text)
    form = client.get("/sign-in")
    data = {"username": "i\x00da", "password": "p\x00w", "csrf_token": csrf_of(form.text)}
    r = client.post("/sign-in", data=data)
    assert 400 <= r.status_code < 500
    r = client.post(
        "/sign-in",
        content=b"username=%00&password=%00",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= r.status_code < 500


def test_nul_in_path_query_and_header_is_a_400(client: TestClient, db_url: str) -> None:
    token = token_for(client, "ida", PASSWORDS["admin"])
    for url in (
        "/api/users/a%00b/login-attempts",
        "/static/%00",
        "/api/alerts?status=%00",
        "/sign-in?next=/%00",
    ):
        r = client.get(url, headers=bearer(token))
        assert r.status_code == 400, url
        assert "control character" in r.json()["detail"]
    with serve(create_app(make_settings(db_url))) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Note: a\x00b\r\n\r\n")
            answer = raw.recv(200)
    assert answer.startswith(b"HTTP/1.1 400")


def test_nul_and_lone_surrogates_in_json_are_a_422(client: TestClient) -> None:
    token = token_for(client, "ida", PASSWORDS["admin"])
    for text in ('"Ida\\u0000Admin"', '"Ida \\ud800 Admin"'):
        body = (
            '{"username": "new-user", "full_name": ' + text + ', "password": "Fresh-Sheet-2026",'
            ' "roles": ["operator"]}'
        )
        r = client.post(
            "/api/users",
            content=body.encode(),
            headers={**bearer(token), "content-type": "application/json"},
        )
        assert r.status_code == 422, r.text


def _example(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    if "$ref" in schema:
        return _example(components[schema["$ref"].rsplit("/", 1)[1]], components, depth)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return _example(schema[key][0], components, depth)
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" and depth < 3:
        props = schema.get("properties", {})
        return {k: _example(v, components, depth + 1) for k, v in props.items()}
    return {
        "string": "nul\x00text",
        "integer": 1,
        "number": 1.0,
        "boolean": True,
        "array": [],
    }.get(str(kind), "nul\x00text")


def test_no_json_endpoint_answers_5xx_to_nul_text(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    components = spec.get("components", {}).get("schemas", {})
    tokens = {
        u: token_for(client, u, PASSWORDS[r])
        for u, r in (("ida", "admin"), ("quinn", "qa"), ("walt", "warehouse"))
    }
    tried = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if schema is None:
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            body = _example(schema, components)
            for token in tokens.values():
                r = client.request(method.upper(), url, json=body, headers=bearer(token))
                assert r.status_code < 500, (method, path, r.status_code, r.text)
                tried += 1
    assert tried >= 30


# --- metrics labels --------------------------------------------------------------------------


def test_metrics_labels_come_from_a_fixed_set(db_url: str) -> None:
    with serve(create_app(make_settings(db_url))) as url, live_client(url) as c:
        for i in range(300):
            c.request(f"JUNK{i}", f"/nowhere/{i}")
        c.request("GET", "/health")
        text = c.get("/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("coldtrace_api_requests_total")]
    methods = set(re.findall(r'method="([^"]+)"', "\n".join(lines)))
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert 'method="other",route="unmatched"' in text
    assert "JUNK" not in text
    assert len(lines) < 10


# --- security headers, pages without inline script ------------------------------------------------


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    signed = TestClient(client.app)
    assert sign_in_response(signed, "quinn", PASSWORDS["qa"]).status_code == 303
    answers = [
        client.get("/api/sensors"),  # 401 JSON
        client.get("/", follow_redirects=False),  # 303
        client.get("/sign-in"),
        client.get("/static/style.css"),
        client.get("/nowhere"),
        client.get("/api/alerts?status=%00"),  # 400 from the middleware
        client.get("/health"),
        client.get("/docs"),
        signed.get("/"),
        signed.get("/alerts"),
        signed.get("/account/password"),
    ]
    for r in answers:
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp, r.url
        script = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
        assert "unsafe-inline" not in script
        assert "unsafe-eval" not in script
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert "strict-transport-security" not in r.headers  # plain HTTP here
    for r in answers[8:]:
        assert r.status_code == 200
        assert "'unsafe-inline'" not in r.headers["content-security-policy"]
        # nothing the CSP would block: no inline script, handler or style attribute
        assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), r.url
        assert not re.search(r"\son[a-z]+\s*=", r.text), r.url
        assert not re.search(r"\sstyle\s*=", r.text), r.url


# --- forwarded headers only from trusted proxies ------------------------------------------------


def sources(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        return [s for (s,) in conn.execute("SELECT source FROM erp.login_attempts ORDER BY id")]


def test_forwarded_for_is_believed_only_from_trusted_proxies(db_url: str) -> None:
    add_user(db_url, "ida", ["admin"], PASSWORDS["admin"])
    forged = {"X-Forwarded-For": "127.0.0.9"}
    with TestClient(create_app(make_settings(db_url))) as c:
        c.post("/api/auth/token", data={"username": "ida", "password": "x"}, headers=forged)
    with TestClient(create_app(make_settings(db_url, trusted_proxies=["testclient"]))) as c:
        c.post("/api/auth/token", data={"username": "ida", "password": "x"}, headers=forged)
    assert sources(db_url) == ["testclient", "127.0.0.9"]


def test_trusted_proxies_setting_reads_a_comma_separated_list(monkeypatch) -> None:
    monkeypatch.setenv("COLDTRACE_API_TRUSTED_PROXIES", "127.0.0.1, 10.1.0.0/16")
    assert ApiSettings().trusted_proxies == ["127.0.0.1", "10.1.0.0/16"]
    monkeypatch.delenv("COLDTRACE_API_TRUSTED_PROXIES")
    assert ApiSettings().trusted_proxies == []


# --- offline docs ------------------------------------------------------------------------------


def test_docs_use_only_local_assets(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        urls = re.findall(r'(?:src|href|spec-url)="([^"]+)"', html.text)
        assert len(urls) >= 2
        for url in urls:
            assert url.startswith("/"), url  # no CDN, no other host
            assert not url.startswith("//"), url
            assert client.get(url).status_code == 200, url
    init = client.get("/static/swagger-init.js")
    assert init.headers["content-type"].startswith(("text/javascript", "application/javascript"))


# --- the JWT secret ------------------------------------------------------------------------------


def test_the_api_refuses_to_start_without_a_proper_jwt_secret(db_url: str, monkeypatch) -> None:
    monkeypatch.delenv("COLDTRACE_API_JWT_SECRET", raising=False)
    with pytest.raises(UnsafeSettingsError, match="COLDTRACE_API_JWT_SECRET is not set"):
        create_app(ApiSettings(database_url=db_url))
    with pytest.raises(UnsafeSettingsError, match="at least 32"):
        create_app(ApiSettings(database_url=db_url, jwt_secret=SecretStr("short-secret")))
    result = CliRunner().invoke(cli, ["api", "--port", "1"], env={"COLDTRACE_DATABASE_URL": db_url})
    assert result.exit_code != 0
    assert "COLDTRACE_API_JWT_SECRET" in str(result.exception) + result.output
