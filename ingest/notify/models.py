"""Value types of the notifier: the alert event to tell, deliveries, messages.

Recipients and routes are ``coldchain.recipients`` (the ERP counts people with them too).

Frozen dataclasses with no I/O, so routing and rendering are pure functions of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ChannelName = Literal["email", "sms", "voice", "webhook", "mqtt"]

CHANNELS: tuple[ChannelName, ...] = ("email", "sms", "voice", "webhook", "mqtt")
EVENTS = ("opened", "updated", "escalated", "acknowledged", "closed")


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
