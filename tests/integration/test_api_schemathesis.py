"""Schemathesis against the API's own OpenAPI document, with a real PostgreSQL behind it.

Every operation of the document is fuzzed through a real uvicorn server (schemathesis'
examples, coverage and fuzzing phases, valid and invalid data) as each of three users —
an administrator, a QA manager, a warehouse clerk — and without credentials. Checked on
every answer by schemathesis: no 5xx; status code, content type, headers and body as
the document declares them; data the document calls valid is not refused for its
shape; an operation that needs a token refuses a request
without one or with a forged one. Without credentials, nothing but the public
operations answers anything but 400/401/413 (or the router's 404 for no route at all).

Half of the cases name seeded records (a sensor with readings, an item, locations, lots,
a shipment, an alert, a deviation, a failed scan, a user) instead of made-up ids, so the
fuzzing reaches the views' own code, not only their 404.

Bounded for ``make test``: a few examples per operation, derandomized, so a failure
reproduces. ``HYPOTHESIS_PROFILE=deep`` runs many more with a fresh seed (or
``COLDTRACE_FUZZ_SEED``), shown in every failure. docs/api.md ("API fuzzing").
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis.config import SchemathesisConfig

from erp_core.app import create_app
from erp_core.audit.keys import Keyring, RecordKey
from erp_core.audit.service import set_actor
from erp_core.audit.settings import RecordConfig
from erp_core.auth import service as auth_service
from erp_core.auth import tokens
from erp_core.auth.models import Role
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import add_user
from tests.integration.fuzz_seed import module_database, seed
from tests.integration.live_api import serve

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECRET = "schemathesis-test-secret-0123456789abcdef"
DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"
EXAMPLES = int(os.environ.get("COLDTRACE_FUZZ_EXAMPLES") or (150 if DEEP else 6))
SEED = int(os.environ.get("COLDTRACE_FUZZ_SEED") or random.randrange(2**32)) if DEEP else 0
USERS = {"admin": "ida", "qa_manager": "quinn", "warehouse": "walt"}
PASSWORD = "Fuzz-Pass-4711!"
PUBLIC = ["/health", "/metrics", "/api/auth/token"]
# Valid by the document, yet refused by a rule it cannot express (a GS1 check digit, the
# password policy, start before end, a site has no parent, …): 422 with the reason.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]


def _openapi() -> dict[str, Any]:
    """The app's OpenAPI document (building the app opens nothing: no database needed)."""
    unused = RecordConfig(Keyring((RecordKey("spec", bytes(32)),)), None)
    settings = ApiSettings(database_url="postgresql://unused", jwt_secret=SecretStr(SECRET))
    return create_app(settings, records=unused).openapi()


def _config() -> SchemathesisConfig:
    generation: dict[str, Any] = {"max-examples": EXAMPLES, "mode": "all"}
    if not DEEP:
        generation["deterministic"] = True
    checks = {
        "positive_data_acceptance": {"expected-statuses": ACCEPTED},
        # pydantic's lax mode takes `true` for an integer and ignores unknown query
        # parameters: leniency towards requests, not a lie in the answers; the deep run
        # found only those (docs/api.md, "API fuzzing")
        "negative_data_rejection": {"enabled": False},
    }
    data: dict[str, Any] = {"generation": generation, "checks": checks}
    if DEEP:
        data["seed"] = SEED
    return SchemathesisConfig.from_dict(data)


schema = schemathesis.openapi.from_dict(_openapi(), config=_config())
authenticated = schema.exclude(path=PUBLIC)


@dataclass
class LiveApi:
    url: str
    db_url: str
    seeded: dict[str, object]
    headers: dict[str, dict[str, str]]
    sessions: dict[str, requests.Session] = field(default_factory=dict)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    def session(self, role: str) -> requests.Session:
        """A session per role, so no cookie of one role's answers reaches another's."""
        if role not in self.sessions:
            self.sessions[role] = requests.Session()
        return self.sessions[role]


def bearer(username: str) -> dict[str, str]:
    token = tokens.issue(username=username, secret=SECRET, now=NOW, lifetime=timedelta(days=1))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def live(migrated_template: str) -> Iterator[LiveApi]:
    """One database and one server for the module, seeded once (as the application role)."""
    with module_database(migrated_template) as db_url:
        for role, username in USERS.items():
            add_user(db_url, username, [role], PASSWORD, now=NOW - timedelta(days=1))
        add_user(db_url, "olga", ["operator"], PASSWORD, now=NOW - timedelta(days=1))
        settings = ApiSettings(
            database_url=db_url,
            pool_min_size=1,
            pool_max_size=4,
            jwt_secret=SecretStr(SECRET),
            # the limits have tests of their own: here the password checks behind them
            # are what the fuzzer should reach, not a 429 after the 20th wrong password
            login_max_failures=1_000_000,
            login_source_max_failures=1_000_000,
            login_account_max_failures=1_000_000,
        )
        headers = {role: bearer(username) for role, username in USERS.items()}
        with serve(create_app(settings, clock=lambda: NOW)) as url:
            with httpx.Client(base_url=url, timeout=30) as client:
                seeded = seed(client, db_url, headers=headers, now=NOW)
            api = LiveApi(
                url=url, db_url=db_url, seeded={**seeded, "username": "olga"}, headers=headers
            )
            yield api
            for session in api.sessions.values():
                session.close()


@pytest.fixture(autouse=True)
def fuzzed_users_restored(live: LiveApi) -> Iterator[None]:
    """The fuzzer may disable, reset or re-role any user it can name — the run's own too;
    after each operation those are put back, so the next one runs as who it says."""
    yield
    with psycopg.connect(live.db_url) as conn:
        set_actor(conn, user="fuzz-fixture", reason="restore the fuzz run's users")
        for role, username in USERS.items():
            user = auth_service.get_user(conn, username=username)
            if not user.active:
                auth_service.set_active(conn, username=username, active=True)
            if user.roles != {Role(role)}:
                auth_service.set_roles(conn, username=username, roles=[Role(role)], now=NOW)
            if user.must_change_password:
                conn.execute(
                    "UPDATE erp.users SET must_change_password = false WHERE id = %s", (user.id,)
                )


def _prepare(case: Any, live: LiveApi, use_seeded: bool) -> None:
    if use_seeded:
        for name in list(case.path_parameters or {}):
            if name in live.seeded:
                case.path_parameters[name] = live.seeded[name]


def _fuzz(case: Any, live: LiveApi, role: str, use_seeded: bool) -> None:
    _prepare(case, live, use_seeded)
    response = case.call_and_validate(
        base_url=live.url, session=live.session(role), headers=live.headers[role]
    )
    live.statuses[role, response.status_code] += 1


@authenticated.parametrize()
@schema.given(use_seeded=st.booleans())
def test_as_admin(case: Any, live: LiveApi, use_seeded: bool) -> None:
    _fuzz(case, live, "admin", use_seeded)


@authenticated.parametrize()
@schema.given(use_seeded=st.booleans())
def test_as_qa_manager(case: Any, live: LiveApi, use_seeded: bool) -> None:
    _fuzz(case, live, "qa_manager", use_seeded)


@authenticated.parametrize()
@schema.given(use_seeded=st.booleans())
def test_as_warehouse(case: Any, live: LiveApi, use_seeded: bool) -> None:
    _fuzz(case, live, "warehouse", use_seeded)


@schema.include(path=PUBLIC).parametrize()
@schema.given(use_seeded=st.booleans())
def test_public_operations(case: Any, live: LiveApi, use_seeded: bool) -> None:
    _prepare(case, live, use_seeded)
    response = case.call_and_validate(base_url=live.url, session=live.session("public"))
    live.statuses["public", response.status_code] += 1


@authenticated.parametrize()
@schema.given(use_seeded=st.booleans())
def test_without_credentials_only_refusals(case: Any, live: LiveApi, use_seeded: bool) -> None:
    _prepare(case, live, use_seeded)
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    response = case.call(base_url=live.url, session=live.session("anonymous"))
    live.statuses["anonymous", response.status_code] += 1
    status = response.status_code
    # refused before anyone looks at a token: a control character in the path or query,
    # a body over the limit, a body that is not JSON at all (FastAPI reads it first)
    refused_unread = status in (400, 413) or (
        status == 422 and all(e["type"] == "json_invalid" for e in response.json()["detail"])
    )
    no_route = status == 404 and response.json() == {"detail": "Not Found"}
    assert status in (401, 403) or refused_unread or no_route, (status, response.text)
    if status == 401:
        assert response.headers["www-authenticate"] == ["Bearer"]
    case.validate_response(response)


def test_the_fuzzing_reached_past_the_refusals(live: LiveApi) -> None:
    """Each role got successes (its tokens worked) and refusals of its role (403)."""
    if not any(role == "admin" for role, _ in live.statuses):
        pytest.skip("the fuzz tests above did not run (deselected)")
    for role in USERS:
        ok = sum(n for (r, s), n in live.statuses.items() if r == role and 200 <= s < 300)
        assert ok >= 20, (role, live.statuses)
        assert live.statuses[role, 403] > 0, (role, live.statuses)
    assert all(s >= 400 for (r, s) in live.statuses if r == "anonymous")
    print(f"requests sent: {sum(live.statuses.values())}; by (user, status): {live.statuses}")
