"""China NMPA UDI in the MA code (IDcode, ISO/IEC 15459 issuing agency "MA") to `Label`.

The DI is ``MA.<country 3 digits>.M0.<registrant 6 digits>.<product code 8 digits>``
(product code = packaging digit, 6-digit item code, check digit), e.g.
``MA.156.M0.100761.21234561``. Production identifiers follow, each introduced by a
dot and a letter: ``.L`` lot, ``.S`` serial, ``.M`` production date, ``.D``
sterilisation lot, ``.V`` validity date, ``.E`` expiry date; dates are YYMMDD or
YYYYMMDD. Source: the MA (IDcode) UDI coding rules as published by the issuing agency
(ZIIOT). Codes issued through ZIIOT's coding service end with a check field ``.C``
and one character over the production data (e.g. ``….E220130.V220117.C3``, as
vendors' MA code samples show); it is accepted as the last field and carried, not
verified. Neither its algorithm nor that of the product code's check character is
published (the agency issues codes through its own service; a third-party
reverse-engineered algorithm was withdrawn by its author), so neither is checked
here. No I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

from identifiers.udi import BarcodeError, Label, Scheme

# [0-9], not \d: \d also matches Arabic-Indic, full-width and other Unicode digits
_DI_RE = re.compile(
    r"^MA\.(?P<country>[0-9]{3})\.M0\.(?P<registrant>[0-9]{6})\.(?P<product>[0-9]{8})"
)
_PI_RE = re.compile(r"\.(?P<key>[LSMDVEC])(?P<value>[0-9A-Za-z\-]*)")


def _date(text: str, key: str) -> dt.date:
    if not text.isdigit() or len(text) not in (6, 8):
        raise BarcodeError(f"MA .{key} date {text!r} must be 6 (YYMMDD) or 8 (YYYYMMDD) digits")
    year = int(text[:-4]) + (2000 if len(text) == 6 else 0)
    try:
        return dt.date(year, int(text[-4:-2]), int(text[-2:]))
    except ValueError as err:
        raise BarcodeError(f"MA .{key} date {text!r} is not a valid date: {err}") from None


def parse_ma(text: str) -> Label:
    """Parse an MA code UDI; raise `BarcodeError` naming what is wrong."""
    data = text.strip("\r\n")
    m = _DI_RE.match(data)
    if m is None:
        raise BarcodeError(
            f"{data[:40]!r} is not an MA UDI: expected MA.<3-digit country>.M0."
            "<6-digit registrant>.<8-digit product code>"
        )
    label = Label(Scheme.MA, di=m.group(0))
    rest = data[m.end() :]
    seen: set[str] = set()
    pos = 0
    while pos < len(rest):
        pi = _PI_RE.match(rest, pos)
        if pi is None or not pi["value"]:
            bad = rest[pos:][:30]
            raise BarcodeError(f"MA production data {bad!r} is not .L/.S/.M/.D/.V/.E/.C")
        key, value = pi["key"], pi["value"]
        if key in seen:
            raise BarcodeError(f"MA production identifier .{key} appears twice")
        if key == "C" and (len(value) != 1 or pi.end() != len(rest)):
            raise BarcodeError("MA check field .C must be one character at the very end")
        seen.add(key)
        if key == "L":
            label = replace(label, lot=value)
        elif key == "S":
            label = replace(label, serial=value)
        elif key == "M":
            label = replace(label, production=_date(value, key))
        elif key in ("V", "E"):
            label = replace(label, expiry=_date(value, key))
        pos = pi.end()
    return label


def encode_ma(
    di: str,
    *,
    lot: str | None = None,
    serial: str | None = None,
    production: dt.date | None = None,
    expiry: dt.date | None = None,
) -> str:
    """Build an MA code UDI string (dates as YYMMDD)."""
    parts = [di]
    if lot:
        parts.append(f".L{lot}")
    if serial:
        parts.append(f".S{serial}")
    if production:
        parts.append(f".M{production:%y%m%d}")
    if expiry:
        parts.append(f".E{expiry:%y%m%d}")
    return "".join(parts)
