"""Run one ingest worker as a process: settings, logging, signals, metrics.

A thread that dies takes the process down. Ingest's work is spread over threads (the
collecting main thread, the writer, paho's network thread); with one of them gone the
process would stay up, store nothing and look healthy to its supervisor. So any
uncaught exception in a thread, and a writer that stops, end the process with status
`EXIT_FAILURE` after a logged, best-effort shutdown (nothing unacked is lost: the
broker re-delivers it), and the supervisor (systemd, docker, `coldtrace demo`)
restarts it. Should that shutdown itself hang, the process exits anyway after
`SHUTDOWN_GRACE_S`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from prometheus_client import start_http_server

from db.settings import DatabaseSettings
from ingest.settings import IngestSettings
from ingest.worker import Worker

log = logging.getLogger(__name__)

WELL_KNOWN_GROUP = "ingest"  # the settings' default: a name every account knows
EXIT_FAILURE = 70  # EX_SOFTWARE: an internal error, restart me
SHUTDOWN_GRACE_S = 30.0


def run(settings: IngestSettings, db: DatabaseSettings) -> Worker:
    """Run a worker until SIGTERM/SIGINT; flush and ack before returning.

    Raise `SystemExit` with `EXIT_FAILURE` when a thread of the worker died.
    """
    if (
        settings.share_group == WELL_KNOWN_GROUP
        and settings.mqtt_username
        and not settings.partitions
    ):
        log.warning(
            "subscribing through the well-known group $share/%s: any account that can log in "
            "can join it and make the broker drop its share of every gateway's messages; "
            "run `coldtrace devices service ingest --rotate` and use the "
            "COLDTRACE_INGEST_SHARE_GROUP it writes (docs/mqtt.md)",
            WELL_KNOWN_GROUP,
        )
    stop = threading.Event()
    died: list[str] = []

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: flushing and stopping", signum)
        stop.set()

    def _thread_died(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        log.critical(
            "thread %s died; stopping the worker so that its supervisor restarts it",
            name,
            exc_info=args.exc_value or True,
        )
        died.append(name)
        stop.set()
        _exit_if_stuck()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    previous_hook = threading.excepthook
    threading.excepthook = _thread_died
    try:
        worker = Worker(settings, db.url)
        if settings.metrics_port is not None:
            start_http_server(
                settings.metrics_port, addr="127.0.0.1", registry=worker.metrics.registry
            )
        try:
            worker.run(stop)
        except Exception:
            log.critical("the worker failed; exiting with status %d", EXIT_FAILURE, exc_info=True)
            raise SystemExit(EXIT_FAILURE) from None
    finally:
        threading.excepthook = previous_hook
    if died:
        log.critical("exiting with status %d: thread %s died", EXIT_FAILURE, ", ".join(died))
        raise SystemExit(EXIT_FAILURE)
    t = worker.totals
    log.info(
        "stopped: %d messages, %d readings stored, %d duplicates, %d dead letters",
        t.messages,
        t.stored,
        t.duplicates,
        t.dead_letters,
    )
    return worker


def _exit_if_stuck() -> None:
    """Exit hard if the orderly shutdown after a thread's death takes too long."""

    def _exit() -> None:
        log.critical("shutdown took over %.0f s; exiting now", SHUTDOWN_GRACE_S)
        logging.shutdown()
        os._exit(EXIT_FAILURE)

    timer = threading.Timer(SHUTDOWN_GRACE_S, _exit)
    timer.daemon = True
    timer.start()
