"""Grafana's PostgreSQL query interpolation, step by step: tests run SQL as Grafana would.

Grafana (11.3, the version docker-compose pins) turns a panel's ``rawSql`` into the text
PostgreSQL receives in three passes, and this module repeats them in the same order:

1. **Template variables** (the browser, ``SqlDatasource.interpolateVariable``): ``$name``,
   ``${name}`` and ``[[name]]``. A single-valued variable's text goes in with its single
   quotes doubled and *no* quotes around it; a multi-valued one as a comma-separated list
   of quoted literals.
2. **Global substitutions** (the backend, ``sqleng.Interpolate``): ``$__interval_ms`` →
   milliseconds, ``$__interval`` → the *text* form of the interval (``20m``, ``1h``,
   ``500ms``: ``gtime.FormatInterval``), ``$__unixEpochFrom()``, ``$__unixEpochTo()``.
   ``$__interval::interval`` therefore reaches PostgreSQL as ``20m::interval``, which it
   rejects ("trailing junk after numeric literal") — the bug of the first dashboard.
3. **Macros** (``postgresMacroEngine``): every ``$__name(args)`` — ``$__timeFilter(c)`` →
   ``c BETWEEN 'from' AND 'to'`` (RFC 3339, UTC, nanoseconds without trailing zeros),
   ``$__timeFrom()``, ``$__timeTo()``, ``$__timeGroup(c, '5m')`` →
   ``floor(extract(epoch from c)/300)*300`` (``time_bucket('300.000s',c)`` when the data
   source has TimescaleDB on), ``$__timeGroupAlias`` (the same ``AS "time"``), ``$__time``,
   ``$__timeEpoch`` and the ``$__unixEpoch*`` family. A ``$__timeGroup`` directly followed
   by a comma gets the alias, as in Grafana (pre-5.3 compatibility).

Pure: no I/O. Grafana's own test vectors are in ``tests/unit/test_grafana_macros.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}|\[\[(\w+)\]\]")
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DATE_UNIT = re.compile(r"^(\d+)([dwMy])$")

_MS = timedelta(milliseconds=1)
_UNITS = (
    (timedelta(days=365), "y"),
    (timedelta(days=1), "d"),
    (timedelta(hours=1), "h"),
    (timedelta(minutes=1), "m"),
    (timedelta(seconds=1), "s"),
    (_MS, "ms"),
)
_GO_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


class MacroError(ValueError):
    """A macro Grafana would refuse (unknown name, missing argument, bad interval)."""


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What Grafana knows when it runs one panel query: range, interval, variables."""

    time_from: datetime
    time_to: datetime
    interval: timedelta
    variables: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    timescaledb: bool = False  # the data source's "TimescaleDB" switch


def format_interval(interval: timedelta) -> str:
    """The text Grafana puts for ``$__interval`` (``gtime.FormatInterval``): ``20m``, ``1h``."""
    for unit, suffix in _UNITS:
        if interval >= unit:
            return f"{interval // unit}{suffix}"
    return "1ms"


def rfc3339_nano(t: datetime) -> str:
    """``t`` in UTC as Go's ``time.RFC3339Nano``: fraction without trailing zeros, ``Z``."""
    t = t.astimezone(UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_interval(text: str) -> timedelta:
    """A ``$__timeGroup`` interval (``gtime.ParseInterval``): Go durations, ``Nd``/``Nw``."""
    date_unit = _DATE_UNIT.match(text)
    if date_unit:
        n, unit = int(date_unit[1]), date_unit[2]
        if unit in "dw":
            return timedelta(days=n * (7 if unit == "w" else 1))
        # Months and years depend on today's calendar in Grafana; no panel here uses them.
        raise MacroError(f"calendar interval {text!r} is not supported here")
    pos, total = 0, 0.0
    for match in _GO_DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match[1]) * _GO_UNIT_SECONDS[match[2]]
        pos = match.end()
    if pos != len(text) or not text:
        raise MacroError(f"error parsing interval {text}")
    return timedelta(seconds=total)


def go_float(value: float) -> str:
    """``value`` as Go's ``%v`` prints a float64: shortest digits, exponent from 1e+06 on."""
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)  # digits before the decimal point
    minus = "-" if sign else ""
    if value == 0:
        return "0"
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        e = point - 1
        return f"{minus}{mantissa}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{text}"
    if point >= len(text):
        return minus + text + "0" * (point - len(text))
    return f"{minus}{text[:point]}.{text[point:]}"


def _variable_text(value: str | Sequence[str]) -> str:
    if isinstance(value, str):
        return value.replace("'", "''")
    return ",".join("'" + v.replace("'", "''") + "'" for v in value)


def interpolate_variables(sql: str, variables: Mapping[str, str | Sequence[str]]) -> str:
    """Pass 1: dashboard variables, as the browser substitutes them (others left as they are)."""

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[3]
        if name not in variables:
            return match[0]
        return _variable_text(variables[name])

    return _VARIABLE.sub(replace, sql)


def interpolate_globals(sql: str, ctx: QueryContext) -> str:
    """Pass 2: ``sqleng.Interpolate``, plain string replacement in Grafana's order."""
    sql = sql.replace("$__interval_ms", str(ctx.interval // _MS))
    sql = sql.replace("$__interval", format_interval(ctx.interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(ctx.time_from.timestamp())))
    return sql.replace("$__unixEpochTo()", str(int(ctx.time_to.timestamp())))


def _time_group(args: list[str], name: str, ctx: QueryContext) -> str:
    if len(args) < 2:
        raise MacroError(f"macro {name} needs time column and interval and optional fill value")
    seconds = parse_interval(args[1].strip("'")).total_seconds()
    if name == "__unixEpochGroup":
        return f"floor(({args[0]})/{go_float(seconds)})*{go_float(seconds)}"
    if ctx.timescaledb:
        return f"time_bucket('{seconds:.3f}s',{args[0]})"
    return f"floor(extract(epoch from {args[0]})/{go_float(seconds)})*{go_float(seconds)}"


def _nanos(t: datetime) -> int:
    delta = t.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def evaluate_macro(name: str, args: list[str], ctx: QueryContext) -> str:  # noqa: C901, PLR0911
    """One macro's text (``postgresMacroEngine.evaluateMacro``)."""
    start, end = rfc3339_nano(ctx.time_from), rfc3339_nano(ctx.time_to)
    needs_column = {"__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter"}
    if name in needs_column | {"__unixEpochNanoFilter"} and not args:
        raise MacroError(f"missing time column argument for macro {name}")
    match name:
        case "__time":
            return f'{args[0]} AS "time"'
        case "__timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        case "__timeFilter":
            return f"{args[0]} BETWEEN '{start}' AND '{end}'"
        case "__timeFrom":
            return f"'{start}'"
        case "__timeTo":
            return f"'{end}'"
        case "__timeGroup" | "__unixEpochGroup":
            return _time_group(args, name, ctx)
        case "__timeGroupAlias" | "__unixEpochGroupAlias":
            return _time_group(args, name.removesuffix("Alias"), ctx) + ' AS "time"'
        case "__unixEpochFilter":
            lo, hi = int(ctx.time_from.timestamp()), int(ctx.time_to.timestamp())
            return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
        case "__unixEpochNanoFilter":
            lo, hi = _nanos(ctx.time_from), _nanos(ctx.time_to)
            return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
        case "__unixEpochNanoFrom":
            return str(_nanos(ctx.time_from))
        case "__unixEpochNanoTo":
            return str(_nanos(ctx.time_to))
    raise MacroError(f"unknown macro {name!r}")


def interpolate_macros(sql: str, ctx: QueryContext) -> str:
    """Pass 3: every ``$__name(args)`` of the PostgreSQL macro engine."""

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        if name == "__timeGroup":
            # Grafana looks for the *first* occurrence of this text and a comma after it.
            index = sql.find(match[0]) + len(match[0])
            if index < len(sql) and sql[index] == ",":
                name = "__timeGroupAlias"
        args = [a.strip(" ") for a in match[2].split(",")]
        return evaluate_macro(name, args, ctx)

    return _MACRO.sub(replace, sql)


def interpolate(sql: str, ctx: QueryContext) -> str:
    """``sql`` as PostgreSQL receives it from Grafana's PostgreSQL data source."""
    return interpolate_macros(
        interpolate_globals(interpolate_variables(sql, ctx.variables), ctx), ctx
    )
