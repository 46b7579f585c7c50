"""Junk into every form and page of the web UI: never a 5xx, never a change without CSRF.

The pages are not in the OpenAPI document (they answer HTML), so schemathesis does not
reach them; this is the hypothesis test of their own. Each example is a fresh browser,
signed in as a QA manager who also works in the warehouse (every form is open to it),
that sends one form as a browser never would: NUL bytes, lone surrogates and invalid
UTF-8, strings of hundreds of kilobytes, fields missing, repeated or unknown, files
where text belongs, JSON or no content type at all, with the session's CSRF token or
without. Checked: no 5xx; a refusal is a 4xx (or the form again); without the token,
nothing is written to the audit trail. The sign-in form too (its own CSRF nonce), and
every page with junk in its path and query.

Bounded for ``make test`` (derandomized); ``HYPOTHESIS_PROFILE=deep`` runs 500 each.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_from_bytes

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from erp_core.app import create_app
from erp_core.auth import tokens
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import add_user
from tests.integration.fuzz_seed import module_database, seed
from tests.integration.web_helpers import csrf_of, sign_in

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECRET = "web-forms-fuzz-secret-0123456789abcdef"
PASSWORD = "Forms-Pass-4711!"
DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"
FUZZ = settings(
    max_examples=500 if DEEP else 40,
    derandomize=not DEEP,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
FORMS = {
    "/sign-in": ["username", "password", "next", "csrf_token"],
    "/account/password": [
        "current_password",
        "new_password",
        "new_password_again",
        "next",
        "csrf_token",
    ],
    "/sign-out": ["csrf_token"],
    "/lots/{lot_id}/release": ["action", "password", "justification", "csrf_token"],
    "/lots/{lot_id}/override": ["confirmed", "justification", "password", "csrf_token"],
    # no proposal 1 in the seed: a 404 after the form is read, or a refusal before
    "/release/overrides/1/approval": ["confirmed", "password", "csrf_token"],
    "/alerts/{alert_id}/ack": ["comment", "next", "csrf_token"],
    "/alerts/{alert_id}/close": [
        "disposition",
        "comment",
        "meaning",
        "password",
        "lot_disposition",
        "csrf_token",
    ],
    "/scans/{source}/{event_id}/retry": ["csrf_token"],
    # master data: sent by an administrator (ida), the only role that may
    "/items/new": [
        "gtin",
        "name",
        "range_low",
        "range_high",
        "alarm_profile_id",
        "mkt_limit",
        "tor_budget_minutes",
        "shelf_life_days",
        "implantable",
        "csrf_token",
    ],
    "/items/{item_id}/edit": [
        "reason",
        "name",
        "range_low",
        "range_high",
        "alarm_profile_id",
        "mkt_limit",
        "tor_budget_minutes",
        "shelf_life_days",
        "implantable",
        "csrf_token",
    ],
    "/items/{item_id}/retire": ["reason", "csrf_token"],
    "/locations/new": ["code", "name", "kind", "parent_id", "csrf_token"],
    "/locations/{location_id}/edit": ["reason", "code", "name", "kind", "parent_id", "csrf_token"],
    "/locations/{location_id}/retire": ["reason", "csrf_token"],
}
ADMIN_FORMS = ("/items", "/locations")
PAGES = [
    "/",
    "/sensors/{sensor_id}",
    "/dead-letters",
    "/alerts",
    "/alerts/{alert_id}",
    "/lots",
    "/lots/{lot_id}",
    "/lots/{lot_id}/override",
    "/scans",
    "/sign-in",
    "/account/password",
    "/items",
    "/items/{item_id}",
    "/items/{item_id}/edit",
    "/items/new",
    "/locations",
    "/locations/{location_id}",
    "/locations/{location_id}/edit",
    "/locations/new",
]
PAGE_QUERY = [
    "next",
    "why",
    "hours",
    "start",
    "end",
    "limit",
    "status",
    "auto",
    "page",
    "q",
    "done",
    "parent",
]
SURROGATE = "\ud800".encode("utf-8", "surrogatepass")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


junk = st.one_of(
    st.text(max_size=40).map(_bytes),
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"",
            b"\x00",
            b"a\x00b",
            SURROGATE,
            b"x" + SURROGATE + b"y",
            b"\xff\xfe\xfd",
            b"\xc0\x80",
            "\u202e\ufeff\u0085".encode(),
            b"%00",
            b"-1",
            b"0",
            b"1e309",
            b"99999999999999999999",
            b"release",
            b"use_as_is",
            PASSWORD.encode(),
        ]
    ),
    st.sampled_from([10_000, 100_000, 300_000, 600_000, 1_100_000]).map(lambda n: b"x" * n),
)
field_name = st.sampled_from(["extra", "", "csrf_token[]", "\x00"]).map(_bytes)


@dataclass
class Site:
    app: FastAPI
    db_url: str
    ids: dict[str, object]


@pytest.fixture(scope="module")
def site(migrated_template: str) -> Iterator[Site]:
    """One database and app for the module, seeded with a record of every kind."""
    with module_database(migrated_template) as db_url:
        users = {"admin": "ida", "qa_manager": "quinn", "warehouse": "walt"}
        for role, name in users.items():
            add_user(db_url, name, [role], PASSWORD, now=NOW - timedelta(days=1))
        add_user(db_url, "fay", ["qa_manager", "warehouse"], PASSWORD, now=NOW - timedelta(days=1))
        settings_ = ApiSettings(
            database_url=db_url,
            pool_min_size=1,
            pool_max_size=4,
            jwt_secret=SecretStr(SECRET),
            login_max_failures=1_000_000,  # the limits have tests of their own
            login_source_max_failures=1_000_000,
            login_account_max_failures=1_000_000,
        )
        app = create_app(settings_, clock=lambda: NOW)
        with TestClient(app) as client:
            headers = {
                role: {"Authorization": f"Bearer {_token(name)}"} for role, name in users.items()
            }
            ids = seed(client, db_url, headers=headers, now=NOW)
            yield Site(app=app, db_url=db_url, ids=ids)


def _token(username: str) -> str:
    return tokens.issue(username=username, secret=SECRET, now=NOW, lifetime=timedelta(days=1))


def _audit_entries(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM erp.audit_log").fetchone()
    assert row is not None
    return int(row[0])


def _path(template: str, ids: dict[str, object], segment: bytes | None) -> str:
    """``template`` with the seeded ids, its first parameter spoiled by ``segment`` if given."""
    if segment is not None and "{" in template:
        first = template[template.index("{") : template.index("}") + 1]
        template = template.replace(first, quote_from_bytes(segment, safe=""), 1)
    return template.format(**ids)


def _encode(pairs: list[tuple[bytes, bytes]], kind: str) -> tuple[bytes, dict[str, str]]:
    if kind == "urlencoded":
        body = b"&".join(
            quote_from_bytes(k).encode() + b"=" + quote_from_bytes(v).encode() for k, v in pairs
        )
        return body, {"content-type": "application/x-www-form-urlencoded"}
    if kind in {"multipart", "files"}:
        boundary = b"fuzzboundary7MA4YWxkTrZu0gW"
        parts = []
        for k, v in pairs:
            filename = b'; filename="a\x00.txt"' if kind == "files" else b""
            parts.append(
                b"--"
                + boundary
                + b'\r\nContent-Disposition: form-data; name="'
                + k.replace(b'"', b"")
                + b'"'
                + filename
                + b"\r\n\r\n"
                + v
                + b"\r\n"
            )
        body = b"".join(parts) + b"--" + boundary + b"--\r\n"
        return body, {"content-type": f"multipart/form-data; boundary={boundary.decode()}"}
    if kind == "json":
        data = {k.decode("latin-1"): v.decode("latin-1") for k, v in pairs}
        return json.dumps(data).encode(), {"content-type": "application/json"}
    return b"".join(v for _, v in pairs), {}


def _browser(site: Site, username: str = "fay") -> tuple[TestClient, str]:
    """A browser signed in as fay (qa_manager + warehouse) and its session's CSRF token."""
    browser = TestClient(site.app)  # the app already runs (module fixture)
    sign_in(browser, username, PASSWORD)
    page = browser.get("/account/password")
    assert page.status_code == 200, page.text
    return browser, csrf_of(page.text)


@pytest.mark.parametrize("form", list(FORMS))
@FUZZ
@given(
    data=st.data(),
    extra=st.lists(st.tuples(field_name, junk), max_size=2),
    with_csrf=st.booleans(),
    kind=st.sampled_from(["urlencoded"] * 6 + ["multipart", "files", "json", "raw"]),
    segment=st.one_of(st.none(), st.none(), st.none(), junk.filter(lambda b: len(b) < 1000)),
)
def test_forms_never_fail_on_junk(
    site: Site,
    form: str,
    data: st.DataObject,
    extra: list[tuple[bytes, bytes]],
    with_csrf: bool,
    kind: str,
    segment: bytes | None,
) -> None:
    fields = [f for f in FORMS[form] if f != "csrf_token"]
    # every field of the form, each one junk (or left out), then junk fields besides
    maybe = st.one_of(junk, junk, junk, st.none())
    values = data.draw(st.fixed_dictionaries(dict.fromkeys(fields, maybe)))
    pairs = [(k.encode(), v) for k, v in values.items() if v is not None] + extra
    if form == "/sign-in":
        browser = TestClient(site.app)
        csrf = csrf_of(browser.get("/sign-in").text)
    else:
        browser, csrf = _browser(site, "ida" if form.startswith(ADMIN_FORMS) else "fay")
    if with_csrf:
        pairs.append((b"csrf_token", csrf.encode()))
    body, headers = _encode(pairs, kind)
    before = _audit_entries(site.db_url)
    r = browser.post(
        _path(form, site.ids, segment), content=body, headers=headers, follow_redirects=False
    )
    event(f"{'with' if with_csrf else 'without'} CSRF token, {kind}: {r.status_code}")
    assert r.status_code < 500, (r.status_code, r.text[:500])
    assert r.status_code in {200, 303, 400, 401, 403, 404, 405, 409, 413, 422, 429}, r.text[:500]
    if not with_csrf and form != "/sign-in":
        assert r.status_code in {400, 403, 404, 405, 413, 422}, (r.status_code, r.text[:300])
        assert _audit_entries(site.db_url) == before  # nothing was changed


@pytest.mark.parametrize("page", PAGES)
@FUZZ
@given(
    query=st.lists(
        st.tuples(
            st.sampled_from(PAGE_QUERY).map(str.encode) | field_name,
            junk.filter(lambda b: len(b) < 10_000),
        ),
        max_size=4,
    ),
    segment=st.none() | junk.filter(lambda b: len(b) < 1000),
)
def test_pages_never_fail_on_junk(
    site: Site, page: str, query: list[tuple[bytes, bytes]], segment: bytes | None
) -> None:
    browser, _ = _browser(site)
    qs = "&".join(f"{quote_from_bytes(k)}={quote_from_bytes(v)}" for k, v in query)
    path = _path(page, site.ids, segment)
    r = browser.get(f"{path}?{qs}" if qs else path, follow_redirects=False)
    event(str(r.status_code))
    assert r.status_code < 500, (r.status_code, r.text[:500])
    assert r.status_code in {200, 303, 307, 400, 404, 422}, (r.status_code, r.text[:300])
