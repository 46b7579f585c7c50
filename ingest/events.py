"""Tags and scans: decode their messages into a plan, and store them (idempotently).

Readings have their own fast path (COPY into a staging table); RFID tag reads and
barcode scans are far fewer, so they are inserted with ``executemany`` and
``ON CONFLICT (gateway_id, stream, seq) DO NOTHING`` — the gateway's outbox position
is unique for ever, which makes re-delivery harmless. Sequence ranges (rejected
items included) go into the plan like those of readings, so the committed watermark
of a tags or scans stream moves in the same transaction as its rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from telemetry.codec import (
    DecodedEvents,
    DecodeError,
    RejectedItem,
    decode_scans,
    decode_tags,
)
from telemetry.payloads import ScanItem, TagItem
from telemetry.topics import Kind, Topic

EVENT_KINDS = frozenset({Kind.TAGS, Kind.SCANS})


@dataclass
class EdgeEvents:
    """Tag reads and scans, each with its gateway stream position."""

    tags: list[tuple[str, str, int, TagItem]] = field(default_factory=list)
    scans: list[tuple[str, str, int, ScanItem]] = field(default_factory=list)

    def clear(self) -> None:
        """Forget everything (the plan is being replaced by dead letters)."""
        self.tags.clear()
        self.scans.clear()

    def extend(self, other: EdgeEvents) -> None:
        """Add ``other``'s tag reads and scans."""
        self.tags.extend(other.tags)
        self.scans.extend(other.scans)


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What one tags/scans message adds to a plan: accepted items, a seq range, rejects."""

    events: EdgeEvents
    stream: str
    seq_range: tuple[int, int]
    rejected: list[RejectedItem] = field(default_factory=list)


def decode_events(topic: Topic, payload: bytes, *, now_ms: int, max_future_ms: int) -> EventOutcome:
    """Decode one tags/scans message (pure); raise `DecodeError` if it is rejected whole."""
    decode = decode_tags if topic.kind is Kind.TAGS else decode_scans
    batch: DecodedEvents = decode(payload, now_ms=now_ms, max_future_ms=max_future_ms)
    if batch.gateway != topic.gateway:
        raise DecodeError(
            f"payload gateway {batch.gateway!r} does not match topic gateway {topic.gateway!r}"
        )
    events = EdgeEvents()
    for seq, item in batch.items:
        if isinstance(item, TagItem):
            events.tags.append((batch.gateway, batch.stream, seq, item))
        else:
            events.scans.append((batch.gateway, batch.stream, seq, item))
    return EventOutcome(
        events, batch.stream, (batch.seq_first, batch.seq_last), list(batch.rejected)
    )


_TAG_SQL = """
INSERT INTO telemetry.tag_reads
    (time, gateway_id, stream, seq, reader, antenna, epc, rssi, scheme, uri, gtin, serial, sscc)
VALUES (timestamptz 'epoch' + %s * interval '1 millisecond',
        %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (gateway_id, stream, seq) DO NOTHING
"""
_SCAN_SQL = """
INSERT INTO telemetry.scans
    (time, gateway_id, stream, seq, scanner, data, ok, reason, scheme, di, gtin, sscc, lot,
     serial, expiry, production)
VALUES (timestamptz 'epoch' + %s * interval '1 millisecond',
        %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::date, %s::date)
ON CONFLICT (gateway_id, stream, seq) DO NOTHING
"""


def store_events(conn: psycopg.Connection, events: EdgeEvents) -> int:
    """Insert the plan's tag reads and scans in the caller's transaction; return rows added."""
    added = 0
    with conn.cursor() as cur:
        if events.tags:
            cur.executemany(
                _TAG_SQL,
                [
                    (
                        *(
                            t.t,
                            gw,
                            stream,
                            seq,
                            t.reader,
                            t.antenna,
                            t.epc,
                            t.rssi,
                            t.scheme,
                            t.uri,
                        ),
                        *(t.gtin, t.serial, t.sscc),
                    )
                    for gw, stream, seq, t in events.tags
                ],
            )
            added += cur.rowcount
        if events.scans:
            cur.executemany(
                _SCAN_SQL,
                [
                    (
                        *(
                            s.t,
                            gw,
                            stream,
                            seq,
                            s.scanner,
                            s.data.replace("\x00", ""),
                            s.ok,
                            None if s.reason is None else s.reason.replace("\x00", ""),
                        ),
                        *(s.scheme, s.di, s.gtin, s.sscc, s.lot, s.serial, s.expiry, s.production),
                    )
                    for gw, stream, seq, s in events.scans
                ],
            )
            added += cur.rowcount
    return added
