"""The alert lifecycle's periodic jobs, run by the notifier between delivery passes.

The jobs live with the alert code (``ingest.alerts.escalate_due`` and
``ingest.evaluate.sweep``) and are synchronous functions taking a psycopg connection;
each runs here in a thread, in a transaction of its own. Their
alert_events rows are routed by the next notifier pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ingest.notify.notifier import PeriodicJob

log = logging.getLogger(__name__)

SyncJob = Callable[[psycopg.Connection[Any], datetime], object]


def in_thread(db_url: str, name: str, job: SyncJob) -> PeriodicJob:
    """Wrap a synchronous job as a `PeriodicJob`: own connection, own transaction, a thread."""

    def _run(now: datetime) -> object:
        with psycopg.connect(db_url) as conn:  # commits on success, rolls back on error
            return job(conn, now)

    async def _job(_pool: AsyncConnectionPool[Any], now: datetime) -> object:
        result = await asyncio.to_thread(_run, now)
        if result:
            log.info("%s: %s", name, result)
        return result

    _job.__name__ = name
    return _job


def alert_jobs(db_url: str, *, escalate_after_minutes: float) -> list[PeriodicJob]:
    """Escalation and the evaluation sweep (offline, calibration, rolling checks)."""
    from ingest import alerts, evaluate  # noqa: PLC0415 - numpy only when the jobs run

    def escalate(conn: psycopg.Connection[Any], now: datetime) -> object:
        return alerts.escalate_due(conn, now=now, after_minutes=escalate_after_minutes)

    def sweep(conn: psycopg.Connection[Any], now: datetime) -> object:
        # Left-over ranges first, committed on their own: their per-sensor advisory locks
        # would otherwise be held through the rolling checks (seconds), delaying ingest
        # workers' alarms on those sensors.
        drained = evaluate.evaluate_pending(conn, now=now, retry_after_s=0)
        conn.commit()
        rest = evaluate.sweep(conn, now=now, pending=False)
        rest.ranges, rest.sensors, rest.skipped = drained.ranges, drained.sensors, drained.skipped
        rest.failed += drained.failed
        rest.alerts |= drained.alerts
        return rest

    return [
        in_thread(db_url, "escalate_due", escalate),
        in_thread(db_url, "sweep", sweep),
    ]
