"""Real services for tests: a Mosquitto of the test's own and a fresh PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from coldtrace.broker import Broker, free_port
from coldtrace.db import migrate
from coldtrace.db.settings import DatabaseSettings

ADMIN_URL = os.environ.get(
    "COLDTRACE_TEST_ADMIN_URL", "postgresql://coldtrace:coldtrace@127.0.0.1:5432/postgres"
)


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


def _url(dbname: str) -> str:
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{dbname}"


@pytest.fixture(scope="session")
def migrated_template() -> Iterator[str]:
    """A database migrated once per test session, used as a template for each test."""
    name = f"ct_tpl_{uuid.uuid4().hex[:10]}"
    settings = DatabaseSettings(url=_url(name))
    migrate.upgrade(settings.url, settings.sqlalchemy_url)
    yield name
    migrate.drop_database(_url(name))


@pytest.fixture
def db_url(migrated_template: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own; its libpq URL."""
    name = f"ct_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    yield _url(name)
    migrate.drop_database(_url(name))
