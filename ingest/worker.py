"""The ingest loop: collect a batch of messages, commit it, then ack and publish watermarks.

Committed ranges are evaluated for excursions by a thread of their own
(ingest/evaluator.py) while the next batch is written.

Nothing is acknowledged before it is committed. A database outage stops acking (the
broker keeps the messages) and the worker retries until the database is back; a
message the database itself rejects is dead-lettered on its own so the rest go on.

A worker that cannot work must not look alive: when the writer thread stops for any
reason but shutdown, `run` raises, and the process exits non-zero so that its
supervisor restarts it (ingest/main.py does the same for any other thread that dies).
The writer also purges dead letters past their retention, between flushes.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from ingest import dead_letters
from ingest.batching import Batch, Handoff
from ingest.errors import IngestError, StoreError
from ingest.evaluator import Evaluator
from ingest.intake import Intake
from ingest.metrics import IngestMetrics
from ingest.partitions import consumer_for
from ingest.plan import DeadLetter, Plan, Received
from ingest.settings import IngestSettings
from ingest.store import RETRYABLE, Store, WriteResult
from telemetry.codec import encode
from telemetry.payloads import VERSION, Ack
from telemetry.topics import ack_topic

log = logging.getLogger(__name__)

PURGE_BATCHES = 20  # batches of dead letters purged at most per pause of the writer
# The database's state, not the message's fault: wait and retry, never dead-letter.
# A read-only database (a failover to a standby, default_transaction_read_only) too.
UNAVAILABLE = (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction)


@dataclass
class Totals:
    """Running totals of one worker, for logs and the demo summary."""

    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    flushes: int = 0


class Worker:
    """One stateless ingest worker; run as many as the broker's shared subscription allows.

    Its broker side is one ``$share`` session, or on a broker without shared
    subscriptions the partitions it owns (`ingest.partitions`), as configured.
    """

    def __init__(
        self,
        settings: IngestSettings,
        db_url: str,
        *,
        clock: Callable[[], float] = time.time,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.db_url = db_url
        self.clock = clock
        self.metrics = metrics or IngestMetrics()
        self.totals = Totals()
        self.consumer = consumer_for(settings, db_url)
        self.consumer.inbox = Intake(
            max_messages=settings.intake_max_messages,
            max_bytes=settings.intake_max_bytes,
            on_drop=lambda _msg: self.metrics.intake_dropped.inc(),
        )
        self.metrics.watch(self.consumer.inbox)
        self._store: Store | None = None
        self._evaluator = Evaluator(db_url, clock=clock, max_behind=settings.eval_max_behind)
        self.ready = threading.Event()
        self._writer_error: BaseException | None = None
        self._next_purge = 0.0  # monotonic time of the next dead-letter purge
        self._dropped_logged = 0
        self._next_drop_log = 0.0

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, then flush what is pending and return.

        Three stages overlap: this thread takes and decodes messages while a writer
        thread commits the previous batch (the database releases the GIL while it
        works) and acks it, and an evaluator thread evaluates the committed ranges on a
        connection of its own (ingest/evaluator.py). A batch goes to the writer the
        moment the writer is free (ingest/batching.py): at low load each message is
        committed at once, under load batches grow to what arrived during the previous
        commit. A full batch waits for the writer, so a slow database slows collection
        down instead of piling up memory.
        """
        self._store = self._connect(stop)
        self.consumer.start()
        self.ready.set()
        self._evaluator.start()
        handoff = Handoff(on_writer_waiting=self.consumer.inbox.wake)
        writer = threading.Thread(
            target=self._write_loop, args=(handoff, stop), name="ingest-writer", daemon=True
        )
        writer.start()
        try:
            batch = Batch()
            while not stop.is_set():
                if not writer.is_alive():
                    raise IngestError("the writer thread stopped") from self._writer_error
                self._log_drops()
                batch = self._collect(batch, handoff)
            # drain what paho already delivered, so it is acked before we disconnect
            while True:
                self._take(batch, timeout=0)
                if not batch.messages:
                    break
                self._hand_over(handoff, batch, writer)
                batch = Batch()
        finally:
            with contextlib.suppress(IngestError):
                self._hand_over(handoff, None, writer)
            writer.join()
            self._evaluator.stop()
            self.consumer.stop()
            if self._store is not None:
                self._store.conn.close()
        if self._writer_error is not None:
            raise self._writer_error

    def _collect(self, batch: Batch, handoff: Handoff) -> Batch:
        """One step of the collector: hand ``batch`` over, or take more; the batch to go on with.

        ``max_delay_ms`` (0 by default) lets a batch linger that long for more messages
        even when the writer is free: fewer, larger commits for more latency.
        """
        s = self.settings
        if batch.messages and handoff.writer_waiting:
            lingered = time.monotonic() - batch.started
            if self._full(batch) or lingered * 1000 >= s.max_delay_ms:
                if handoff.put(batch, timeout=0.5):
                    return Batch()
                return batch
            self._take(batch, timeout=s.max_delay_ms / 1000 - lingered)
            return batch
        if self._full(batch):
            handoff.wait_writer(timeout=0.5)
            return batch
        self._take(batch, timeout=0.2)
        return batch

    def _full(self, batch: Batch) -> bool:
        return (
            len(batch.messages) >= self.settings.max_messages
            or batch.size >= self.settings.max_bytes
        )

    def _take(self, batch: Batch, *, timeout: float) -> None:
        """Take what the intake holds (waiting up to ``timeout`` for it) into ``batch``."""
        s = self.settings
        msgs = self.consumer.inbox.take(
            s.max_messages - len(batch.messages), max(s.max_bytes - batch.size, 1), timeout
        )
        if msgs:
            batch.add(msgs, now_ms=int(self.clock() * 1000), max_future_ms=s.max_future_ms)

    def _hand_over(self, handoff: Handoff, item: Batch | None, writer: threading.Thread) -> None:
        while writer.is_alive():
            if handoff.put(item, timeout=0.5):
                return
        raise IngestError("the writer thread stopped") from self._writer_error

    def _write_loop(self, handoff: Handoff, stop: threading.Event) -> None:
        try:
            while True:
                try:
                    item = handoff.get(timeout=1.0)
                except queue.Empty:
                    self._maybe_purge()
                    continue
                if item is None:
                    break
                self._evaluator.wait_caught_up(stop)
                self._flush(item.messages, item.plan, stop)
                self._maybe_purge()
        except StoreError as err:
            if not stop.is_set():
                self._writer_error = err
            log.warning("stopping with a batch unacknowledged (the broker keeps it): %s", err)
        except BaseException as err:
            self._writer_error = err
            log.exception("the writer thread failed; stopping the worker")

    def _maybe_purge(self) -> None:
        """Purge dead letters past retention, at most once per interval (writer thread)."""
        s = self.settings
        store = self._store
        if s.dead_letter_retention_days == 0 or time.monotonic() < self._next_purge:
            return
        if store is None or store.conn.closed:
            return
        self._next_purge = time.monotonic() + s.dead_letter_purge_interval_s
        before = datetime.fromtimestamp(self.clock(), UTC) - timedelta(
            days=s.dead_letter_retention_days
        )
        try:
            deleted = dead_letters.purge(store.conn, before=before, max_batches=PURGE_BATCHES)
        except psycopg.Error as err:  # the next flush finds out whether the database is gone
            log.warning(
                "purging dead letters failed, retrying in %.0f s: %s",
                s.dead_letter_purge_interval_s,
                err,
            )
            return
        if deleted:
            self.metrics.dead_letters_purged.inc(deleted)
            log.info("purged %d dead letters last received before %s", deleted, before.isoformat())
        if deleted == PURGE_BATCHES * dead_letters.PURGE_BATCH:  # a backlog: go on soon
            self._next_purge = time.monotonic() + 1.0

    def _log_drops(self) -> None:
        """Say how many QoS 0 messages the full intake dropped, at most once a minute."""
        dropped = self.consumer.inbox.dropped
        if dropped == self._dropped_logged or time.monotonic() < self._next_drop_log:
            return
        log.warning(
            "intake full: dropped %d QoS 0 messages (gateways publish QoS 1; QoS 0 is not "
            "kept under load)",
            dropped - self._dropped_logged,
        )
        self._dropped_logged = dropped
        self._next_drop_log = time.monotonic() + 60

    def _plan(self, batch: list[Received]) -> Plan:
        plan = Plan()
        now_ms = int(self.clock() * 1000)
        for msg in batch:
            plan.add(msg, now_ms=now_ms, max_future_ms=self.settings.max_future_ms)
        return plan

    def _flush(self, batch: list[Received], plan: Plan, stop: threading.Event) -> None:
        started = time.perf_counter()
        result = self._write_with_retry(batch, stop, plan)
        self.consumer.ack(batch)
        for key, committed in result.watermarks.items():
            ack = Ack(
                v=VERSION,
                gateway=key.gateway,
                stream=key.stream,
                committed=committed,
                t=int(self.clock() * 1000),
            )
            self.consumer.publish(
                ack_topic(key.site, key.gateway, key.stream), encode(ack), retain=True
            )
        t = self.totals
        t.messages += len(batch)
        t.stored += result.stored
        t.duplicates += result.duplicates
        t.dead_letters += result.dead_letters
        t.flushes += 1
        m = self.metrics
        m.messages.inc(len(batch))
        m.stored.inc(result.stored)
        m.duplicates.inc(result.duplicates)
        m.dead_letters.inc(result.dead_letters)
        m.dead_letters_repeated.inc(result.dead_letters_repeated)
        m.flush_seconds.observe(time.perf_counter() - started)
        self._evaluator.committed()

    def _write_with_retry(
        self, batch: list[Received], stop: threading.Event, plan: Plan | None = None
    ) -> WriteResult:
        """Write the batch; on a connection loss reconnect and retry until it works.

        At shutdown (``stop`` set) a lost database ends the retries with `StoreError`:
        the batch stays unacknowledged and the broker re-delivers it later.
        """
        delay = 0.5
        plan = plan or self._plan(batch)
        while True:
            store = self._store or self._connect(stop)
            self._store = store
            try:
                return store.write(plan)
            except StoreError as err:
                cause = err.__cause__
                if isinstance(cause, RETRYABLE):
                    log.warning("retrying after %s", cause)
                    continue
                if isinstance(cause, UNAVAILABLE) or store.conn.closed:
                    if stop.is_set():
                        raise
                    log.error("database unavailable, retrying in %.1f s: %s", delay, err)  # noqa: TRY400
                    self._drop_store()
                    time.sleep(delay)
                    delay = min(delay * 2, 30)
                    continue
                if len(batch) == 1:
                    return store.write(self._rejected_by_db(batch[0], str(cause)))
                log.warning(
                    "database rejected a batch (%s), writing its %d messages one by one",
                    cause,
                    len(batch),
                )
                return _merge([self._write_with_retry([m], stop) for m in batch])

    def _rejected_by_db(self, msg: Received, reason: str) -> Plan:
        plan = self._plan([msg])  # keeps the seq ranges, so the watermark moves past it
        plan.readings.clear()
        plan.states.clear()
        plan.events.clear()
        plan.dead_letters = [DeadLetter(msg.topic, f"database rejected it: {reason}", msg.payload)]
        return plan

    def _drop_store(self) -> None:
        if self._store is not None:
            self._store.conn.close()
        self._store = None

    def _connect(self, stop: threading.Event) -> Store:
        delay = 0.5
        while True:
            conn: psycopg.Connection | None = None
            try:
                conn = psycopg.connect(self.db_url)
                return Store(  # it creates its staging table: refused while read-only
                    conn,
                    dead_letter_payload_bytes=self.settings.dead_letter_payload_bytes,
                    max_sensors_per_gateway=self.settings.max_sensors_per_gateway,
                )
            except UNAVAILABLE as err:
                if conn is not None:
                    conn.close()
                if stop.is_set():
                    raise StoreError(f"database unavailable at shutdown: {err}") from err
                log.error("cannot connect to the database, retrying in %.1f s: %s", delay, err)  # noqa: TRY400
                time.sleep(delay)
                delay = min(delay * 2, 30)


def _merge(results: list[WriteResult]) -> WriteResult:
    watermarks = {}
    for r in results:
        watermarks.update(r.watermarks)
    return WriteResult(
        stored=sum(r.stored for r in results),
        duplicates=sum(r.duplicates for r in results),
        dead_letters=sum(r.dead_letters for r in results),
        watermarks=watermarks,
    )
