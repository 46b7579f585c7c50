"""HIBC LIC (Health Industry Bar Code, Supplier Labeling Standard) to `Label`.

biip does not read HIBC, so this is written from ANSI/HIBC 2.6: a primary data
structure ``+ LIC(4) PCN(1-18) U/M(1) C`` identifies the product; a secondary data
structure ``+ <lot/serial/expiry> L C`` carries the production data, linked to its
primary by the link character L (the primary's check character); the concatenated
form ``+ LIC PCN U/M / <secondary> C`` carries both with one check character.
Every check character is the sum of the character values (0-9, A-Z = 10-35, then
``- . space $ / + %`` = 36-42) modulo 43. Secondary expiry formats: ``$$`` followed by
0/1 (MMYY), 2 (MMDDYY), 3 (YYMMDD), 4 (YYMMDDHH), 5 (YYJJJ), 6 (YYJJJHH), 7 (none),
8/9 (2- or 5-digit quantity, then one of those); ``$`` alone is lot only, ``$+`` and
``$$+`` put a serial number where the lot would be; ``/S``, ``/14D`` and ``/16D``
supplemental fields carry serial, expiry (YYYYMMDD) and manufacture date. A month-only
expiry (MMYY) is read as the last day of that month. No I/O.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, replace

from identifiers.udi import BarcodeError, Label, Scheme

CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%"
_VALUE = {c: i for i, c in enumerate(CHARSET)}
_PRIMARY_RE = re.compile(r"^(?P<lic>[A-Z][A-Z0-9]{3})(?P<pcn>[A-Z0-9]{1,18})(?P<um>[0-9])$")
_DATE_LENGTHS = {"2": 6, "3": 6, "4": 8, "5": 5, "6": 7, "7": 0}


def check_character(data: str) -> str:
    """Return the mod-43 check character of ``data`` (which starts with the '+' flag)."""
    try:
        return CHARSET[sum(_VALUE[c] for c in data) % 43]
    except KeyError as err:
        raise BarcodeError(f"character {err.args[0]!r} is not allowed in HIBC data") from None


@dataclass(frozen=True, slots=True)
class HibcPrimary:
    """The product part: labeler identification code, product/catalog number, unit of measure."""

    lic: str
    pcn: str
    unit_of_measure: int


def _parse_primary(body: str) -> HibcPrimary:
    m = _PRIMARY_RE.match(body)
    if m is None:
        raise BarcodeError(
            f"HIBC primary data {body!r} is not LIC (a letter and 3 letters/digits), "
            "product number (1-18 letters/digits) and a unit-of-measure digit"
        )
    return HibcPrimary(m["lic"], m["pcn"], int(m["um"]))


def _date(text: str, fmt: str, what: str) -> dt.date:
    if fmt in ("5", "6"):  # YYJJJ[HH]
        year, day = 2000 + int(text[:2]), int(text[2:5])
        if not 1 <= day <= (366 if calendar.isleap(year) else 365):
            raise BarcodeError(f"HIBC {what} {text!r} has day of year {day}")
        return dt.date(year, 1, 1) + dt.timedelta(days=day - 1)
    try:
        if fmt in ("0", "1"):  # MMYY: the last day of that month
            month, year = int(text[:2]), 2000 + int(text[2:4])
            return dt.date(year, month, calendar.monthrange(year, month)[1])
        if fmt == "2":  # MMDDYY
            return dt.date(2000 + int(text[4:6]), int(text[:2]), int(text[2:4]))
        if fmt == "8D":  # YYYYMMDD in supplemental fields
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        return dt.date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))  # YYMMDD[HH]
    except ValueError as err:
        raise BarcodeError(f"HIBC {what} {text!r} is not a valid date: {err}") from None


def _parse_dollar(data: str) -> Label:
    """Parse secondary data that starts with '$' (lot/serial, optional quantity and date)."""
    label = Label(Scheme.HIBC)
    if not data.startswith("$$"):
        rest = data[1:]
        if rest.startswith("+"):
            return replace(label, serial=_field(rest[1:], "serial"))
        return replace(label, lot=_field(rest, "lot"))
    rest = data[2:]
    is_serial = rest.startswith("+")
    rest = rest.removeprefix("+")
    if rest[:1] in ("8", "9"):  # quantity first, then the date format
        rest = rest[3:] if rest[0] == "8" else rest[6:]
    flag = rest[:1]
    expiry: dt.date | None
    if flag in ("0", "1"):
        expiry, rest = _date(rest[:4], flag, "expiry"), rest[4:]
    elif flag in _DATE_LENGTHS:
        length = _DATE_LENGTHS[flag]
        text = rest[1 : 1 + length]
        if len(text) != length or (length and not text.isdigit()):
            raise BarcodeError(f"HIBC expiry of format {flag} needs {length} digits, got {text!r}")
        expiry = _date(text, flag, "expiry") if length else None
        rest = rest[1 + length :]
    else:
        raise BarcodeError(f"HIBC secondary data {data!r} has unknown date format flag {flag!r}")
    value = _field(rest, "serial" if is_serial else "lot")
    if is_serial:
        return replace(label, serial=value, expiry=expiry)
    return replace(label, lot=value, expiry=expiry)


def _field(text: str, what: str) -> str:
    if not text or len(text) > 18 or not re.fullmatch(r"[A-Z0-9\-. $%]+", text):
        raise BarcodeError(f"HIBC {what} {text!r} must be 1-18 allowed characters")
    return text


def _parse_secondary(data: str) -> Label:
    """Parse secondary data (after '+' or '/', without link and check characters)."""
    main, *supplemental = data.split("/")
    if main.startswith("$"):
        label = _parse_dollar(main)
    elif len(main) >= 5 and main[:5].isdigit():  # legacy: YYJJJ then lot
        label = Label(Scheme.HIBC, expiry=_date(main[:5], "5", "expiry"))
        label = replace(label, lot=_field(main[5:], "lot")) if main[5:] else label
    else:
        raise BarcodeError(f"HIBC secondary data {main!r} starts with neither '$' nor a date")
    for extra in supplemental:
        if extra.startswith("S"):
            label = replace(label, serial=_field(extra[1:], "serial"))
        elif extra.startswith("14D"):
            label = replace(label, expiry=_date(extra[3:], "8D", "expiry (14D)"))
        elif extra.startswith("16D"):
            label = replace(label, production=_date(extra[3:], "8D", "manufacture date (16D)"))
        else:
            raise BarcodeError(f"HIBC supplemental field {extra!r} is not /S, /14D or /16D")
    return label


def parse_hibc(text: str) -> Label:
    """Parse a primary, secondary or concatenated HIBC LIC symbol; raise `BarcodeError`."""
    data = text.strip("\r\n").removeprefix("*").removesuffix("*")  # Code 39 start/stop in HRI
    if not data.startswith("+") or len(data) < 3:
        raise BarcodeError(f"HIBC data must start with '+', got {data[:20]!r}")
    if data.startswith("+/"):
        raise BarcodeError("HIBC PAS (provider applications, '+/') is not a supplier label")
    body, check = data[:-1], data[-1]
    expected = check_character(body)
    if check != expected:
        raise BarcodeError(f"HIBC check character is {check!r}, expected {expected!r}")
    inner = body[1:]
    if inner[:1].isalpha():  # primary, or concatenated primary/secondary
        primary_text, sep, secondary_text = inner.partition("/")
        primary = _parse_primary(primary_text)
        di = f"{primary.lic}{primary.pcn}{primary.unit_of_measure}"
        if not sep:
            return Label(Scheme.HIBC, di=di)
        return replace(_parse_secondary(secondary_text), di=di)
    # a separate secondary symbol: its last data character is the primary's link character
    if len(inner) < 2:
        raise BarcodeError("HIBC secondary symbol is too short")
    return _parse_secondary(inner[:-1])


def encode_primary(lic: str, pcn: str, unit_of_measure: int) -> str:
    """Build a primary HIBC symbol's data with its check character."""
    body = f"+{lic}{pcn}{unit_of_measure}"
    return body + check_character(body)


def encode_concatenated(
    lic: str, pcn: str, unit_of_measure: int, *, expiry: dt.date, lot: str
) -> str:
    """Build a concatenated primary/secondary symbol with expiry as YYJJJ (format 5)."""
    julian = f"{expiry.year % 100:02d}{expiry.timetuple().tm_yday:03d}"
    body = f"+{lic}{pcn}{unit_of_measure}/$$5{julian}{lot}"
    return body + check_character(body)
