"""How many named people a location's limit alarm reaches at once (pure).

The notifier (``ingest/notify/routing.py``) decides who hears about an alert. The ERP
may not import ingest (they meet in the database), so this module applies the same
rule to the same rows (``telemetry.recipients``, ``telemetry.notify_routes``): an alert
of a limit kind (``excursion_high``/``excursion_low``, severity ``critical``, as ingest
raises them) opening at escalation level 0 reaches every active recipient that an active
matching route names, by id or by role, who serves the alert's site, is not a ``system``
endpoint and has an address on a personal channel (email, sms, voice).
``tests/unit/test_compliance_recipients.py`` checks with hypothesis that both count the
same people on any rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LIMIT_KINDS = ("excursion_high", "excursion_low")
LIMIT_SEVERITY = "critical"
PERSONAL_CHANNELS = frozenset({"email", "sms", "voice"})
SYSTEM_ROLE = "system"
_SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class RecipientRow:
    """A row of ``telemetry.recipients``."""

    id: int
    name: str
    email: str | None
    phone: str | None
    role: str
    site: str | None
    active: bool


@dataclass(frozen=True, slots=True)
class RouteRow:
    """A row of ``telemetry.notify_routes``."""

    channel: str
    recipient_id: int | None
    role: str | None
    site: str | None
    min_severity: str
    kinds: frozenset[str] | None
    events: frozenset[str]
    min_level: int
    active: bool


def _rank(severity: str) -> int:
    return _SEVERITIES.index(severity) if severity in _SEVERITIES else len(_SEVERITIES) - 1


def _address(recipient: RecipientRow, channel: str) -> str | None:
    if channel == "email":
        return recipient.email or None
    if channel in ("sms", "voice"):
        return recipient.phone or None
    return None


def _route_opens(route: RouteRow, kind: str, site: str | None) -> bool:
    return (
        route.active
        and route.channel in PERSONAL_CHANNELS
        and (route.site is None or route.site == site)
        and _rank(LIMIT_SEVERITY) >= _rank(route.min_severity)
        and (route.kinds is None or kind in route.kinds)
        and "opened" in route.events
        and route.min_level <= 0
    )


def people_for(
    kind: str, site: str | None, routes: Sequence[RouteRow], recipients: Sequence[RecipientRow]
) -> set[str]:
    """Names of the people an opening ``kind`` alert at ``site`` reaches immediately."""
    names: set[str] = set()
    for route in routes:
        if not _route_opens(route, kind, site):
            continue
        for r in recipients:
            chosen = (
                r.id == route.recipient_id
                if route.recipient_id is not None
                else (r.role == route.role)
            )
            if (
                chosen
                and r.active
                and (r.site is None or r.site == site)
                and r.role != SYSTEM_ROLE
                and _address(r, route.channel) is not None
            ):
                names.add(r.name)
    return names


def people_reached(
    sites: Iterable[str | None], routes: Sequence[RouteRow], recipients: Sequence[RecipientRow]
) -> int:
    """The fewest named people any limit alarm of the given sites reaches at once."""
    counts = [
        len(people_for(kind, site, routes, recipients))
        for site in set(sites) or {None}
        for kind in LIMIT_KINDS
    ]
    return min(counts)
