"""Run one ingest worker as a process: settings, logging, signals, metrics."""

from __future__ import annotations

import logging
import signal
import threading

from prometheus_client import start_http_server

from coldtrace.db.settings import DatabaseSettings
from ingest.settings import IngestSettings
from ingest.worker import Worker

log = logging.getLogger(__name__)


def run(settings: IngestSettings, db: DatabaseSettings) -> Worker:
    """Run a worker until SIGTERM/SIGINT; flush and ack before returning."""
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: flushing and stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker = Worker(settings, db.url)
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr="127.0.0.1", registry=worker.metrics.registry)
    worker.run(stop)
    t = worker.totals
    log.info(
        "stopped: %d messages, %d readings stored, %d duplicates, %d dead letters",
        t.messages,
        t.stored,
        t.duplicates,
        t.dead_letters,
    )
    return worker
