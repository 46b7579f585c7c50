"""Tag reads as the gateway's RFID sources deliver them, and the collapse window.

Readers report a tag in the field many times a second; `collapse_reads` turns repeated
reads of one tag on one antenna within a window into one read. Both RFID sources (the
JSON stream, `gateway.sources.rfid`, and LLRP, `gateway.sources.llrp`) use it. The EPC
itself is decoded by `identifiers.epc`. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TagRead:
    """One report of a tag by a reader antenna."""

    t_ms: int
    reader: str
    antenna: int
    epc: str
    rssi: float | None = None


def collapse_reads(
    reads: Iterable[TagRead], *, window_ms: int, last_kept: dict[tuple[str, int, str], int]
) -> list[TagRead]:
    """Drop reads of a (reader, antenna, epc) within ``window_ms`` of the last one kept.

    ``last_kept`` is the caller's memory across calls, updated in place; a read that is
    kept starts a new window, so a tag lying on a shelf is reported once per window.
    """
    out: list[TagRead] = []
    for read in reads:
        key = (read.reader, read.antenna, read.epc)
        last = last_kept.get(key)
        if last is not None and 0 <= read.t_ms - last < window_ms:
            continue
        last_kept[key] = read.t_ms
        out.append(read)
    return out


def collapse_and_forget(
    reads: Sequence[TagRead], *, window_ms: int, last_kept: dict[tuple[str, int, str], int]
) -> list[TagRead]:
    """`collapse_reads`, then forget tags not seen for a while so memory stays bounded.

    "A while" is measured on the reader's own time axis (the newest read), never the
    gateway's clock: a reader whose clock is off would otherwise have every entry
    forgotten at once, and its repeats would no longer be collapsed.
    """
    kept = collapse_reads(reads, window_ms=window_ms, last_kept=last_kept)
    newest = max((r.t_ms for r in reads), default=None)
    if newest is not None:
        horizon = newest - 2 * window_ms - 60_000
        for key in [k for k, t in last_kept.items() if t < horizon]:
            del last_kept[key]
    return kept
