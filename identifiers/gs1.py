"""GS1 element strings (GS1-128, GS1 DataMatrix) to GTIN, lot, expiry, serial and SSCC.

Parsing the AI grammar (fixed and variable lengths, FNC1 as ASCII GS, symbology
identifiers ``]C1``/``]d2``, the DD=00 "last day of the month" rule of AI 17, check
digits) is left to biip, a maintained pure-Python library; this module only maps its
result onto `Label` and turns every biip complaint into a `BarcodeError`. The encoder
exists for round-trip tests and for the simulated scanner. No I/O. The GS1 check digit
and the GTIN-14 form belong to `identifiers.gtin`; a `Label`'s GTIN is always the
14-digit form, as AI (01) carries it.
"""

from __future__ import annotations

import datetime as dt
import re

import biip
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message

from identifiers.udi import BarcodeError, Label, Scheme, check_length

GS = "\x1d"  # FNC1 in the data stream, as scanners transmit it
# Blanks around the brackets of the human-readable form, "(01) 0950… (10) L-7": no AI's
# characters include a blank (GS1 character sets 82, 39, 64), so they are layout only.
_HRI_BLANKS = re.compile(r"\s*([()])\s*")


def _value(strings: dict[str, GS1ElementString], ai: str) -> str | None:
    es = strings.get(ai)
    return es.value if es is not None else None


def _date(strings: dict[str, GS1ElementString], ai: str) -> dt.date | None:
    es = strings.get(ai)
    return es.date if es is not None else None


def parse_gs1(text: str) -> Label:
    """Parse a GS1 element string (with or without symbology identifier); raise `BarcodeError`."""
    check_length(text)
    data = text.strip("\r\n")
    if not data.isascii():
        # GS1 element strings are ASCII (the AI encodable character sets); biip would
        # take a non-ASCII digit such as Arabic-Indic '٠' or full-width '０' for a digit
        bad = next(c for c in data if not c.isascii())
        raise BarcodeError(f"not a GS1 label: character {bad!r} is not ASCII")
    if data.lstrip().startswith("("):
        return parse_gs1_hri(data)
    try:
        result = biip.parse(data)
    except biip.ParseError as err:
        raise BarcodeError(f"not a GS1 label: {err}") from None
    except Exception as err:  # biip fails on some malformed input with IndexError, ValueError
        raise BarcodeError(f"not a GS1 label: unreadable ({type(err).__name__})") from None
    return _label(result)


def parse_gs1_hri(text: str) -> Label:
    """Parse the human-readable form, ``(01)04006381333931(10)ABC(17)280101``.

    What is printed under a barcode, and what people type or paste from a document:
    each AI in brackets, so no FNC1 is needed; blanks around the brackets are ignored.
    """
    check_length(text)
    data = _HRI_BLANKS.sub(r"\1", text.strip())
    if not data.isascii():
        bad = next(c for c in data if not c.isascii())
        raise BarcodeError(f"not a GS1 label: character {bad!r} is not ASCII")
    try:
        message = GS1Message.parse_hri(data)
    except biip.ParseError as err:
        raise BarcodeError(f"not a GS1 label: {err}") from None
    except Exception as err:  # as parse_gs1: biip's other complaints on malformed input
        raise BarcodeError(f"not a GS1 label: unreadable ({type(err).__name__})") from None
    return _from_message(message)


def _strings(message: GS1Message | None) -> dict[str, GS1ElementString]:
    strings: dict[str, GS1ElementString] = {}
    for es in message.element_strings if message is not None else ():
        if es.ai.ai in strings:
            raise BarcodeError(f"AI ({es.ai.ai}) appears twice")
        for error in (es.gtin_error, es.sscc_error):
            if error:
                raise BarcodeError(f"AI ({es.ai.ai}): {error}")
        strings[es.ai.ai] = es
    return strings


def _from_message(message: GS1Message) -> Label:
    strings = _strings(message)
    if _value(strings, "01") is None and _value(strings, "00") is None:
        raise BarcodeError("GS1 label has neither a GTIN (AI 01) nor an SSCC (AI 00)")
    return _element_label(strings)


def _label(result: biip.ParseResult) -> Label:
    message = result.gs1_message
    strings = _strings(message)
    gtin = _value(strings, "01")
    sscc = _value(strings, "00")
    if gtin is None and sscc is None:
        if result.gtin is not None:  # a plain EAN-13/UPC-A/ITF-14: the GTIN alone
            plain = result.gtin.as_gtin_14()
            return Label(scheme=Scheme.GS1, di=plain, gtin=plain)
        if result.gtin_error:
            raise BarcodeError(f"not a GS1 label: {result.gtin_error}")
        if message is None:
            reason = result.gs1_message_error or "not a GS1 element string"
            raise BarcodeError(f"not a GS1 label: {reason}")
        raise BarcodeError("GS1 label has neither a GTIN (AI 01) nor an SSCC (AI 00)")
    return _element_label(strings)


def _element_label(strings: dict[str, GS1ElementString]) -> Label:
    gtin = _value(strings, "01")
    return Label(
        scheme=Scheme.GS1,
        di=gtin,
        gtin=gtin,
        sscc=_value(strings, "00"),
        lot=_value(strings, "10"),
        serial=_value(strings, "21"),
        expiry=_date(strings, "17"),
        production=_date(strings, "11"),
    )


def encode_gs1_hri(
    *, gtin: str, lot: str | None = None, expiry: str | None = None, serial: str | None = None
) -> str:
    """The human-readable form of the same label: each AI in brackets, no FNC1."""
    parts = [("01", gtin), ("10", lot), ("17", expiry), ("21", serial)]
    return "".join(f"({ai}){value}" for ai, value in parts if value)


def encode_gs1(
    *,
    gtin: str,
    lot: str | None = None,
    expiry: str | None = None,
    serial: str | None = None,
    symbology: str = "]d2",
) -> str:
    """Build an element string: fixed-length AIs first, variable ones separated by GS."""
    fixed = f"01{gtin}" + (f"17{expiry}" if expiry is not None else "")
    variable = [f"10{lot}" if lot is not None else None, f"21{serial}" if serial else None]
    return symbology + fixed + GS.join(v for v in variable if v is not None)
