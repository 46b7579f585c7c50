"""Who hears about an alert event, over which channel, and how failed deliveries retry.

Pure functions of recipients, routes and event facts: no database, no clock. The
notifier loads the rows, calls `route_event` and stores the targets as deliveries.
Which route applies and whom it names is ``coldchain.recipients`` — the same rule the
two-person check (``coverage_gaps``) and the ERP's compliance page count people with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from coldchain.recipients import (
    Recipient,
    Route,
    address_for,
    route_matches,
    selected_recipients,
)
from ingest.notify.models import EventFacts, Target


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A recipient a route selected but who has no address for the route's channel."""

    recipient: str
    channel: str


@dataclass(frozen=True, slots=True)
class RoutingResult:
    """The deliveries to create for one event, and routes that could not be honoured."""

    targets: tuple[Target, ...]
    unreachable: tuple[Unreachable, ...]


def route_event(
    event: EventFacts, routes: Sequence[Route], recipients: Sequence[Recipient]
) -> RoutingResult:
    """The deliveries (one per recipient and channel) that ``event`` must produce."""
    targets: dict[tuple[int, str], Target] = {}
    unreachable: dict[tuple[str, str], Unreachable] = {}
    for route in routes:
        if not route_matches(
            route,
            event=event.event,
            level=event.level,
            kind=event.kind,
            severity=event.severity,
            site=event.site,
        ):
            continue
        for recipient in selected_recipients(route, recipients, event.site):
            address = address_for(recipient, route.channel)
            if address is None:
                unreachable.setdefault(
                    (recipient.name, route.channel), Unreachable(recipient.name, route.channel)
                )
                continue
            key = (recipient.id, route.channel)
            targets.setdefault(key, Target(recipient.id, route.channel, address))
    return RoutingResult(
        targets=tuple(targets[k] for k in sorted(targets)),
        unreachable=tuple(unreachable[k] for k in sorted(unreachable)),
    )


def backoff_delay(attempts: int, *, base_s: float, cap_s: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: base·2^(n-1), capped."""
    if attempts < 1:
        return 0.0
    return float(min(cap_s, base_s * 2.0 ** min(attempts - 1, 62)))


@dataclass(frozen=True, slots=True)
class AfterFailure:
    """What becomes of a delivery whose attempt failed."""

    status: str  # 'pending' (retry at next_attempt_at) or 'failed' (gave up, surfaced)
    next_attempt_at: datetime


def after_failure(  # noqa: PLR0913 - keyword-only policy inputs
    *,
    attempts: int,
    max_attempts: int,
    permanent: bool,
    now: datetime,
    base_s: float,
    cap_s: float,
) -> AfterFailure:
    """Retry with exponential backoff, or give up after ``max_attempts`` or a permanent error."""
    if permanent or attempts >= max_attempts:
        return AfterFailure("failed", now)
    delay = backoff_delay(attempts, base_s=base_s, cap_s=cap_s)
    return AfterFailure("pending", now + timedelta(seconds=delay))
