"""Run a real ingest worker in a thread of the test, and read what it stored."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from coldtrace.broker import Broker
from ingest.worker import Worker
from tests.mqtt_helpers import T0_MS, ingest_settings


@contextlib.contextmanager
def running_worker(
    broker: Broker,
    db_url: str,
    *,
    clock: Callable[[], float] | None = lambda: T0_MS / 1000 + 3600,
    account: str = "ingest",
    **settings: Any,
) -> Iterator[tuple[Worker, threading.Thread]]:
    """A worker subscribed to ``broker`` as ingest account ``account`` (one per worker);
    stopped (and checked to stop) on exit."""
    options: dict[str, Any] = {"client_id": "ingest-test", "max_delay_ms": 50, **settings}
    w = Worker(
        ingest_settings(broker, account, **options),
        db_url,
        **({"clock": clock} if clock is not None else {}),
    )
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            w.run(stop)
        except BaseException as err:  # reported by the context manager
            errors.append(err)

    t = threading.Thread(target=run, daemon=True, name="test-worker")
    t.start()
    assert w.ready.wait(15), "worker did not subscribe"
    try:
        yield w, t
    finally:
        stop.set()
        t.join(20)
    assert not t.is_alive(), "worker did not stop"
    assert not errors, f"worker failed: {errors[0]!r}"


def rows(db_url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """All rows of ``sql``."""
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def scalar(db_url: str, sql: str, params: tuple[object, ...] = ()) -> Any:
    """The first column of the first row of ``sql``."""
    found = rows(db_url, sql, params)
    return found[0][0] if found else None
