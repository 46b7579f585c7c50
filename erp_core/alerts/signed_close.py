"""Closing an alert from the ERP is signed, and an excursion's disposition reaches its lots.

Before, closing an excursion alert as "product assessed" left the deviation it had opened
on each affected lot open, while the overview said ALL OK; "no impact" was preselected
and closing needed no signature (issue 11). Now ``close_signed``, in the request's
transaction: closes the alert with the alerts service (and its rules), signs the close
(password re-entered; record ``telemetry.alerts``, meaning "Reviewed: alert closed"), and
gives every open deviation of that excursion the lot disposition the alert's
disposition implies (``lot_disposition``) — each one signed as a deviation disposition
is (``erp_core.deviations.service.close_deviation``). "Product assessed" says nothing
about the product's fate, so with deviations to close it needs the lot disposition
spelled out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from coldchain.alert_states import Disposition
from erp_core.alerts import service
from erp_core.audit.keys import Keyring, RecordKey
from erp_core.auth.models import AttemptRecorder, LoginPolicy, User
from erp_core.deviations import service as deviations
from erp_core.deviations.models import Disposition as LotDisposition
from erp_core.errors import InvalidArgumentError
from erp_core.signatures.models import Signature
from erp_core.signatures.service import sign

ALERTS = "telemetry.alerts"
MEANING = "Reviewed: alert closed"
# What each alert disposition means for the product on the lots the excursion touched;
# None: the person must say (use as is or reject).
LOT_DISPOSITION: dict[Disposition, LotDisposition | None] = {
    Disposition.NO_IMPACT: "use_as_is",
    Disposition.FALSE_ALARM: "use_as_is",
    Disposition.PRODUCT_REJECTED: "reject",
    Disposition.PRODUCT_ASSESSED: None,
}


@dataclass(frozen=True, slots=True)
class SignedClose:
    """A closed alert's signature and the deviations its disposition closed."""

    signature: Signature
    deviations_closed: tuple[str, ...]


def chosen_for_lots(value: str | None) -> LotDisposition | None:
    """A lot disposition typed in a form or on the command line: use as is, reject, or None."""
    if value == "use_as_is":
        return "use_as_is"
    if value == "reject":
        return "reject"
    return None


def lot_disposition(disposition: Disposition, chosen: LotDisposition | None) -> LotDisposition:
    """The lot disposition an alert's close gives its excursion's deviations."""
    implied = LOT_DISPOSITION[disposition]
    if chosen == "investigate":
        raise InvalidArgumentError(
            "lot_disposition", chosen, "an investigation keeps the alert open"
        )
    if chosen is None:
        if implied is None:
            raise InvalidArgumentError(
                "lot_disposition", chosen, f"{disposition.value}: say use_as_is or reject"
            )
        return implied
    if implied is not None and chosen != implied:
        raise InvalidArgumentError(
            "lot_disposition", chosen, f"{disposition.value} means {implied} for the lots"
        )
    return chosen


def close_signed(  # noqa: PLR0913 - every input of a signed close is explicit
    conn: service.Conn,
    *,
    alert_id: int,
    user: User,
    password: str,
    disposition: Disposition,
    chosen: LotDisposition | None,
    comment: str,
    clock: Callable[[], datetime],
    policy: LoginPolicy,
    record_attempt: AttemptRecorder,
    signing_key: RecordKey,
    keyring: Keyring | None = None,
) -> SignedClose:
    """Close alert ``alert_id`` as ``user``, signed, and disposition its lots' deviations."""
    now = clock()
    # The lifecycle rules first, so a refused step says why before any password is asked.
    service.close(
        conn,
        alert_id=alert_id,
        user=user.username,
        disposition=disposition,
        comment=comment,
        now=now,
    )
    row = conn.execute(
        "SELECT episode_id FROM telemetry.alerts WHERE id = %s", (alert_id,)
    ).fetchone()
    episode = row[0] if row else None
    closed = [] if episode is None else deviations.open_for_episode(conn, episode_id=episode)
    for_lots = lot_disposition(disposition, chosen) if closed else None
    signature = sign(
        conn,
        user=user,
        password=password,
        record_table=ALERTS,
        record_key={"id": alert_id},
        record_content={
            "disposition": disposition.value,
            "lot_disposition": for_lots,
            "comment": comment,
            "closed_at": now.isoformat(),
        },
        meaning=MEANING,
        clock=lambda: now,
        policy=policy,
        record_attempt=record_attempt,
        signing_key=signing_key,
        keyring=keyring,
    )
    if for_lots is not None:
        for deviation_id in closed:
            deviations.close_deviation(
                conn,
                deviation_id=deviation_id,
                user=user,
                password=password,
                disposition=for_lots,
                comment=f"alert {alert_id} closed as {disposition.value}: {comment}",
                capa_ref=None,
                clock=lambda: now,
                policy=policy,
                record_attempt=record_attempt,
                signing_key=signing_key,
                keyring=keyring,
            )
    return SignedClose(signature, tuple(deviations.number(d) for d in closed))
