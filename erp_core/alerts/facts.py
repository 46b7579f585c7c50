"""What the alert page shows beside the alert itself: place, limits, lots, notifications, signature.

The e-mail's link (``/alerts/{id}``) must answer "what happened, to which product, who was
told, and who decided what" on one page (issue 11). These reads gather it, each from its
one definition: the facts the evaluation stored with the alert (``telemetry.alerts.
detail``: location, unit, profile and limits as judged then), the lots exposed
(``erp.alert_lots``, the view the notifier names them from) with the deviations the
excursion opened on them, the notifications sent (``telemetry.notify_deliveries``), and
the close's Part 11 signature checked against the alert as it is now. Read-only, no
commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import dict_row

from erp_core.alerts.service import Conn
from erp_core.alerts.signed_close import ALERTS, LOT_DISPOSITION
from erp_core.audit.keys import Keyring
from erp_core.deviations.service import number as deviation_number
from erp_core.signatures.models import SignatureCheck
from erp_core.signatures.service import check, signatures_for


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """What the evaluation stored with the alert: where, in which unit, against which limits."""

    episode_id: int | None
    location: str | None
    quantity: str | None
    unit: str | None
    profile: str | None
    low: float | None
    high: float | None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def alert_facts(conn: Conn, *, alert_id: int) -> AlertFacts:
    """The alert's stored facts (``detail``); unknown ones are None, never guessed."""
    row = conn.execute(
        "SELECT episode_id, detail FROM telemetry.alerts WHERE id = %s", (alert_id,)
    ).fetchone()
    episode, detail = (row[0], row[1]) if row else (None, None)
    d: dict[str, Any] = detail if isinstance(detail, dict) else {}
    given = d.get("limits")
    limits: dict[str, Any] = given if isinstance(given, dict) else {}
    return AlertFacts(
        episode_id=episode,
        location=d.get("location") or None,
        quantity=d.get("quantity") or None,
        unit=d.get("unit") or None,
        profile=d.get("profile") or None,
        low=_number(limits.get("low")),
        high=_number(limits.get("high")),
    )


_LOTS = """
SELECT x.lot_id, x.lot_number, x.item_name, x.gtin, l.status
  FROM erp.alert_lots x JOIN erp.lots l ON l.id = x.lot_id
 WHERE x.alert_id = %(alert)s
 ORDER BY x.lot_number
"""

# The deviations an excursion opened on a lot: the episodes of the alert's sensor that
# overlap the alert (a merged or re-evaluated episode keeps its predecessor's deviation,
# as erp_core.deviations.service.open_for_episode reads them).
_DEVIATIONS = """
SELECT d.lot_id, d.id, d.status, d.disposition, d.closed_by, d.closed_at
  FROM erp.deviations d
  JOIN telemetry.excursion_episodes o ON o.id = d.episode_id
  JOIN telemetry.alerts a ON a.id = %(alert)s
 WHERE d.lot_id = ANY(%(lots)s) AND o.sensor_id = a.sensor_id
   AND o.start_t <= coalesce(a.ended_at, 'infinity')
   AND coalesce(o.end_t, o.last_t) >= a.started_at
 ORDER BY d.id
"""


def exposed_lots(conn: Conn, *, alert_id: int) -> list[dict[str, Any]]:
    """The lots exposed during the alert, each with the deviations the excursion opened."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_LOTS, {"alert": alert_id})
        lots = cur.fetchall()
        if not lots:
            return []
        cur.execute(_DEVIATIONS, {"alert": alert_id, "lots": [x["lot_id"] for x in lots]})
        found = cur.fetchall()
    for lot in lots:
        lot["deviations"] = [
            d | {"number": deviation_number(d["id"])} for d in found if d["lot_id"] == lot["lot_id"]
        ]
    return lots


_SENT = """
SELECT e.event, e.level, d.channel, r.name AS recipient, d.status, d.attempts,
       d.created_at, d.sent_at, d.failed_at
  FROM telemetry.notify_deliveries d
  JOIN telemetry.alert_events e ON e.id = d.event_id
  JOIN telemetry.recipients r ON r.id = d.recipient_id
 WHERE d.alert_id = %s
 ORDER BY d.created_at, d.id
"""


def notifications(conn: Conn, *, alert_id: int) -> list[dict[str, Any]]:
    """Who was told, over which channel, when, and whether it arrived (no addresses shown)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_SENT, (alert_id,))
        return cur.fetchall()


def close_signatures(  # noqa: PLR0913 - keyword-only, the closed alert's stored parts
    conn: Conn,
    *,
    alert_id: int,
    disposition: str | None,
    comment: str | None,
    closed_at: datetime | None,
    keyring: Keyring,
) -> list[SignatureCheck]:
    """The close's signatures, each checked against the closed alert as it is now.

    The signed content holds the lot disposition, which the alert row does not: it is
    the one the disposition implies or, for "product assessed", use as is or reject —
    a signature is valid if it binds the stored close with one of those.
    """
    key = {"id": alert_id}
    found = signatures_for(conn, record_table=ALERTS, record_key=key)
    if closed_at is None:
        return [check(s, record_table=ALERTS, record_key=key, record_content={}, keyring=keyring)
                for s in found]  # fmt: skip
    implied = next((v for k, v in LOT_DISPOSITION.items() if k.value == disposition), None)
    candidates = [None, implied] if implied else [None, "use_as_is", "reject"]
    out = []
    for s in found:
        checks = [
            check(
                s,
                record_table=ALERTS,
                record_key=key,
                record_content={
                    "disposition": disposition,
                    "lot_disposition": lot,
                    "comment": comment,
                    "closed_at": closed_at.astimezone(UTC).isoformat(),
                },
                keyring=keyring,
            )
            for lot in candidates
        ]
        out.append(next((c for c in checks if c.valid), checks[0]))
    return out
