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

from coldchain.alert_kinds import figure_words, kind_words
from ingest.notify.models import AlertNotice, ExposedLot, Message
from telemetry.units import display_unit, with_unit

WIRE_VERSION = 1
_EVENT_WORDS = {
    "opened": "opened",
    "updated": "updated",
    "escalated": "escalated",
    "acknowledged": "acknowledged",
    "closed": "closed",
}
LOTS_IN_SUBJECT = 3  # lot numbers named in a subject or SMS; the body lists them all


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


def format_lasting(seconds: float | None, *, ongoing: bool) -> str:
    """How long it lasted: ``3 min 20 s``, ``3 min 20 s so far`` or ``just started``."""
    if not ongoing:
        return format_duration(seconds)
    if seconds is not None and math.isfinite(seconds) and round(seconds) <= 0:
        return "just started"
    return f"{format_duration(seconds)} so far"


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


def format_value(value: float | None, unit: str | None, *, decimals: int = 1) -> str:
    """A measured value with its unit as people write it (``8.1 °C``), or ``unknown``."""
    return "unknown" if value is None else with_unit(value, unit, decimals=decimals)


def format_limits(limits: Any, unit: str | None) -> str:
    """Alarm limits from the event detail, whatever their shape."""
    if limits is None or limits == {}:
        return "unknown"
    if isinstance(limits, dict):
        low = limits.get("low", limits.get("min"))
        high = limits.get("high", limits.get("max"))
        if isinstance(low, int | float) and isinstance(high, int | float):
            return f"{low:g} – {high:g} {display_unit(unit) if unit else ''}".rstrip()
        return ", ".join(f"{k}={v}" for k, v in sorted(limits.items()))
    return str(limits)


def format_lot(lot: ExposedLot) -> str:
    """``L-2026-003 (Vascular graft 6 mm, GTIN 04006381333931)``."""
    return f"{lot.lot_number} ({lot.item}, GTIN {lot.gtin})"


def lots_line(lots: tuple[ExposedLot, ...] | None) -> str:
    """The body's list of the lots exposed during the alert, or why there is none."""
    if lots is None:
        return "unknown (no sensor, or the ERP could not be read): check the alert page"
    if not lots:
        return "none in custody at the sensor's location during the alert"
    return "\n             ".join(format_lot(lot) for lot in lots)


def lots_short(lots: tuple[ExposedLot, ...] | None) -> str:
    """``; lots L1, L2 +3 more`` for a subject or an SMS; empty when there is none."""
    if not lots:
        return ""
    names = ", ".join(lot.lot_number for lot in lots[:LOTS_IN_SUBJECT])
    more = f" +{len(lots) - LOTS_IN_SUBJECT} more" if len(lots) > LOTS_IN_SUBJECT else ""
    return f"; {'lot' if len(lots) == 1 else 'lots'} {names}{more}"


def _place(n: AlertNotice) -> str:
    site = n.site or "unknown site"
    return f"{site} / {n.location}" if n.location else site


def render(notice: AlertNotice, *, base_url: str, tz: ZoneInfo | None = None) -> Message:
    """Subject, plain-text body, a short SMS/voice text and the JSON document of ``notice``.

    Words and units, not codes: ``temperature above the upper limit``, ``8.1 °C``,
    ``3 min 20 s``; the lots exposed are named (the JSON document keeps the codes).
    """
    n = notice
    what = _EVENT_WORDS.get(n.event, n.event)
    sensor = n.sensor or "unknown sensor"
    quantity = n.quantity or "unknown quantity"
    happened = kind_words(n.kind)
    url = alert_url(base_url, n.alert_id)
    late = " [LATE]" if n.late else ""
    figure = figure_words(n.kind)
    # MKT is judged against its limit to the hundredth (8.04 °C is over 8.00 °C)
    value = format_value(n.peak, n.unit, decimals=2 if n.kind == "mkt_exceeded" else 1)
    lasting = format_lasting(n.duration_s, ongoing=n.ended_at is None)
    subject = (
        f"[{n.severity.upper()}] {sensor} {quantity} {happened} at {_place(n)}: "
        f"{figure} {value}, {lasting}{late}{lots_short(n.lots)} (alert #{n.alert_id} {what})"
    )
    escalation = f"level {n.level}" if n.level else "not escalated"
    lines = [
        f"Alert #{n.alert_id} {what}"
        + (f" by {n.actor}" if n.actor else "")
        + f": {sensor} {quantity} {happened}",
        "",
        f"What:        {quantity} {happened} ({n.severity})",
        f"Site:        {n.site or 'unknown'}",
        f"Location:    {n.location or 'unknown'}",
        f"Sensor:      {sensor} ({quantity})",
        f"{figure[0].upper() + figure[1:] + ':':<12} {value}",
        f"Limits:      {format_limits(n.limits, n.unit)}",
        f"Duration:    {lasting}",
        f"Started:     {format_time(n.started_at, tz)}",
        f"Ended:       {format_time(n.ended_at, tz) if n.ended_at else 'not yet'}",
        "Late:        "
        + (
            "YES - the readings arrived after the fact (e.g. a gateway backlog)" if n.late else "no"
        ),
        f"Lots:        {lots_line(n.lots)}",
        f"Escalation:  {escalation}",
        f"Status:      {n.status}",
        f"Summary:     {n.summary}",
        "",
        f"Open the alert: {url}",
    ]
    short = (
        f"ColdTrace {n.severity.upper()}: {sensor} {quantity} {happened} at {_place(n)}, "
        f"{figure} {value}, {lasting}{late}{lots_short(n.lots)}. Alert {n.alert_id}: {url}"
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
        "lots": None
        if n.lots is None
        else [{"lot_number": x.lot_number, "item": x.item, "gtin": x.gtin} for x in n.lots],
        "url": url,
    }
