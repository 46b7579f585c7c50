"""How times, ages and measured values are written on the pages (pure, UTC only; Babel locales)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from babel import dates as babel_dates

from telemetry.units import display_unit, with_unit


def format_value(value: float | None, unit: str) -> str:
    """A measured value with its unit, e.g. ``4.3 °C``; an em dash when there is none."""
    return "—" if value is None else with_unit(value, unit)


def format_range(low: float, high: float, unit: str) -> str:
    """An allowed range with an en dash between the limits, e.g. 2 to 8 °C."""
    shown = display_unit(unit)
    text = f"{low:g}\N{EN DASH}{high:g}"
    return f"{text} {shown}" if shown else text


def format_time(t: datetime | None) -> str:
    """``2026-11-25 14:03`` in UTC; an em dash for no time."""
    if t is None:
        return "—"
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def format_moment(t: datetime | None, *, locale: str) -> str:
    """A time for ``locale`` in UTC: ``Jun 1, 2026 08:00``, ``2026年6月1日 08:00``, or ``—``."""
    if t is None:
        return "—"
    utc = t.astimezone(UTC)
    day = babel_dates.format_date(utc, format="medium", locale=locale)
    return f"{day} {babel_dates.format_time(utc, 'HH:mm', tzinfo=UTC, locale=locale)}"


def format_age(t: datetime | None, *, now: datetime) -> str:
    """How long ago ``t`` was, coarsely: ``just now``, ``7 min ago``, ``3 h 5 min ago``."""
    if t is None:
        return "never"
    age = now - t
    if age < timedelta(0):
        return "in the future"
    minutes = int(age.total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min ago" if minutes else f"{hours} h ago"
    return f"{hours // 24} days ago"


def format_span(span: timedelta) -> str:
    """A bucket or range width in the largest whole unit: ``2 min``, ``6 h``, ``500 ms``."""
    seconds = span.total_seconds()
    for size, name in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {name}"
    if seconds >= 1:
        return f"{seconds:g} s"
    return f"{seconds * 1000:g} ms"


def format_seconds(seconds: float) -> str:
    """A duration as a person reads it: ``41 s``, ``12 min 5 s``, ``3 h 20 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"
