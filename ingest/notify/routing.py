"""Who hears about an alert event, over which channel — and whether the route set is lawful.

Pure functions of recipients, routes and event facts: no database, no clock. The
notifier loads the rows, calls `route_event` and stores the targets as deliveries.
`coverage_gaps` finds route sets that break the rule that reaching a limit sends an
immediate message to enough named people: the profiles' ``min_recipients`` (NMPA
medical-device cold chain: two) per site, and two where nothing says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.notify.models import (
    PERSONAL_CHANNELS,
    SYSTEM_ROLE,
    EventFacts,
    Recipient,
    Route,
    Target,
    severity_rank,
)

MIN_PEOPLE_ON_LIMIT = 2  # the safe default where no profile sets min_recipients
MQTT_ADDRESS = "alerts-topic"
# Alert kinds that mean "a limit was reached" (written by ingest's evaluation).
LIMIT_KINDS = ("excursion_high", "excursion_low", "mkt_exceeded", "tor_budget_exceeded")


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


@dataclass(frozen=True, slots=True)
class CoverageGap:
    """An (site, severity, kind) whose opening reaches too few named people at once."""

    site: str | None
    severity: str
    kind: str
    people: tuple[str, ...]
    required: int = MIN_PEOPLE_ON_LIMIT

    def __str__(self) -> str:
        who = ", ".join(self.people) or "nobody"
        return (
            f"site {self.site or '(any)'}: a {self.severity} {self.kind} alert reaches "
            f"{len(self.people)} named person(s) at once ({who}); at least "
            f"{self.required} are required"
        )


def address_for(recipient: Recipient, channel: str) -> str | None:
    """The recipient's address on ``channel``, or None if they have none."""
    match channel:
        case "email":
            return recipient.email or None
        case "sms" | "voice":
            return recipient.phone or None
        case "webhook":
            return recipient.webhook_url or None
        case "mqtt":
            return MQTT_ADDRESS
        case _:
            return None


def route_matches(route: Route, event: EventFacts) -> bool:
    """Whether ``route`` applies to ``event`` (site, severity, kind, event type, level)."""
    return (
        route.active
        and (route.site is None or route.site == event.site)
        and severity_rank(event.severity) >= severity_rank(route.min_severity)
        and (route.kinds is None or event.kind in route.kinds)
        and event.event in route.events
        and event.level >= route.min_level
    )


def _serves_site(recipient: Recipient, site: str | None) -> bool:
    return recipient.site is None or recipient.site == site


def selected_recipients(
    route: Route, recipients: Iterable[Recipient], site: str | None
) -> list[Recipient]:
    """Active recipients a route names (by id or by role) who serve ``site``."""
    return [
        r
        for r in recipients
        if r.active
        and _serves_site(r, site)
        and (r.id == route.recipient_id if route.recipient_id is not None else r.role == route.role)
    ]


def route_event(
    event: EventFacts, routes: Sequence[Route], recipients: Sequence[Recipient]
) -> RoutingResult:
    """The deliveries (one per recipient and channel) that ``event`` must produce."""
    targets: dict[tuple[int, str], Target] = {}
    unreachable: dict[tuple[str, str], Unreachable] = {}
    for route in routes:
        if not route_matches(route, event):
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


def people_reached_at_once(
    site: str | None,
    severity: str,
    kind: str,
    routes: Sequence[Route],
    recipients: Sequence[Recipient],
) -> tuple[str, ...]:
    """Named people an opening alert reaches immediately (level 0, personal channel)."""
    opening = EventFacts(0, 0, "opened", 0, kind, severity, site)
    by_id = {r.id: r for r in recipients}
    result = route_event(opening, routes, recipients)
    names = {
        by_id[t.recipient_id].name
        for t in result.targets
        if t.channel in PERSONAL_CHANNELS and by_id[t.recipient_id].role != SYSTEM_ROLE
    }
    return tuple(sorted(names))


def coverage_gaps(  # noqa: PLR0913 - keyword-only scope of the check
    routes: Sequence[Route],
    recipients: Sequence[Recipient],
    *,
    sites: Iterable[str | None],
    kinds: Iterable[str] = LIMIT_KINDS,
    severities: Iterable[str] = ("warning", "critical"),
    required: Mapping[str | None, int] | None = None,
    default_required: int = MIN_PEOPLE_ON_LIMIT,
) -> list[CoverageGap]:
    """Every (site, severity, kind) whose opening reaches fewer people than the site requires.

    ``required`` maps a site to the people its profiles require (``min_recipients``);
    a site it does not name requires ``default_required``; never fewer than one.
    """
    gaps = []
    needed = required or {}
    for site in sorted(set(sites), key=lambda s: (s is not None, s or "")):
        need = max(1, needed.get(site, default_required))
        for severity in severities:
            for kind in kinds:
                people = people_reached_at_once(site, severity, kind, routes, recipients)
                if len(people) < need:
                    gaps.append(CoverageGap(site, severity, kind, people, need))
    return gaps


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
