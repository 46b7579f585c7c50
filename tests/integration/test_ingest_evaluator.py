"""The evaluator thread beside the writer (ingest/evaluator.py), on real PostgreSQL."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from ingest.evaluator import Evaluator
from ingest.store import Store
from tests.integration.test_ingest_store_paths import T0, plan

pytestmark = pytest.mark.timeout(120)


def pending(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry.eval_pending").fetchone()
    return int(row[0]) if row else -1


def test_committed_ranges_are_evaluated_soon_and_at_stop(db_url: str) -> None:
    ev = Evaluator(db_url, clock=lambda: T0 / 1000 + 3600)
    ev.start()
    try:
        with psycopg.connect(db_url) as conn:
            Store(conn).write(plan(1, [(0, "a", 4.0), (1, "b", 9.5)]))
            conn.commit()
        assert pending(db_url) == 2
        ev.committed()
        deadline = time.monotonic() + 20
        while pending(db_url) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pending(db_url) == 0
        with psycopg.connect(db_url) as conn:
            Store(conn).write(plan(3, [(2, "a", 4.5)]))
            conn.commit()
    finally:
        ev.stop()  # a last pass over what is pending, without being woken
    assert pending(db_url) == 0


def test_an_evaluator_without_database_never_holds_the_writer() -> None:
    ev = Evaluator("postgresql://nobody@127.0.0.1:1/none", max_behind=2)
    ev.start()
    try:
        for _ in range(20):
            ev.committed()
        started = time.monotonic()
        ev.wait_caught_up(threading.Event())
        assert time.monotonic() - started < 10
    finally:
        ev.stop()
