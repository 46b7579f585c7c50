"""Deliveries in PostgreSQL: route new alert events, claim due deliveries, record outcomes.

Plain async functions taking the caller's connection; none commits. The notifier runs
each in a transaction of its own: claim (commit), send, mark (commit). A claim is a
lease: ``status = 'sending'`` with ``next_attempt_at`` = lease expiry, so a notifier
killed while sending leaves a row that any notifier re-claims once the lease ends.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from coldchain.recipients import Recipient, Route, route_from_row
from ingest.notify.models import ClaimedDelivery, EventFacts, ExposedLot
from ingest.notify.notice import build_notice
from ingest.notify.routing import AfterFailure, Unreachable, route_event

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoutedEvent:
    """One alert event routed now: how many deliveries it made and who was unreachable."""

    event_id: int
    alert_id: int
    event: str
    deliveries: int
    unreachable: tuple[Unreachable, ...]


async def load_recipients(conn: AsyncConnection[Any]) -> list[Recipient]:
    """Every recipient, active or not."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, name, email, phone, webhook_url, role, site, active"
        " FROM telemetry.recipients ORDER BY id"
    )
    return [Recipient(**row) for row in await cur.fetchall()]


async def load_routes(conn: AsyncConnection[Any]) -> list[Route]:
    """Every route, active or not."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, channel, recipient_id, role, site, min_severity, kinds, events,"
        " min_level, active FROM telemetry.notify_routes ORDER BY id"
    )
    return [route_from_row(row) for row in await cur.fetchall()]


async def route_new_events(
    conn: AsyncConnection[Any], *, now: datetime, limit: int
) -> list[RoutedEvent]:
    """Create the deliveries of alert events not routed yet (idempotent, skip-locked)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """
        SELECT e.id AS event_id, e.alert_id, e.event, e.level, a.kind, a.severity,
               coalesce(e.detail->>'site', a.site) AS site
          FROM telemetry.alert_events e
          JOIN telemetry.alerts a ON a.id = e.alert_id
         WHERE NOT EXISTS (SELECT 1 FROM telemetry.notify_routed n WHERE n.event_id = e.id)
         ORDER BY e.id
         LIMIT %(limit)s
           FOR UPDATE OF e SKIP LOCKED
        """,
        {"limit": limit},
    )
    events = [EventFacts(**row) for row in await cur.fetchall()]
    if not events:
        return []
    routes, recipients = await load_routes(conn), await load_recipients(conn)
    routed = []
    for facts in events:
        result = route_event(facts, routes, recipients)
        for t in result.targets:
            await cur.execute(
                """
                INSERT INTO telemetry.notify_deliveries
                    (event_id, alert_id, recipient_id, channel, address, next_attempt_at)
                VALUES (%s, %s, %s, %s, %s, %s)
                ON CONFLICT (event_id, recipient_id, channel) DO NOTHING
                """,
                (facts.event_id, facts.alert_id, t.recipient_id, t.channel, t.address, now),
            )
        await cur.execute(
            "INSERT INTO telemetry.notify_routed (event_id, routed_at, deliveries)"
            " VALUES (%s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
            (facts.event_id, now, len(result.targets)),
        )
        routed.append(
            RoutedEvent(
                facts.event_id, facts.alert_id, facts.event, len(result.targets), result.unreachable
            )
        )
    return routed


async def give_up_abandoned(
    conn: AsyncConnection[Any], *, now: datetime, max_attempts: int
) -> list[int]:
    """Fail deliveries whose last allowed attempt died with its notifier (lease expired)."""
    cur = await conn.execute(
        """
        UPDATE telemetry.notify_deliveries
           SET status = 'failed', failed_at = %(now)s, claimed_by = NULL,
               last_error = 'notifier stopped while sending; lease expired after the last of '
                            || attempts || ' attempts'
         WHERE status = 'sending' AND next_attempt_at <= %(now)s AND attempts >= %(max)s
        RETURNING id
        """,
        {"now": now, "max": max_attempts},
    )
    return [int(row[0]) for row in await cur.fetchall()]


async def claim_due(
    conn: AsyncConnection[Any], *, worker: str, now: datetime, lease_s: float, limit: int
) -> list[ClaimedDelivery]:
    """Claim up to ``limit`` due deliveries (FOR UPDATE SKIP LOCKED) for ``lease_s`` seconds."""
    until = now + timedelta(seconds=lease_s)
    cur = await conn.execute(
        """
        WITH due AS (
            SELECT id FROM telemetry.notify_deliveries
             WHERE status IN ('pending', 'sending') AND next_attempt_at <= %(now)s
             ORDER BY next_attempt_at, id
             LIMIT %(limit)s
               FOR UPDATE SKIP LOCKED
        )
        UPDATE telemetry.notify_deliveries d
           SET status = 'sending', attempts = d.attempts + 1, claimed_by = %(worker)s,
               next_attempt_at = %(until)s
          FROM due WHERE d.id = due.id
        RETURNING d.id, d.attempts
        """,
        {"now": now, "limit": limit, "worker": worker, "until": until},
    )
    claimed = [(int(r[0]), int(r[1])) for r in await cur.fetchall()]
    if not claimed:
        return []
    ids = [c[0] for c in claimed]
    await conn.execute(
        """
        INSERT INTO telemetry.notify_attempts (delivery_id, attempt, worker, started_at)
        SELECT id, attempts, %s, %s FROM telemetry.notify_deliveries WHERE id = ANY(%s)
        """,
        (worker, now, ids),
    )
    return await _load_claimed(conn, ids)


async def _load_claimed(conn: AsyncConnection[Any], ids: Sequence[int]) -> list[ClaimedDelivery]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """
        SELECT d.id AS delivery_id, d.channel, d.address, d.attempts, r.name AS recipient,
               e.id, e.alert_id, e.event, e.level, e.at, e.actor, e.detail,
               a.kind, a.severity, a.status, a.summary, a.site, a.late, a.started_at,
               a.ended_at, a.peak, a.duration_s, a.sensor_id,
               s.uid, s.quantity, s.unit
          FROM telemetry.notify_deliveries d
          JOIN telemetry.recipients r ON r.id = d.recipient_id
          JOIN telemetry.alert_events e ON e.id = d.event_id
          JOIN telemetry.alerts a ON a.id = e.alert_id
          LEFT JOIN telemetry.sensors s ON s.id = a.sensor_id
         WHERE d.id = ANY(%s)
         ORDER BY d.id
        """,
        (list(ids),),
    )
    rows = await cur.fetchall()
    lots = await exposed_lots(conn, [r["alert_id"] for r in rows if r["sensor_id"] is not None])
    return [
        ClaimedDelivery(
            id=row["delivery_id"],
            channel=row["channel"],
            address=row["address"],
            attempts=row["attempts"],
            recipient=row["recipient"],
            notice=build_notice(
                row,
                row,
                row if row["uid"] is not None else None,
                None if row["sensor_id"] is None or lots is None else lots.get(row["alert_id"], ()),
            ),
        )
        for row in rows
    ]


async def exposed_lots(
    conn: AsyncConnection[Any], alert_ids: Sequence[int]
) -> dict[int, tuple[ExposedLot, ...]] | None:
    """The lots exposed during each alert, from the ERP's view ``erp.alert_lots``.

    None when the view cannot be read: the message then says the lots are unknown; a
    failed lookup never holds back an alert's message. (Alerts without lots are absent.)
    """
    if not alert_ids:
        return {}
    found: dict[int, list[ExposedLot]] = {}
    try:
        async with conn.transaction():  # a savepoint: the claim survives a failed read
            cur = await conn.execute(
                "SELECT alert_id, lot_number, item_name, gtin FROM erp.alert_lots"
                " WHERE alert_id = ANY(%s) ORDER BY alert_id, lot_number",
                (list(set(alert_ids)),),
            )
            for alert_id, number, item, gtin in await cur.fetchall():
                found.setdefault(int(alert_id), []).append(ExposedLot(number, item, gtin))
    except psycopg.Error as err:
        log.error("cannot read the lots of alerts %s (erp.alert_lots): %s", alert_ids, err)  # noqa: TRY400 - the reason is the message
        return None
    return {alert_id: tuple(lots) for alert_id, lots in found.items()}


async def mark_sent(
    conn: AsyncConnection[Any], *, delivery_id: int, attempt: int, now: datetime
) -> bool:
    """Record a successful send; False if the claim was lost (lease expired, re-claimed)."""
    await _finish_attempt(conn, delivery_id, attempt, now, ok=True, error=None)
    cur = await conn.execute(
        """
        UPDATE telemetry.notify_deliveries
           SET status = 'sent', sent_at = %s, claimed_by = NULL, last_error = NULL
         WHERE id = %s AND status = 'sending' AND attempts = %s
        """,
        (now, delivery_id, attempt),
    )
    return cur.rowcount == 1


async def mark_failed(  # noqa: PLR0913 - keyword-only
    conn: AsyncConnection[Any],
    *,
    delivery_id: int,
    attempt: int,
    now: datetime,
    error: str,
    outcome: AfterFailure,
) -> bool:
    """Record a failed attempt: back to pending at the backoff time, or failed for good."""
    await _finish_attempt(conn, delivery_id, attempt, now, ok=False, error=error)
    cur = await conn.execute(
        """
        UPDATE telemetry.notify_deliveries
           SET status = %s, next_attempt_at = %s, last_error = %s, claimed_by = NULL,
               failed_at = CASE WHEN %s = 'failed' THEN %s END
         WHERE id = %s AND status = 'sending' AND attempts = %s
        """,
        (
            outcome.status,
            outcome.next_attempt_at,
            error,
            outcome.status,
            now,
            delivery_id,
            attempt,
        ),
    )
    return cur.rowcount == 1


async def _finish_attempt(  # noqa: PLR0913 - private
    conn: AsyncConnection[Any],
    delivery_id: int,
    attempt: int,
    now: datetime,
    *,
    ok: bool,
    error: str | None,
) -> None:
    await conn.execute(
        "UPDATE telemetry.notify_attempts SET finished_at = %s, ok = %s, error = %s"
        " WHERE delivery_id = %s AND attempt = %s",
        (now, ok, error, delivery_id, attempt),
    )
