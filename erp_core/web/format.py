"""How times, ages and measured values are written on the pages (pure; Babel locales).

Times are shown in the site's time zone (``COLDTRACE_SITE_TIMEZONE``, an IANA name,
default UTC): a plant in Suzhou reads its own wall-clock times, not UTC. The zone is
chosen once per process by its settings and made current for each request (or report)
with ``site_zone``; everything here that writes a time reads ``current_zone()``. Data
stays timezone-aware UTC everywhere else (the API's JSON keeps ISO 8601 with offsets).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


SITE_TIMEZONE_ENV = "COLDTRACE_SITE_TIMEZONE"
_ZONE: ContextVar[tzinfo] = ContextVar("coldtrace_site_zone", default=UTC)


class SiteZoneError(ValueError):
    """The site time zone setting is not an IANA zone name; the message names the variable."""


def parse_zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (empty: UTC); SiteZoneError naming the variable otherwise."""
    text = (name or "").strip() or "UTC"
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise SiteZoneError(
            f"{SITE_TIMEZONE_ENV}={text!r} is not an IANA time zone name "
            "(e.g. Asia/Shanghai, Europe/Berlin, UTC)."
        ) from err


def zone_from_env(environ: Mapping[str, str] | None = None) -> ZoneInfo:
    """The site zone of ``COLDTRACE_SITE_TIMEZONE`` (processes without API settings: the CLI)."""
    return parse_zone((os.environ if environ is None else environ).get(SITE_TIMEZONE_ENV))


def current_zone() -> tzinfo:
    """The time zone times are shown in for this request or report (UTC unless set)."""
    return _ZONE.get()


@contextmanager
def site_zone(zone: tzinfo) -> Iterator[None]:
    """Show times in ``zone`` inside the ``with`` block (one request, one report)."""
    token = _ZONE.set(zone)
    try:
        yield
    finally:
        _ZONE.reset(token)


def zone_name(zone: tzinfo | None = None, *, at: datetime | None = None) -> str:
    """The zone as a person reads it: ``UTC``, ``Asia/Shanghai (UTC+8)``, ``… (UTC+5:30)``."""
    zone = zone or current_zone()
    name = str(getattr(zone, "key", "") or zone.tzname(at) or "UTC")
    if name in {"UTC", "Etc/UTC"}:
        return "UTC"
    return f"{name} ({utc_offset(zone, at=at)})"


def utc_offset(zone: tzinfo | None = None, *, at: datetime | None = None) -> str:
    """The zone's offset at ``at`` (now if None): ``UTC``, ``UTC+8``, ``UTC-3:30``."""
    zone = zone or current_zone()
    offset = (at or datetime.now(UTC)).astimezone(zone).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def format_time(t: datetime | None) -> str:
    """``2026-11-25 14:03`` in the site's zone; an em dash for no time."""
    if t is None:
        return "—"
    return t.astimezone(current_zone()).strftime("%Y-%m-%d %H:%M")


def format_stamp(t: datetime | None) -> str:
    """``2026-11-25 22:03 UTC+8``: a printed time with its offset (reports); ``—`` for none."""
    if t is None:
        return "—"
    zone = current_zone()
    return f"{t.astimezone(zone).strftime('%Y-%m-%d %H:%M')} {utc_offset(zone, at=t)}"


def format_moment(t: datetime | None, *, locale: str) -> str:
    """A time for ``locale`` in the site's zone: ``Jun 1, 2026 08:00``, ``2026年6月1日 08:00``."""
    if t is None:
        return "—"
    zone = current_zone()
    local = t.astimezone(zone)
    day = babel_dates.format_date(local, format="medium", locale=locale)
    return f"{day} {babel_dates.format_time(local, 'HH:mm', tzinfo=zone, locale=locale)}"


def _same(message: str) -> str:
    return message


def format_age(  # noqa: PLR0911 - one return per way of saying it
    t: datetime | None, *, now: datetime, _: Callable[[str], str] = _same
) -> str:
    """How long ago ``t`` was, coarsely: ``just now``, ``7 min ago``, ``3 h 5 min ago``.

    ``_`` is the page's gettext (English when not given).
    """
    if t is None:
        return _("never")
    age = now - t
    if age < timedelta(0):
        return _("in the future")
    minutes = int(age.total_seconds() // 60)
    if minutes < 1:
        return _("just now")
    if minutes < 60:
        return _("%(m)s min ago") % {"m": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        if minutes:
            return _("%(h)s h %(m)s min ago") % {"h": hours, "m": minutes}
        return _("%(h)s h ago") % {"h": hours}
    return _("%(d)s days ago") % {"d": hours // 24}


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
