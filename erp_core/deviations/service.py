"""Deviation services: open the ones a late movement reveals, list, close with a signature.

The request owns the transaction: a disposition, its signature and their audit entries
commit together or not at all. Plain functions on the caller's connection.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from psycopg import Connection

from erp_core.audit.keys import Keyring, RecordKey
from erp_core.audit.service import set_actor
from erp_core.auth.models import AttemptRecorder, LoginPolicy, User
from erp_core.deviations import records
from erp_core.deviations.errors import DeviationClosedError
from erp_core.errors import NotFoundError
from erp_core.signatures.service import sign

Conn = Connection[Any]

_MISSED_DEVIATIONS = """
INSERT INTO erp.deviations (lot_id, episode_id, title, description, opened_by)
SELECT DISTINCT ON (e.id) %(lot)s, e.id,
       format('Temperature excursion (%%s) on %%s', e.kind, s.uid),
       format('Episode %%s from %%s, peak %%s °C, found when a movement was recorded '
              'late', e.id, e.start_t, round(e.peak::numeric, 1)),
       'system:excursions'
  FROM erp.lot_segments(%(lot)s, '-infinity', 'infinity') g
  JOIN telemetry.excursion_episodes e
    ON e.sensor_id = g.sensor_id AND e.status = 'active' AND e.level = 'alarm'
   AND (e.delay_reached OR e.abs_breach)
   AND e.start_t < g.segment_end AND coalesce(e.end_t, e.last_t) >= g.segment_start
  JOIN telemetry.sensors s ON s.id = e.sensor_id
 WHERE NOT EXISTS (
       SELECT 1 FROM erp.deviations d
         JOIN telemetry.excursion_episodes o ON o.id = d.episode_id
        WHERE d.lot_id = %(lot)s AND o.sensor_id = e.sensor_id
          AND o.start_t <= coalesce(e.end_t, e.last_t)
          AND coalesce(o.end_t, o.last_t) >= e.start_t)
 ORDER BY e.id
ON CONFLICT (lot_id, episode_id) DO NOTHING
RETURNING id
"""


def open_missed_deviations(conn: Conn, *, lot_id: int) -> list[int]:
    """Open a deviation for each alarm excursion the lot's history now touches without one.

    Called after a movement is stored: the database trigger of 0007 fires on episodes,
    not on movements, so an excursion stored before a late movement put the lot there
    would otherwise have no deviation.
    """
    return [int(r[0]) for r in conn.execute(_MISSED_DEVIATIONS, {"lot": lot_id}).fetchall()]


def number(deviation_id: int) -> str:
    """How a deviation is named to people: ``DEV-00042``."""
    return f"DEV-{deviation_id:05d}"


def open_numbers(conn: Conn, *, lot_id: int) -> tuple[str, ...]:
    """The numbers of the lot's open deviations, oldest first."""
    rows = conn.execute(
        "SELECT id FROM erp.deviations WHERE lot_id = %s AND status = 'open' ORDER BY id",
        (lot_id,),
    ).fetchall()
    return tuple(number(r[0]) for r in rows)


def close_deviation(  # noqa: PLR0913 - every input of a signed disposition is explicit
    conn: Conn,
    *,
    deviation_id: int,
    user: User,
    password: str,
    disposition: str,
    comment: str,
    capa_ref: str | None,
    clock: Callable[[], datetime],
    policy: LoginPolicy,
    record_attempt: AttemptRecorder,
    signing_key: RecordKey,
    keyring: Keyring | None = None,
) -> int:
    """Give a deviation its disposition, signed; 'investigate' keeps it open."""
    now = clock()
    set_actor(conn, user=user.username, reason=f"deviation {deviation_id}: {disposition}")
    row = conn.execute(
        "SELECT lot_id, status FROM erp.deviations WHERE id = %s FOR UPDATE", (deviation_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError("deviation", deviation_id)
    if row[1] != "open":
        raise DeviationClosedError(int(row[0]), deviation_id)
    if disposition == "investigate":
        conn.execute(
            "UPDATE erp.deviations SET disposition = 'investigate', capa_ref = %s WHERE id = %s",
            (capa_ref, deviation_id),
        )
        return deviation_id
    meaning = {"use_as_is": "Reviewed: use as is", "reject": "Reviewed: reject"}[disposition]
    signature = sign(
        conn,
        user=user,
        password=password,
        record_table=records.DEVIATIONS,
        record_key={"id": deviation_id},
        record_content=records.disposition_content(disposition, comment, capa_ref),
        meaning=meaning,
        clock=lambda: now,
        policy=policy,
        record_attempt=record_attempt,
        signing_key=signing_key,
        keyring=keyring,
    )
    conn.execute(
        "UPDATE erp.deviations SET status = 'closed', disposition = %s, capa_ref = %s,"
        " closed_at = %s, closed_by = %s, closing_comment = %s, signature_id = %s WHERE id = %s",
        (disposition, capa_ref, now, user.username, comment, signature.id, deviation_id),
    )
    return deviation_id


def deviations_for(conn: Conn, *, lot_id: int) -> list[dict[str, Any]]:
    """The lot's deviations, open first."""
    rows = conn.execute(
        "SELECT id, episode_id, title, description, status, disposition, capa_ref, opened_at,"
        " opened_by, closed_at, closed_by, closing_comment FROM erp.deviations"
        " WHERE lot_id = %s ORDER BY status DESC, id",
        (lot_id,),
    ).fetchall()
    keys = (
        "id",
        "episode_id",
        "title",
        "description",
        "status",
        "disposition",
        "capa_ref",
        "opened_at",
        "opened_by",
        "closed_at",
        "closed_by",
        "closing_comment",
    )
    return [dict(zip(keys, r, strict=True)) | {"number": number(r[0])} for r in rows]
