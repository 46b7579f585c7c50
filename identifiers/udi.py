"""What a scanned medical-device label says, whatever scheme it was printed in.

The plant receives goods labelled under three UDI issuing agencies: GS1 (GS1-128,
GS1 DataMatrix), HIBCC (HIBC LIC) and, for devices made for China, the MA code
(IDcode). Each scheme has its own pure decoder module (`identifiers.gs1`,
`identifiers.hibc`, `identifiers.nmpa_udi`); this module holds the one result type they
share, the one error they raise, and `decode_label`, which picks the decoder from
the data itself. No I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum


class Scheme(StrEnum):
    """The issuing agency whose rules a label follows."""

    GS1 = "gs1"
    HIBC = "hibc"
    MA = "ma"


class BarcodeError(ValueError):
    """A scan that is not a valid label; ``reason`` says why in words a person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Label:
    """The identifiers read from one label; fields a label does not carry are None."""

    scheme: Scheme
    di: str | None = None  # device identifier: GTIN, HIBC LIC+PCN+U/M, or MA DI
    gtin: str | None = None
    sscc: str | None = None
    lot: str | None = None
    serial: str | None = None
    expiry: dt.date | None = None
    production: dt.date | None = None


# The most a scan can carry: a QR Code (version 40) holds 7,089 digits (ISO/IEC 18004),
# more than any other symbology a label uses. Longer input is not a scan, and refusing
# it bounds the time a decoder spends (biip's parser is quadratic in the input length).
MAX_LABEL_CHARS = 7089


def check_length(text: str) -> None:
    """Raise `BarcodeError` if ``text`` is longer than any barcode symbol can carry."""
    if len(text) > MAX_LABEL_CHARS:
        raise BarcodeError(
            f"{len(text)} characters is more than any barcode symbol carries ({MAX_LABEL_CHARS})"
        )


# ISO/IEC 15424 symbology identifier: "]" + symbology letter + modifier character
SYMBOLOGY_RE = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
GS1_SYMBOLOGIES = frozenset({"]C1", "]d2", "]Q3", "]e0", "]J1"})


def split_symbology(text: str) -> tuple[str | None, str]:
    """Split a leading symbology identifier (``]C1``, ``]d2`` …) from the data."""
    if SYMBOLOGY_RE.match(text):
        return text[:3], text[3:]
    return None, text


def decode_label(text: str) -> Label:
    """Decode one scan into a `Label`; raise `BarcodeError` with the reason if it is not one."""
    # local imports: each scheme module imports this one for Label and BarcodeError
    from identifiers import gs1, hibc, nmpa_udi  # noqa: PLC0415

    check_length(text)
    text = text.strip("\r\n")
    if not text:
        raise BarcodeError("empty scan")
    symbology, data = split_symbology(text)
    if data.startswith("+"):
        return hibc.parse_hibc(data)
    if data.startswith("MA."):
        return nmpa_udi.parse_ma(data)
    if symbology is None or symbology in GS1_SYMBOLOGIES or data[:1].isdigit():
        return gs1.parse_gs1(text)
    raise BarcodeError(f"symbology {symbology} carries no GS1, HIBC or MA data: {data[:40]!r}")
