"""Turn one alert event into the words quality staff read and the JSON machines read.

Pure: the caller passes the web UI base URL and the site's time zone (if configured).
Every fact that is unknown is said to be unknown rather than left out, so a message
never suggests more certainty than the data has.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ingest.notify.models import AlertNotice, Message

WIRE_VERSION = 1
_EVENT_WORDS = {
    "opened": "opened",
    "updated": "updated",
    "escalated": "escalated",
    "acknowledged": "acknowledged",
    "closed": "closed",
}
# What the alert's figure ("peak") is for kinds where it is not a peak reading.
_FIGURE_WORDS = {"mkt_exceeded": "MKT", "tor_budget_exceeded": "out of range"}


def alert_url(base_url: str, alert_id: int) -> str:
    """Link to the alert in the web UI."""
    return f"{base_url.rstrip('/')}/alerts/{alert_id}"


def format_duration(seconds: float | None) -> str:
    """``3725`` → ``1 h 2 min 5 s``; None → ``unknown``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "unknown"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes or hours:
        parts.append(f"{minutes} min")
    parts.append(f"{secs} s")
    return " ".join(parts)


def format_time(at: datetime | None, tz: ZoneInfo | None) -> str:
    """UTC time, plus the site's local time when a time zone is configured."""
    if at is None:
        return "unknown"
    utc = at.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    if tz is not None:
        local = at.astimezone(tz)
        text += f" ({local.strftime('%Y-%m-%d %H:%M:%S %Z')}, {tz.key})"
    return text


def format_value(value: float | None, unit: str | None) -> str:
    """A measured value with its unit, or ``unknown``."""
    if value is None:
        return "unknown"
    return f"{value:g} {unit}" if unit else f"{value:g}"


def format_limits(limits: Any, unit: str | None) -> str:
    """Alarm limits from the event detail, whatever their shape."""
    if limits is None or limits == {}:
        return "unknown"
    if isinstance(limits, dict):
        low = limits.get("low", limits.get("min"))
        high = limits.get("high", limits.get("max"))
        if isinstance(low, int | float) and isinstance(high, int | float):
            return f"{low:g} – {high:g} {unit or ''}".rstrip()
        return ", ".join(f"{k}={v}" for k, v in sorted(limits.items()))
    return str(limits)


def _place(n: AlertNotice) -> str:
    site = n.site or "unknown site"
    return f"{site} / {n.location}" if n.location else site


def render(notice: AlertNotice, *, base_url: str, tz: ZoneInfo | None = None) -> Message:
    """Subject, plain-text body, a short SMS/voice text and the JSON document of ``notice``."""
    n = notice
    what = _EVENT_WORDS.get(n.event, n.event)
    sensor = n.sensor or "unknown sensor"
    quantity = n.quantity or "unknown quantity"
    url = alert_url(base_url, n.alert_id)
    late = " [LATE]" if n.late else ""
    figure = _FIGURE_WORDS.get(n.kind, "peak")
    subject = (
        f"[{n.severity.upper()}] {n.kind} {what} at {_place(n)}: {sensor} {quantity} "
        f"{figure} {format_value(n.peak, n.unit)}, {format_duration(n.duration_s)}"
        f"{late} (alert #{n.alert_id})"
    )
    ongoing = "" if n.ended_at is not None else " (ongoing)"
    lines = [
        f"Alert #{n.alert_id} ({n.kind}, {n.severity}) {what}"
        + (f" by {n.actor}" if n.actor else ""),
        "",
        f"Site:        {n.site or 'unknown'}",
        f"Location:    {n.location or 'unknown'}",
        f"Sensor:      {sensor} ({quantity})",
        f"{figure[0].upper() + figure[1:] + ':':<12} {format_value(n.peak, n.unit)}",
        f"Limits:      {format_limits(n.limits, n.unit)}",
        f"Duration:    {format_duration(n.duration_s)}{ongoing}",
        f"Started:     {format_time(n.started_at, tz)}",
        f"Ended:       {format_time(n.ended_at, tz) if n.ended_at else 'not yet'}",
        "Late:        "
        + (
            "YES - the readings arrived after the fact (e.g. a gateway backlog)" if n.late else "no"
        ),
        f"Escalation:  level {n.level}",
        f"Status:      {n.status}",
        f"Summary:     {n.summary}",
        "",
        f"Open the alert: {url}",
    ]
    short = (
        f"ColdTrace {n.severity.upper()}: {n.kind} {what} at {_place(n)}, {sensor} {figure} "
        f"{format_value(n.peak, n.unit)} for {format_duration(n.duration_s)}{late}. "
        f"Alert {n.alert_id}: {url}"
    )
    return Message(
        subject=subject, body="\n".join(lines) + "\n", short=short, document=document(n, url)
    )


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at else None


def document(n: AlertNotice, url: str) -> dict[str, Any]:
    """The JSON document sent to webhooks and the MQTT alerts topic."""
    return {
        "v": WIRE_VERSION,
        "type": "alert_event",
        "event_id": n.event_id,
        "alert_id": n.alert_id,
        "event": n.event,
        "level": n.level,
        "at": _iso(n.at),
        "actor": n.actor,
        "kind": n.kind,
        "severity": n.severity,
        "status": n.status,
        "site": n.site,
        "location": n.location,
        "sensor": n.sensor,
        "quantity": n.quantity,
        "unit": n.unit,
        "peak": n.peak,
        "duration_s": n.duration_s,
        "late": n.late,
        "started_at": _iso(n.started_at),
        "ended_at": _iso(n.ended_at),
        "limits": n.limits,
        "summary": n.summary,
        "url": url,
    }
