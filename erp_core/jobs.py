"""The ERP's background work: scans become movements, expired lots go on hold, anchoring.

``run`` is the loop behind ``coldtrace erp-jobs``: it wakes on the queue trigger's
NOTIFY (or every ``interval_s`` when notifications are lost) and processes the queue
until it is empty, one transaction per batch. Any number may run; an advisory lock lets
one work at a time, so events are applied in device-time order. Every ``Every.expiry_s``
it puts lots past their expiry date on hold (``erp.lock_expired_lots``, audited as
``system:expiry``); this is an ERP job, so the ERP's runner runs it, not the notifier.

With ``anchoring`` it also writes a checkpoint of the audit chain's head to the anchor
file every ``anchoring.every_s`` (erp_core/audit/anchoring.py); several job runners may
share the file (it is locked while written). A checkpoint that is refused — the chain
no longer continues the last anchor — is logged as an error at every attempt: that is
the alarm that the trail was rewritten or restored from an older backup. So is an anchor
file that lost the line this runner wrote last, or one that holds no anchor while the
chain has entries: the runner never starts the file again by itself (a person does,
``coldtrace audit checkpoint --start``), or deleting it would be forgotten within a
minute.

Every ``Every.rollup_s`` it also brings the hourly and daily reading rollup
(``erp.reading_hours``/``reading_days``) of every sensor up to date, a few sensors per
transaction: Grafana's long-range panels read the rollup and, with the read-only role,
cannot refresh it themselves (lot histories refresh it on read as before). It serves
TimescaleDB and plain PostgreSQL alike, in place of a continuous aggregate
(docs/timescaledb.md). After it, every ``Every.figures_s`` it recomputes the release
figures of the lots whose figures may have changed into ``erp.lot_figures``
(``erp_core.lot_history.figures``), which the batch dashboard reads: the release
evidence's own numbers, not a second computation in SQL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from erp_core.audit.anchoring import checkpoint
from erp_core.audit.errors import AnchorError
from erp_core.audit.keys import Keyring
from erp_core.edge_events.service import process_queue
from erp_core.lot_history import figures, rollup_refresh

log = logging.getLogger(__name__)
CHANNEL = "coldtrace_edge_events"
BATCH = 500
EXPIRY_EVERY_S = 60.0
ROLLUP_EVERY_S = 60.0
ROLLUP_BATCH = 20  # sensors per rollup transaction
FIGURES_EVERY_S = 60.0
FIGURES_BATCH = 10  # lots per figures transaction


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


def refresh_rollup(conn: psycopg.Connection, *, batch: int = ROLLUP_BATCH) -> int:
    """Bring every sensor's reading rollup up to date, ``batch`` sensors per transaction."""
    sensors = [int(r[0]) for r in conn.execute("SELECT id FROM telemetry.sensors ORDER BY id")]
    for start in range(0, len(sensors), batch):
        with conn.transaction():
            rollup_refresh.refresh(conn, sensor_ids=sensors[start : start + batch])
    return len(sensors)


def refresh_figures(
    conn: psycopg.Connection,
    *,
    now: Callable[[], datetime] = utc_now,
    batch: int = FIGURES_BATCH,
) -> int:
    """Recompute the figures of every lot whose figures may have changed; how many lots.

    ``batch`` lots per transaction, each as of the time its transaction starts.
    """
    with conn.transaction():
        stale = figures.stale_lots(conn, now=now())
    for start in range(0, len(stale), batch):
        with conn.transaction():
            figures.refresh(conn, lot_ids=stale[start : start + batch], now=now())
    if stale:
        log.info("release figures recomputed for %s lot(s)", len(stale))
    return len(stale)


def lock_expired_lots(conn: psycopg.Connection, *, now: datetime) -> int:
    """Put lots whose expiry date has come on hold (audited); how many."""
    row = conn.execute("SELECT erp.lock_expired_lots(%s)", (now,)).fetchone()
    return int(row[0]) if row else 0


def _expire(conn: psycopg.Connection, now: datetime) -> None:
    with conn.transaction():
        locked = lock_expired_lots(conn, now=now)
    if locked:
        log.info("%s expired lot(s) put on hold", locked)


@dataclass(slots=True)
class AnchorState:
    """What one job runner remembers between checkpoints: the MAC of the line it wrote last."""

    last_mac: str | None = None


@dataclass(frozen=True, slots=True)
class Anchoring:
    """Where and how often the job runner anchors the audit chain's head."""

    keyring: Keyring
    anchor_file: Path
    every_s: float


def anchor_once(
    conn: psycopg.Connection,
    anchoring: Anchoring,
    *,
    now: Callable[[], datetime] = utc_now,
    state: AnchorState | None = None,
) -> bool:
    """Write one checkpoint if the head moved; False (logged as an error) if refused.

    With ``state`` the checkpoint is refused when the file no longer holds the line this
    runner wrote last (``state`` is updated with each line written).
    """
    try:
        anchor = checkpoint(
            conn,
            keyring=anchoring.keyring,
            anchor_file=anchoring.anchor_file,
            now=now(),
            expect=state.last_mac if state is not None else None,
        )
    except (AnchorError, OSError) as err:
        log.error("audit chain NOT anchored: %s", err)  # noqa: TRY400 - the reason is the news
        return False
    if anchor is not None:
        if state is not None:
            state.last_mac = anchor.mac
        log.info("audit chain anchored at entry %s", anchor.seq)
    return True


@dataclass(frozen=True, slots=True)
class Every:
    """How often the runner does its periodic work, in seconds (None: never)."""

    expiry_s: float = EXPIRY_EVERY_S
    rollup_s: float | None = ROLLUP_EVERY_S
    figures_s: float | None = FIGURES_EVERY_S


@dataclass(slots=True)
class _Periodic:
    """One piece of periodic work and when it is due next (``time.monotonic``)."""

    every_s: float
    work: Callable[[psycopg.Connection], object]
    due: float = 0.0

    def run_if_due(self, conn: psycopg.Connection) -> float:
        """Do the work if it is due; the seconds until it is due next."""
        if time.monotonic() >= self.due:
            self.work(conn)
            self.due = time.monotonic() + self.every_s
        return max(0.0, self.due - time.monotonic())


def run(
    db_url: str,
    stop: threading.Event,
    *,
    interval_s: float = 5.0,
    anchoring: Anchoring | None = None,
    every: Every = Every(),
) -> None:
    """Process edge events, lock expired lots, anchor, refresh rollup and figures, until stopped."""
    state = AnchorState()
    periodic = [_Periodic(every.expiry_s, lambda conn: _expire(conn, utc_now()))]
    if anchoring is not None:
        periodic.append(
            _Periodic(anchoring.every_s, lambda conn: anchor_once(conn, anchoring, state=state))
        )
    if every.rollup_s is not None:
        periodic.append(_Periodic(every.rollup_s, refresh_rollup))
    if every.figures_s is not None:
        periodic.append(_Periodic(every.figures_s, refresh_figures))
    while not stop.is_set():
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                while not stop.is_set():
                    counts = drain(conn)
                    if counts:
                        log.info("edge events processed: %s", dict(counts))
                    wait = min([interval_s, *(p.run_if_due(conn) for p in periodic)])
                    for _ in conn.notifies(timeout=wait, stop_after=1):
                        pass
        except psycopg.OperationalError as err:
            log.warning("database unavailable (%s); retrying in %.0f s", err, interval_s)
            stop.wait(interval_s)
