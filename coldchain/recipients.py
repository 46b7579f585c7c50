"""Who an alert reaches, and the two-person rule on a route set (pure).

The rows are ``telemetry.recipients`` and ``telemetry.notify_routes`` (owned by the
notifier). The notifier routes every alert event with ``route_matches`` and
``selected_recipients``; ``coldtrace recipients check`` (``coverage_gaps``) and the ERP's
location compliance page (``fewest_reached``) ask the same question of the same rows —
how many named people an alarm reaches the moment it opens — through
``people_reached_at_once``, over one list of alarms, ``TWO_PERSON_ALARMS``. Nothing
else counts people, so the notifier and the compliance page cannot disagree.

A person counts when an active route matching an ``opened`` event at escalation level 0
names them (by id or by role), they are active and serve the alert's site, the route's
channel is personal (e-mail, SMS, voice), they have an address on it, and their role is
not ``system`` (a machine endpoint or shared mailbox).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coldchain.alert_kinds import TWO_PERSON_ALARMS, severity_rank

MIN_PEOPLE_ON_LIMIT = 2  # the safe default where no profile sets min_recipients
MQTT_ADDRESS = "alerts-topic"
# Channels that put a message in front of a named person at once.
PERSONAL_CHANNELS: frozenset[str] = frozenset({"email", "sms", "voice"})
SYSTEM_ROLE = "system"


@dataclass(frozen=True, slots=True)
class Recipient:
    """A person (or, with role ``system``, a machine endpoint) alerts can reach."""

    id: int
    name: str
    email: str | None = None
    phone: str | None = None
    webhook_url: str | None = None
    role: str = "qa"
    site: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Route:
    """Which events reach which recipient(s) over which channel."""

    id: int
    channel: str
    recipient_id: int | None = None
    role: str | None = None
    site: str | None = None
    min_severity: str = "warning"
    kinds: frozenset[str] | None = None
    events: frozenset[str] = frozenset({"opened", "escalated"})
    min_level: int = 0
    active: bool = True


def route_from_row(row: Mapping[str, Any]) -> Route:
    """A ``telemetry.notify_routes`` row (by column name) as a `Route`."""
    kinds = row["kinds"]
    return Route(
        **{
            **row,
            "kinds": frozenset(kinds) if kinds is not None else None,
            "events": frozenset(row["events"]),
        }
    )


@dataclass(frozen=True, slots=True)
class CoverageGap:
    """A (site, severity, kind) whose opening reaches too few named people at once."""

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


def route_matches(  # noqa: PLR0913 - keyword-only facts of one event
    route: Route, *, event: str, level: int, kind: str, severity: str, site: str | None
) -> bool:
    """Whether ``route`` applies to an event (site, severity, kind, event type, level)."""
    return (
        route.active
        and (route.site is None or route.site == site)
        and severity_rank(severity) >= severity_rank(route.min_severity)
        and (route.kinds is None or kind in route.kinds)
        and event in route.events
        and level >= route.min_level
    )


def selected_recipients(
    route: Route, recipients: Iterable[Recipient], site: str | None
) -> list[Recipient]:
    """Active recipients a route names (by id or by role) who serve ``site``."""
    return [
        r
        for r in recipients
        if r.active
        and (r.site is None or r.site == site)
        and (r.id == route.recipient_id if route.recipient_id is not None else r.role == route.role)
    ]


def people_reached_at_once(
    site: str | None,
    severity: str,
    kind: str,
    routes: Sequence[Route],
    recipients: Sequence[Recipient],
) -> tuple[str, ...]:
    """Named people an opening alert reaches immediately (level 0, personal channel), sorted."""
    names = {
        r.name
        for route in routes
        if route.channel in PERSONAL_CHANNELS
        and route_matches(route, event="opened", level=0, kind=kind, severity=severity, site=site)
        for r in selected_recipients(route, recipients, site)
        if r.role != SYSTEM_ROLE and address_for(r, route.channel) is not None
    }
    return tuple(sorted(names))


def _in_order(sites: Iterable[str | None]) -> list[str | None]:
    return sorted(set(sites), key=lambda s: (s is not None, s or ""))


def coverage_gaps(  # noqa: PLR0913 - keyword-only scope of the check
    routes: Sequence[Route],
    recipients: Sequence[Recipient],
    *,
    sites: Iterable[str | None],
    alarms: Iterable[tuple[str, str]] = TWO_PERSON_ALARMS,
    required: Mapping[str | None, int] | None = None,
    default_required: int = MIN_PEOPLE_ON_LIMIT,
) -> list[CoverageGap]:
    """Every (site, kind at its severity) whose opening reaches fewer people than required.

    ``alarms`` are (kind, severity) pairs, by default the alarms the two-person rule
    covers. ``required`` maps a site to the people its profiles require
    (``min_recipients``); a site it does not name requires ``default_required``; never
    fewer than one.
    """
    gaps = []
    needed = required or {}
    pairs = list(alarms)
    for site in _in_order(sites):
        need = max(1, needed.get(site, default_required))
        for kind, severity in pairs:
            people = people_reached_at_once(site, severity, kind, routes, recipients)
            if len(people) < need:
                gaps.append(CoverageGap(site, str(severity), str(kind), people, need))
    return gaps


def fewest_reached(
    sites: Iterable[str | None], routes: Sequence[Route], recipients: Sequence[Recipient]
) -> int:
    """The fewest named people any covered alarm of the given sites reaches at once.

    No site at all counts as the alerts of a sensor without a gateway (site None).
    """
    return min(
        len(people_reached_at_once(site, severity, kind, routes, recipients))
        for site in _in_order(sites) or [None]
        for kind, severity in TWO_PERSON_ALARMS
    )
