"""Value types of the notifier: recipients, routes, the alert event to tell, messages.

Frozen dataclasses with no I/O, so routing and rendering are pure functions of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]
ChannelName = Literal["email", "sms", "voice", "webhook", "mqtt"]

SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
CHANNELS: tuple[ChannelName, ...] = ("email", "sms", "voice", "webhook", "mqtt")
EVENTS = ("opened", "updated", "escalated", "acknowledged", "closed")
# Channels that put a message in front of a named person at once (NMPA: two people).
PERSONAL_CHANNELS: frozenset[str] = frozenset({"email", "sms", "voice"})
SYSTEM_ROLE = "system"


def severity_rank(severity: str) -> int:
    """Order of a severity: info < warning < critical (unknown counts as critical)."""
    ranks: dict[str, int] = {name: i for i, name in enumerate(SEVERITIES)}
    return ranks.get(severity, len(SEVERITIES) - 1)


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


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What routing needs to know about one alert event."""

    event_id: int
    alert_id: int
    event: str
    level: int
    kind: str
    severity: str
    site: str | None


@dataclass(frozen=True, slots=True)
class Target:
    """One delivery to create: a recipient, a channel and the address used."""

    recipient_id: int
    channel: str
    address: str


@dataclass(frozen=True, slots=True)
class ExposedLot:
    """A lot in the custody of the alert's sensor during the alert (view ``erp.alert_lots``)."""

    lot_number: str
    item: str
    gtin: str


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """Everything a message says about one alert event (detail merged over alert columns)."""

    event_id: int
    alert_id: int
    event: str
    level: int
    at: datetime
    kind: str
    severity: str
    status: str
    summary: str
    started_at: datetime
    site: str | None = None
    location: str | None = None
    sensor: str | None = None
    quantity: str | None = None
    unit: str | None = None
    peak: float | None = None
    duration_s: float | None = None
    late: bool = False
    ended_at: datetime | None = None
    limits: Any = None
    actor: str | None = None
    # None: unknown (no sensor, or the ERP's view could not be read); (): no lot exposed
    lots: tuple[ExposedLot, ...] | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered notification: text for people, a JSON document for machines."""

    subject: str
    body: str
    short: str
    document: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this notifier has claimed (status ``sending``) and must now send."""

    id: int
    channel: str
    address: str
    attempts: int
    recipient: str
    notice: AlertNotice
