"""The ERP's background work: scans and tag reads from the gateways become movements.

``run`` is the loop behind ``coldtrace erp-jobs``: it wakes on the queue trigger's
NOTIFY (or every ``interval_s`` when notifications are lost) and processes the queue
until it is empty, one transaction per batch. Any number may run; an advisory lock lets
one work at a time, so events are applied in device-time order.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from erp_core.stock.edge_movements import process_queue

log = logging.getLogger(__name__)
CHANNEL = "coldtrace_edge_events"
BATCH = 500


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def drain(conn: psycopg.Connection, *, now: Callable[[], datetime] = utc_now) -> Counter[str]:
    """Process queued events until none is left (or another worker holds the lock)."""
    total: Counter[str] = Counter()
    while True:
        with conn.transaction():
            counts = process_queue(conn, now=now(), limit=BATCH)
        total.update(counts)
        if counts.total() < BATCH:
            return total


def run(db_url: str, stop: threading.Event, *, interval_s: float = 5.0) -> None:
    """Process the edge-event queue whenever woken, until ``stop`` is set."""
    while not stop.is_set():
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                while not stop.is_set():
                    counts = drain(conn)
                    if counts:
                        log.info("edge events processed: %s", dict(counts))
                    for _ in conn.notifies(timeout=interval_s, stop_after=1):
                        pass
        except psycopg.OperationalError as err:
            log.warning("database unavailable (%s); retrying in %.0f s", err, interval_s)
            stop.wait(interval_s)
