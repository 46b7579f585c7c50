"""Show a dead letter's raw bytes to a person: as text when they are text, else as hex (pure).

Payloads can be large (a whole batch), so only the first ``PREVIEW_BYTES`` are read
from the database and shown; the caller also passes the full size.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Literal

PREVIEW_BYTES = 2048
# Tab, newline and carriage return are text; other control characters mean binary.
_TEXT_CONTROLS = frozenset("\t\n\r")


@dataclass(frozen=True, slots=True)
class PayloadPreview:
    """The shown form of a payload and whether it was cut."""

    text: str
    encoding: Literal["utf-8", "hex"]
    truncated: bool


def preview_payload(head: bytes, *, size: int) -> PayloadPreview:
    """Preview a payload of ``size`` bytes from its first bytes ``head``."""
    head = head[:PREVIEW_BYTES]
    truncated = size > len(head)
    text = _as_text(head, complete=not truncated)
    if text is not None:
        return PayloadPreview(text=text, encoding="utf-8", truncated=truncated)
    return PayloadPreview(text=head.hex(" "), encoding="hex", truncated=truncated)


def _as_text(data: bytes, *, complete: bool) -> str | None:
    # A cut payload may end inside a multi-byte character: the incremental decoder
    # holds such a tail back instead of calling the whole payload invalid.
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(data, final=complete)
    except UnicodeDecodeError:
        return None
    if any((ch < " " and ch not in _TEXT_CONTROLS) or ch == "\x7f" for ch in text):
        return None
    return text
