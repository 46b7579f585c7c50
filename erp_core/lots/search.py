"""What the lots list's search box was given: part of a lot number, a GTIN, or a scan (pure).

A warehouse user pastes whatever the scanner typed: a GS1 DataMatrix/GS1-128 string
(``(01)09506000134352(10)L-7`` or with FNC1 separators), a HIBC label, or just a lot
number or GTIN typed by hand. A scan is decoded with the parser the gateway uses
(``identifiers.udi.decode_label``), so the page finds exactly the lot on the label.
"""

from __future__ import annotations

from dataclasses import dataclass

from identifiers.gtin import is_valid_gtin, to_gtin14
from identifiers.udi import BarcodeError, decode_label


@dataclass(frozen=True, slots=True)
class LotSearch:
    """Conditions on the lots: each one given must hold."""

    number_part: str | None = None  # part of the lot number, any case
    number: str | None = None  # the whole lot number, from a label
    gtin: str | None = None  # GTIN-14
    scheme: str | None = None  # the label's scheme when the text was a scan


def parse_search(text: str) -> LotSearch | None:
    """The search for ``text``; None for an empty box."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit() and is_valid_gtin(text):
        return LotSearch(gtin=to_gtin14(text))
    if _looks_scanned(text):
        try:
            label = decode_label(text)
        except BarcodeError:
            pass
        else:
            if label.lot or label.gtin:
                gtin = to_gtin14(label.gtin) if label.gtin else None
                return LotSearch(number=label.lot, gtin=gtin, scheme=str(label.scheme))
    return LotSearch(number_part=text)


def _looks_scanned(text: str) -> bool:
    """A symbology identifier, an AI in brackets, FNC1, HIBC's ``+``, or digits with AI 01."""
    return (
        text.startswith(("]", "+", "(", "MA."))
        or "\x1d" in text
        or (text[:2] == "01" and len(text) > 16 and text[2:16].isdigit())
    )
