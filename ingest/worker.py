"""The ingest loop: collect a batch of messages, commit it, then ack and publish watermarks.

Nothing is acknowledged before it is committed. A database outage stops acking (the
broker keeps the messages) and the worker retries until the database is back; a
message the database itself rejects is dead-lettered on its own so the rest go on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from ingest.consumer import Consumer
from ingest.errors import StoreError
from ingest.metrics import IngestMetrics
from ingest.plan import DeadLetter, Plan, Received
from ingest.settings import IngestSettings
from ingest.store import RETRYABLE, Store, WriteResult
from telemetry.codec import encode
from telemetry.payloads import VERSION, Ack
from telemetry.topics import Kind, Topic

log = logging.getLogger(__name__)


@dataclass
class Totals:
    """Running totals of one worker, for logs and the demo summary."""

    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    flushes: int = 0


class Worker:
    """One stateless ingest worker; run as many as the broker's shared subscription allows."""

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
        self.consumer = Consumer(
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            client_id=settings.client_id,
            share_group=settings.share_group,
        )
        self._store: Store | None = None
        self.ready = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, then flush what is pending and return."""
        self._store = self._connect(stop)
        self.consumer.start()
        self.ready.set()
        try:
            while not stop.is_set():
                batch = self._collect(stop)
                if batch:
                    self._flush(batch, stop)
            # drain what paho already delivered, so it is acked before we disconnect
            while batch := self._collect(stop, wait=False):
                self._flush(batch, stop)
        finally:
            self.consumer.stop()
            if self._store is not None:
                self._store.conn.close()

    def _collect(self, stop: threading.Event, *, wait: bool = True) -> list[Received]:
        s = self.settings
        inbox = self.consumer.inbox
        batch: list[Received] = []
        try:
            batch.append(inbox.get(timeout=0.2) if wait else inbox.get_nowait())
        except queue.Empty:
            return batch
        deadline = time.monotonic() + s.max_delay_ms / 1000
        size = len(batch[0].payload)
        while len(batch) < s.max_messages and size < s.max_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop.is_set() and inbox.empty()):
                break
            try:
                msg = inbox.get(timeout=remaining)
            except queue.Empty:
                break
            batch.append(msg)
            size += len(msg.payload)
        return batch

    def _plan(self, batch: list[Received]) -> Plan:
        plan = Plan()
        now_ms = int(self.clock() * 1000)
        for msg in batch:
            plan.add(msg, now_ms=now_ms, max_future_ms=self.settings.max_future_ms)
        return plan

    def _flush(self, batch: list[Received], stop: threading.Event) -> None:
        started = time.perf_counter()
        result = self._write_with_retry(batch, stop)
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
                str(Topic.build(key.site, key.gateway, Kind.ACK)), encode(ack), retain=True
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
        m.flush_seconds.observe(time.perf_counter() - started)

    def _write_with_retry(self, batch: list[Received], stop: threading.Event) -> WriteResult:
        """Write the batch; on a connection loss reconnect and retry, forever."""
        delay = 0.5
        while True:
            store = self._store or self._connect(stop)
            self._store = store
            try:
                return store.write(self._plan(batch))
            except StoreError as err:
                cause = err.__cause__
                if isinstance(cause, RETRYABLE):
                    log.warning("retrying after %s", cause)
                    continue
                if isinstance(cause, psycopg.OperationalError) or store.conn.closed:
                    log.error("database unavailable, retrying in %.1f s: %s", delay, err)  # noqa: TRY400
                    self._drop_store()
                    time.sleep(delay)
                    delay = min(delay * 2, 30)
                    continue
                if len(batch) == 1:
                    return store.write(self._rejected_by_db(batch[0], str(cause)))
                log.warning(
                    "database rejected a batch, writing its %d messages one by one", len(batch)
                )
                return _merge([self._write_with_retry([m], stop) for m in batch])

    def _rejected_by_db(self, msg: Received, reason: str) -> Plan:
        plan = self._plan([msg])  # keeps the seq ranges, so the watermark moves past it
        plan.readings.clear()
        plan.states.clear()
        plan.dead_letters = [DeadLetter(msg.topic, f"database rejected it: {reason}", msg.payload)]
        return plan

    def _drop_store(self) -> None:
        if self._store is not None:
            self._store.conn.close()
        self._store = None

    def _connect(self, stop: threading.Event) -> Store:
        delay = 0.5
        while True:
            try:
                return Store(psycopg.connect(self.db_url))
            except psycopg.OperationalError as err:
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
