"""An alert's story in time order: its events and the notifications they sent (pure).

The event log (``telemetry.alert_events``) says what happened to the alert; the
deliveries say who was told about each step. Quality staff and auditors read them as one
timeline ("opened 10:02, e-mail to Li Wei 10:02, escalated 10:17, SMS to Meng Hao…"),
so the alert page merges them here, oldest first; a step and the notifications it caused
stay together when they share a time (events sort before their deliveries).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from erp_core.alerts.models import AlertEvent


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the timeline: an alert event, or one notification of one."""

    at: datetime
    what: str  # an event code (opened, escalated, …) or "notice"
    actor: str | None = None
    level: int = 0
    comment: str | None = None
    disposition: str | None = None
    peak: float | None = None  # the figure an update brought (its detail's peak)
    # a notification: on behalf of which event, over which channel, to whom, how it went
    event: str | None = None
    channel: str | None = None
    recipient: str | None = None
    status: str | None = None
    attempts: int = 0


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _figure(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _notice_time(d: Mapping[str, Any]) -> datetime:
    """When a delivery happened: sent, or given up, or (still waiting) created."""
    at = d.get("sent_at") or d.get("failed_at") or d.get("created_at")
    assert isinstance(at, datetime)
    return at


def timeline(events: Iterable[AlertEvent], deliveries: Iterable[Mapping[str, Any]]) -> list[Step]:
    """The events and deliveries of one alert as one list, oldest first."""
    steps = [
        (
            e.at,
            0,
            Step(
                at=e.at,
                what=e.event,
                actor=e.actor,
                level=e.level,
                comment=_text(e.detail.get("comment")),
                disposition=_text(e.detail.get("disposition")),
                peak=_figure(e.detail.get("peak")) if e.event == "updated" else None,
            ),
        )
        for e in events
    ]
    steps += [
        (
            _notice_time(d),
            1,
            Step(
                at=_notice_time(d),
                what="notice",
                level=int(d.get("level") or 0),
                event=d.get("event"),
                channel=d.get("channel"),
                recipient=d.get("recipient"),
                status=d.get("status"),
                attempts=int(d.get("attempts") or 0),
            ),
        )
        for d in deliveries
    ]
    steps.sort(key=lambda s: (s[0], s[1]))
    return [s for _, _, s in steps]
