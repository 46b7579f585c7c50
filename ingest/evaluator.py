"""Excursion evaluation beside the writer, on a database connection of its own.

The writer used to evaluate the ranges of each batch on its own connection after the
commit, so the next batch waited for it: with readings near the pre-alarm band every
sensor is evaluated in full, and that took longer than the COPY (issue 13,
docs/benchmarks.md). Now the writer only wakes this thread after each commit; it
drains ``telemetry.eval_pending`` (``SKIP LOCKED`` claims, as before) while the writer
goes on with the next batch. At low load it starts the moment a batch is committed,
so an alarm's latency is unchanged; under load its claims cover several batches at
once.

Nothing is lost by the split: the ranges were queued in the batch's own transaction,
a failed pass leaves them queued (rolled back) for the next pass or the notifier's
sweep, and a lost connection is re-made with back-off. So that alerts cannot fall
behind without bound, the writer waits (`wait_caught_up`) while more than
``max_behind`` committed batches are not evaluated yet — by a working evaluator: a
pass that fails counts as done for this, so an evaluator that cannot reach the
database never stops the storing of readings (its ranges wait in the table).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from ingest.evaluate import CLAIM, evaluate_pending

log = logging.getLogger(__name__)

APPLICATION_NAME = "coldtrace-ingest-evaluator"  # tells its session apart in pg_stat_activity


class Evaluator:
    """A thread that evaluates pending ranges whenever the writer has committed some."""

    def __init__(
        self,
        db_url: str,
        *,
        clock: Callable[[], float] = time.time,
        max_behind: int = 8,
    ) -> None:
        self.db_url = db_url
        self.clock = clock
        self.max_behind = max_behind
        self._cond = threading.Condition()
        self._requested = 0  # commits announced by the writer
        self._done = 0  # commits whose ranges a finished pass has seen
        self._stopping = False
        self._conn: psycopg.Connection | None = None
        self._thread = threading.Thread(target=self._loop, name="ingest-evaluator", daemon=True)

    def start(self) -> None:
        """Start the thread (it connects on its first pass)."""
        self._thread.start()

    def committed(self) -> None:
        """Say that a batch (and its ranges) is committed: evaluate it soon."""
        with self._cond:
            self._requested += 1
            self._cond.notify_all()

    def wait_caught_up(self, stop: threading.Event) -> None:
        """Wait while more than ``max_behind`` committed batches are not evaluated yet."""
        with self._cond:
            while (
                self._requested - self._done > self.max_behind
                and not stop.is_set()
                and self._thread.is_alive()
            ):
                self._cond.wait(0.5)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish a last pass over what is pending, then stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        delay = 0.5
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(
                        lambda: self._requested > self._done or self._stopping, timeout=1.0
                    )
                    target, stopping = self._requested, self._stopping
                    if target == self._done and not stopping:
                        continue
                drained = self._drain()
                with self._cond:  # even after a failure: the ranges stay queued, and a
                    self._done = max(self._done, target)  # writer must not wait for them
                    self._cond.notify_all()
                if drained:
                    delay = 0.5
                elif not stopping:
                    time.sleep(delay)  # the database is away; the ranges stay queued
                    delay = min(delay * 2, 30)
                if stopping:
                    return
        finally:
            with self._cond:
                self._done = self._requested  # nobody waits for a thread that is gone
                self._cond.notify_all()
            if self._conn is not None:
                self._conn.close()

    def _drain(self) -> bool:
        """Evaluate until nothing claimable is left; False if the database failed us."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.db_url, application_name=APPLICATION_NAME)
            conn = self._conn
            while True:
                with conn.transaction():
                    now = datetime.fromtimestamp(self.clock(), UTC)
                    summary = evaluate_pending(conn, now=now, limit=CLAIM)
                if summary.ranges < CLAIM:
                    return True
        except psycopg.OperationalError as err:
            log.warning("excursion evaluation: database unavailable, ranges stay queued: %s", err)
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            return False
        except Exception:
            log.exception("excursion evaluation failed; its ranges stay queued for a retry")
            if self._conn is not None and self._conn.broken:
                self._conn.close()
                self._conn = None
            return True  # a bug or a bad sensor: retried by the next pass or the sweep
