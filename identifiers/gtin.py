"""GTIN identity: the GS1 check digit, and GTIN-14 as the one form a GTIN is kept in.

Every GS1 identification key (GTIN, SSCC, GLN) ends in a mod-10 check digit: the digits
before it weighted 3, 1, 3, … from the right (GS1 General Specifications §7.9.1). A trade
item's GTIN is written as GTIN-8, -12, -13 or -14; these are one number, right-justified
in a 14-digit field with leading zeros (General Specifications Figure 3.3.2-1, the format
of AI (01)), so UPC-A ``036000291452``, EAN-13 ``0036000291452`` and GTIN-14
``00036000291452`` name one product. ColdTrace stores, compares and shows a GTIN only
in that 14-digit form (`to_gtin14`); the database refuses any other (migration 0021).

Why in ``identifiers`` and not in ``coldchain``: the gateway (EPC decoding), the
simulator (its labels), ingest and the ERP all need these rules, and the gateway and the
simulator may not import ``coldchain`` (docs/identifiers.md). This module imports nothing
but the standard library (the GS1 parser, ``identifiers.gs1``, needs biip; this does not).
The database holds the same check-digit rule in SQL for its CHECK constraints
(``erp.gtin_valid``); a test keeps the two equal.
"""

from __future__ import annotations

GTIN_LENGTHS = (8, 12, 13, 14)
GTIN14 = 14
_SHOWN = 24  # characters of a refused value quoted in an error


class GtinError(ValueError):
    """Text that is not a GTIN-8/12/13/14 with a valid check digit; ``reason`` says why."""

    def __init__(self, text: str, reason: str) -> None:
        shown = text[:_SHOWN] + ("…" if len(text) > _SHOWN else "")
        super().__init__(f"{shown!r} is not a GTIN: {reason}")
        self.text = text
        self.reason = reason


def _ascii_digits(text: str) -> bool:
    # str.isdigit alone takes '٠' (Arabic-Indic zero) or '３' (full-width) for a digit
    return text.isascii() and text.isdigit()


def check_digit(body: str) -> int:
    """The GS1 check digit of ``body``, a key without its check digit (ValueError if not digits)."""
    if not _ascii_digits(body):
        msg = f"a GS1 key is made of the digits 0-9, not {body[:_SHOWN]!r}"
        raise ValueError(msg)
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def with_check_digit(body: str) -> str:
    """``body`` followed by its GS1 check digit (a GTIN, SSCC or GLN from its other digits)."""
    return body + str(check_digit(body))


def to_gtin14(text: str) -> str:
    """The GTIN-14 form of a GTIN-8/12/13/14 (leading zeros added); GtinError if it is none.

    The check digit is verified, never recomputed: a mistyped GTIN is refused, not
    silently turned into another product's.
    """
    if not text:
        raise GtinError(text, "it is empty")
    if not _ascii_digits(text):
        raise GtinError(text, "a GTIN is made of the digits 0-9 only")
    if len(text) not in GTIN_LENGTHS:
        raise GtinError(text, f"it has {len(text)} digits; a GTIN has 8, 12, 13 or 14")
    expected = check_digit(text[:-1])
    if int(text[-1]) != expected:
        raise GtinError(text, f"its check digit is {text[-1]}, the GS1 check digit is {expected}")
    return text.rjust(GTIN14, "0")


def is_valid_gtin(text: str) -> bool:
    """True for a GTIN-8/12/13/14 (ASCII digits) whose last digit is the right check digit."""
    try:
        to_gtin14(text)
    except GtinError:
        return False
    return True


def is_gtin14(text: str) -> bool:
    """True for the stored form: 14 digits with a valid check digit."""
    return len(text) == GTIN14 and is_valid_gtin(text)
