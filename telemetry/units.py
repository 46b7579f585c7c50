"""How a unit code of the wire contract is written for people: ``Cel`` → ``°C``.

Readings carry UCUM codes (``telemetry.payloads``); pages, e-mails and reports show the
symbol a person reads. One table, so the web UI and the notifier cannot disagree.
"""

from __future__ import annotations

# UCUM codes as stored -> what a person reads; "1" is a dimensionless state (door, power).
UNIT_SYMBOLS = {"Cel": "°C", "%": "%", "hPa": "hPa", "V": "V", "h": "h", "1": ""}


def display_unit(unit: str) -> str:
    """The printed form of a UCUM unit code (unknown codes as they are)."""
    return UNIT_SYMBOLS.get(unit, unit)


def with_unit(value: float, unit: str | None, *, decimals: int = 1) -> str:
    """``8.1 °C``: ``decimals`` for measured values, as measured for a state (unit ``1``)."""
    shown = display_unit(unit) if unit else ""
    number = f"{value:g}" if unit in {None, "1"} else f"{value:.{decimals}f}"
    return f"{number} {shown}" if shown else number
