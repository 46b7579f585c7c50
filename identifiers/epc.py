"""EPC binary encodings (GS1 EPC Tag Data Standard) to GTIN + serial and SSCC.

RFID readers report the EPC memory bank as hex. SGTIN-96 (header 0x30) and SSCC-96
(header 0x31) are decoded bit for bit per the TDS: 8-bit header, 3-bit filter, 3-bit
partition that splits the next bits between the GS1 company prefix and the item
reference (or serial reference), then a 38-bit serial (SGTIN) or 24 reserved bits
(SSCC). Other headers are returned undecoded: the raw EPC is still a valid tag read.
No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from identifiers.gtin import with_check_digit

SGTIN96_HEADER = 0x30
SSCC96_HEADER = 0x31
# partition -> (company prefix bits, digits); the rest of the 44 (SGTIN) / 58 (SSCC)
# bits and of the 13 / 17 digits belong to the item reference / serial reference
_COMPANY = {0: (40, 12), 1: (37, 11), 2: (34, 10), 3: (30, 9), 4: (27, 8), 5: (24, 7), 6: (20, 6)}
_HEX_RE = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
# A Gen2 tag's EPC is at most 31 words (the 5-bit length field of its PC word): 496 bits
MAX_EPC_HEX = 124


class EpcError(ValueError):
    """An EPC that is not valid hex or breaks its scheme's rules; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Epc:
    """A decoded EPC; ``scheme`` is None for encodings this module does not decode."""

    hex: str
    scheme: str | None = None  # "sgtin-96" | "sscc-96"
    uri: str | None = None  # pure identity URI, urn:epc:id:…
    filter: int | None = None
    gtin: str | None = None
    serial: str | None = None
    sscc: str | None = None


def _split(value: int, total_bits: int, partition: int, total_digits: int) -> tuple[str, str]:
    if partition not in _COMPANY:
        raise EpcError(f"partition value {partition} is reserved (must be 0-6)")
    cp_bits, cp_digits = _COMPANY[partition]
    ref_bits, ref_digits = total_bits - cp_bits, total_digits - cp_digits
    company, reference = value >> ref_bits, value & ((1 << ref_bits) - 1)
    if company >= 10**cp_digits or reference >= 10**ref_digits:
        raise EpcError(
            f"company prefix {company} or reference {reference} does not fit partition {partition}"
        )
    return f"{company:0{cp_digits}d}", f"{reference:0{ref_digits}d}"


def epc_hex(hex_text: str) -> str:
    """The EPC of a tag read as upper-case hex; raise `EpcError` if it names no tag.

    It must be hex of whole bytes, at most 496 bits, and 96 bits if its header says
    SGTIN-96 or SSCC-96. A 96-bit EPC whose fields break its scheme's rules (partition
    7, SSCC reserved bits set) is still a read of that tag: it is returned, and
    `decode_epc` then refuses to decode it.
    """
    text = hex_text.strip()
    if len(text) > MAX_EPC_HEX:
        raise EpcError(f"EPC of {len(text)} hex digits is longer than a tag holds ({MAX_EPC_HEX})")
    if not _HEX_RE.match(text):
        raise EpcError(f"EPC {text[:40]!r} is not an even number of hex digits")
    header, bits = int(text[:2], 16), len(text) * 4
    if header in (SGTIN96_HEADER, SSCC96_HEADER) and bits != 96:
        raise EpcError(f"header {header:#04x} needs a 96-bit EPC, got {bits} bits")
    return text.upper()


def decode_epc(hex_text: str) -> Epc:
    """Decode an EPC given as hex; raise `EpcError` for bad hex or a broken SGTIN/SSCC."""
    text = epc_hex(hex_text)
    value, bits = int(text, 16), len(text) * 4
    header = value >> (bits - 8)
    if header not in (SGTIN96_HEADER, SSCC96_HEADER):
        return Epc(hex=text)
    filt, partition = (value >> 85) & 0x7, (value >> 82) & 0x7
    if header == SGTIN96_HEADER:
        company, item = _split((value >> 38) & ((1 << 44) - 1), 44, partition, 13)
        serial = value & ((1 << 38) - 1)
        digits = item[0] + company + item[1:]
        gtin = with_check_digit(digits)
        uri = f"urn:epc:id:sgtin:{company}.{item}.{serial}"
        return Epc(text, "sgtin-96", uri, filt, gtin=gtin, serial=str(serial))
    if value & 0xFFFFFF:
        raise EpcError("SSCC-96 reserved bits (the last 24) are not zero")
    company, ref = _split((value >> 24) & ((1 << 58) - 1), 58, partition, 17)
    digits = ref[0] + company + ref[1:]
    sscc = with_check_digit(digits)
    return Epc(text, "sscc-96", f"urn:epc:id:sscc:{company}.{ref}", filt, sscc=sscc)


def encode_sgtin96(company: str, item: str, serial: int, *, filter_value: int = 1) -> str:
    """Encode an SGTIN-96 EPC as hex (``item`` includes the indicator digit)."""
    partition = next(p for p, (_, digits) in _COMPANY.items() if digits == len(company))
    cp_bits = _COMPANY[partition][0]
    value = (SGTIN96_HEADER << 88) | (filter_value << 85) | (partition << 82)
    value |= (int(company) << (82 - cp_bits)) | (int(item) << 38) | serial
    return f"{value:024X}"


def encode_sscc96(company: str, reference: str, *, filter_value: int = 2) -> str:
    """Encode an SSCC-96 EPC as hex (``reference`` includes the extension digit)."""
    partition = next(p for p, (_, digits) in _COMPANY.items() if digits == len(company))
    cp_bits = _COMPANY[partition][0]
    value = (SSCC96_HEADER << 88) | (filter_value << 85) | (partition << 82)
    value |= (int(company) << (82 - cp_bits)) | (int(reference) << 24)
    return f"{value:024X}"
