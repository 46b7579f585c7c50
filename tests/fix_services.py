"""Real services for tests: a Mosquitto of the test's own and a fresh PostgreSQL database.

The database fixtures follow the production roles (docs/access-and-audit.md): the
template is migrated by the owner (``ADMIN_URL``'s login, which may create databases),
which also applies the declared privileges; ``db_url`` is the **application role's**
login to the test's own copy, so every test runs with the privileges ingest and the API
have. Tests that must act as someone stronger — a migration's owner, an attacker with
the owner's or the superuser's login — take ``owner_db_url`` or ``superuser_db_url``.
The passwords are the ones scripts/services.sh gives a development machine.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coldtrace.broker import Broker, free_port
from db import migrate
from erp_core.audit.keys import new_key_file

ADMIN_URL = os.environ.get(
    "COLDTRACE_TEST_ADMIN_URL", "postgresql://coldtrace:coldtrace@127.0.0.1:5432/postgres"
)
APP_LOGIN = os.environ.get("COLDTRACE_TEST_APP_LOGIN", "coldtrace_app:coldtrace_app")
READER_LOGIN = os.environ.get("COLDTRACE_TEST_READER_LOGIN", "coldtrace_reader:coldtrace_reader")
SUPERUSER_URL = os.environ.get(
    "COLDTRACE_TEST_SUPERUSER_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RECORD_KEY_ENV = "COLDTRACE_RECORD_KEY_FILE"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A running Mosquitto with the project's config on a free port, authenticated.

    Anonymous clients are refused and each account is held to its ACL, as in a plant:
    use ``broker.ingest_credentials``, ``broker.observer_credentials`` (reads
    everything), ``broker.gateway_credentials(site, id)`` and the helpers in
    ``tests/mqtt_helpers.py``.
    """
    b = Broker(workdir=tmp_path / "mosquitto")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    """Like ``broker``, plus a TLS listener on ``tls_port`` (certificate of its own CA,
    ``tls_broker.tls.ca_cert``, valid for localhost and 127.0.0.1)."""
    b = Broker(workdir=tmp_path / "mosquitto-tls", tls_port=free_port())
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[object]:
    """Factory for brokers with extra config lines (e.g. a tiny max_queued_messages)."""
    started: list[Broker] = []

    def factory(extra_config: str = "", *, name: str = "mosquitto", **kwargs: Any) -> Broker:
        b = Broker(workdir=tmp_path / name, extra_config=extra_config, **kwargs)
        b.start()
        started.append(b)
        return b

    yield factory
    for b in started:
        b.stop()


def _url(dbname: str, base: str = ADMIN_URL) -> str:
    return f"{base.rsplit('/', 1)[0]}/{dbname}"


def as_login(url: str, login: str) -> str:
    """``url`` with its ``user:password@`` replaced by ``login``."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{login}@{rest.split('@', 1)[-1]}"


@pytest.fixture(scope="session", autouse=True)
def record_key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A record key for the whole session (APIs sign with it; the CLI reads the variable)."""
    path = tmp_path_factory.mktemp("record-key") / "record.key"
    new_key_file(path, key_id="test-1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(RECORD_KEY_ENV, str(path))
        yield path


@pytest.fixture(scope="session")
def migrated_template() -> Iterator[str]:
    """A database migrated once per test session (as the owner), a template for each test.

    It allows no connections, so TimescaleDB's scheduler stays out of it and copies never
    wait (``migrate.mark_template``; the superuser ends the scheduler already there).
    """
    name = f"ct_tpl_{uuid.uuid4().hex[:10]}"
    migrate.upgrade(_url(name))
    no_wait = migrate.mark_template(_url(name), superuser_url=SUPERUSER_URL)
    assert no_wait, f"sessions on {name} could not be ended (see docs/timescaledb.md)"
    yield name
    migrate.drop_database(_url(name))


@pytest.fixture
def test_database(migrated_template: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own; its name."""
    name = f"ct_test_{uuid.uuid4().hex[:12]}"
    migrate.copy_database(_url(migrated_template), name)
    yield name
    migrate.drop_database(_url(name))


@pytest.fixture
def db_url(test_database: str) -> str:
    """The test's database as the application role (what ingest, API and jobs log in as)."""
    return as_login(_url(test_database), APP_LOGIN)


@pytest.fixture
def owner_db_url(test_database: str) -> str:
    """The test's database as the owner of the schema (migrations; or a rogue DBA)."""
    return _url(test_database)


@pytest.fixture
def reader_db_url(test_database: str) -> str:
    """The test's database as the read-only role (Grafana, reports)."""
    return as_login(_url(test_database), READER_LOGIN)


@pytest.fixture
def superuser_db_url(test_database: str) -> str:
    """The test's database as a PostgreSQL superuser (the strongest insider)."""
    return _url(test_database, SUPERUSER_URL)
