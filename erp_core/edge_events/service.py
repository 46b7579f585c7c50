"""Scans and tag reads from the gateways become stock movements, each exactly once.

Ingest stores every scan and RFID read; a trigger queues it in ``erp.edge_event_queue``
in the same transaction (migration 0012). ``process_queue`` claims queued events in
device-time order, and for each one at a mapped reader moves the lot it names to the
reader's location (``movements.movement_from_scan``), then records the outcome in
``erp.edge_event_outcomes`` and removes the event from the queue, all in one
transaction. One event that cannot be turned into a movement (unknown reader, unknown
lot, not enough stock, or a database refusal of its movement) is recorded as ``failed``
with the reason; the others go on.

What names the lot:

* a barcode scan: GTIN + lot number (AI 01 + AI 10), or a pallet's SSCC in ``lot_tags``;
* an RFID read: the tag's SSCC, or its SGTIN's GTIN + serial, in ``lot_tags``.

A failed scan (bad check digit, malformed label) is ``ignored``: it is already stored
with its reason in ``telemetry.scans``.

Scans and tag reads keep the GTIN as it was read (a record of the observation); it is
brought to its GTIN-14 form (``erp_core.masterdata.service.gtin14``) before it is looked
up, so any form a reader reports finds the one item. A GTIN that is no valid GTIN fails
the event with the reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row

from erp_core.audit.service import set_actor
from erp_core.edge_events.models import EdgeOutcome
from erp_core.errors import ErpError, NotFoundError
from erp_core.lots import service as lot_service
from erp_core.lots import tags
from erp_core.movements import service as movements

Conn = psycopg.Connection[Any]
Source = Literal["scan", "rfid"]
ACTOR = "system:edge-events"
_LOCK = (7232, 1)  # advisory lock: one processor at a time keeps device-time order


@dataclass(frozen=True, slots=True)
class EdgeEvent:
    """A stored scan or tag read, as the processor needs it."""

    source: Source
    event_id: int
    time: datetime
    reader_id: str
    ok: bool
    reason: str | None
    gtin: str | None
    lot_number: str | None
    sscc: str | None
    serial: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one event."""

    outcome: Literal["moved", "repeat", "ignored", "failed"]
    lot_id: int | None = None
    movement_id: int | None = None
    reason: str | None = None


class UnidentifiedLotError(ErpError):
    """The event names no lot the ERP knows."""


_EVENT = """
LATERAL (SELECT time, scanner AS reader_id, ok, reason, gtin, lot, sscc, serial, data
           FROM telemetry.scans WHERE {q}.source = 'scan' AND id = {q}.event_id
         UNION ALL
         SELECT time, reader, true, NULL, gtin, NULL, sscc, serial, epc
           FROM telemetry.tag_reads WHERE {q}.source = 'rfid' AND id = {q}.event_id) e
"""

_CLAIM = f"""
SELECT q.source, q.event_id, e.time, e.reader_id, e.ok, e.reason, e.gtin, e.lot,
       e.sscc, e.serial
  FROM erp.edge_event_queue q, {_EVENT.format(q="q")}
 ORDER BY e.time, q.source, q.event_id
 LIMIT %s
   FOR UPDATE OF q SKIP LOCKED
"""  # noqa: S608 - constant SQL


def lot_for(conn: Conn, event: EdgeEvent) -> int:
    """The lot an event names; UnidentifiedLotError saying what was looked for."""
    if event.gtin is not None and event.lot_number is not None:
        try:
            return lot_service.find_lot(conn, gtin=event.gtin, lot_number=event.lot_number).id
        except NotFoundError as err:
            msg = f"no lot {event.lot_number} of GTIN {event.gtin} in the ERP"
            raise UnidentifiedLotError(msg) from err
    if event.sscc is not None:
        lot_id = tags.pallet_lot(conn, sscc=event.sscc)
        if lot_id is None:
            raise UnidentifiedLotError(f"SSCC {event.sscc} is not registered to a lot")
        return lot_id
    if event.gtin is not None and event.serial is not None:
        lot_id = tags.case_lot(conn, gtin=event.gtin, serial=event.serial)
        if lot_id is None:
            msg = f"GTIN {event.gtin} serial {event.serial} is not registered to a lot"
            raise UnidentifiedLotError(msg)
        return lot_id
    raise UnidentifiedLotError("the label carries no lot number, SSCC or registered serial")


def apply_event(conn: Conn, event: EdgeEvent, *, now: datetime) -> Outcome:
    """Turn one event into a movement, or say why not (inside the caller's savepoint)."""
    if not event.ok:
        return Outcome("ignored", reason=f"failed scan: {event.reason}")
    lot_id = lot_for(conn, event)
    moved = movements.movement_from_scan(
        conn,
        reader_id=event.reader_id,
        time=event.time,
        lot_id=lot_id,
        reference=f"{event.source} event {event.event_id}",
        now=now,
    )
    if moved is None:
        return Outcome("repeat", lot_id=lot_id)
    return Outcome("moved", lot_id=lot_id, movement_id=moved.id)


def process_queue(conn: Conn, *, now: datetime, limit: int = 500) -> Counter[str]:
    """Process up to ``limit`` queued events in device-time order; count the outcomes.

    Runs in the caller's transaction and does not commit. Returns an empty count when
    another processor holds the lock.
    """
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", _LOCK).fetchone()
    if row is None or not row[0]:
        return Counter()
    set_actor(conn, user=ACTOR, reason="scan or tag read at a mapped reader")
    events = [EdgeEvent(*r) for r in conn.execute(_CLAIM, (limit,)).fetchall()]
    counts: Counter[str] = Counter()
    for event in events:
        try:
            with conn.transaction():
                outcome = apply_event(conn, event, now=now)
        except ErpError as err:
            outcome = Outcome("failed", reason=str(err))
        except psycopg.OperationalError:
            raise  # connection lost, deadlock, cancel: the whole batch is tried again
        except (psycopg.DatabaseError, ValueError) as err:
            # A refusal that is not one of our rules (a trigger or constraint we do not
            # translate, a value out of range): the savepoint undid this event only, so
            # record it like any other failure instead of stopping the queue behind it.
            outcome = Outcome("failed", reason=f"{type(err).__name__}: {err}")
        conn.execute(
            "INSERT INTO erp.edge_event_outcomes (source, event_id, processed_at, outcome,"
            " reader_id, lot_id, movement_id, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (source, event_id) DO UPDATE SET processed_at = excluded.processed_at,"
            " outcome = excluded.outcome, lot_id = excluded.lot_id,"
            " movement_id = excluded.movement_id, reason = excluded.reason",
            (
                event.source,
                event.event_id,
                now,
                outcome.outcome,
                event.reader_id,
                outcome.lot_id,
                outcome.movement_id,
                outcome.reason,
            ),
        )
        conn.execute(
            "DELETE FROM erp.edge_event_queue WHERE source = %s AND event_id = %s",
            (event.source, event.event_id),
        )
        counts[outcome.outcome] += 1
    return counts


def retry(conn: Conn, *, source: Source, event_id: int) -> bool:
    """Queue a failed event again (after its reader or lot was set up); False if not failed.

    The retry is a person's act that leads to a movement, and processing it again
    overwrites the outcome: so it goes to the audit trail, with the failure it had, under
    the user set with ``set_actor`` — through the owner's function (migration 0018), as
    the application role may not write audit entries itself.
    """
    row = conn.execute("SELECT erp.requeue_edge_event(%s, %s)", (source, event_id)).fetchone()
    return bool(row and row[0])


def list_outcomes(  # noqa: PLR0913 - keyword-only filters and the page
    conn: Conn,
    *,
    outcome: str | None = None,
    reader_id: str | None = None,
    limit: int = 200,
    offset: int = 0,
    failed_first: bool = False,
) -> list[EdgeOutcome]:
    """Processed events, newest first (failed ones first if asked), of one outcome or reader."""
    with conn.cursor(row_factory=class_row(EdgeOutcome)) as cur:
        cur.execute(
            f"""
            SELECT o.source, o.event_id, e.time, o.reader_id, e.data, o.processed_at,
                   o.outcome, o.lot_id, l.lot_number, o.movement_id, o.reason
              FROM erp.edge_event_outcomes o
              LEFT JOIN erp.lots l ON l.id = o.lot_id,
                   {_EVENT.format(q="o")}
             WHERE (%(o)s::text IS NULL OR o.outcome = %(o)s)
               AND (%(r)s::text IS NULL OR o.reader_id = %(r)s)
             ORDER BY %(ff)s AND o.outcome = 'failed' DESC, o.processed_at DESC, e.time DESC
             LIMIT %(n)s OFFSET %(off)s
            """,  # noqa: S608 - constant SQL
            {"o": outcome, "r": reader_id, "n": limit, "off": offset, "ff": failed_first},
        )
        return cur.fetchall()


def count_outcomes(conn: Conn) -> dict[str, int]:
    """How many processed events there are of each outcome (moved, repeat, ignored, failed)."""
    rows = conn.execute(
        "SELECT outcome, count(*) FROM erp.edge_event_outcomes GROUP BY outcome"
    ).fetchall()
    return {str(outcome): int(n) for outcome, n in rows}


def queue_depth(conn: Conn) -> int:
    """How many scans and tag reads wait to be processed."""
    row = conn.execute("SELECT count(*) FROM erp.edge_event_queue").fetchone()
    return int(row[0]) if row else 0
