"""The outbox's sequence streams as the publisher sees them: readings, tags and scans.

Each kind of item is its own stream in the outbox (its own random id, seqs contiguous
from 1) and ingest acks each stream's committed watermark on its own retained topic
``ct/v1/{site}/{gw}/ack/{stream}``. `OutboxStream` gives the publisher one shape for
all three: the go-back-N window, the next batch to publish as wire bytes, and the
coalesced delete of what ingest committed. The publisher then runs one connection,
one last will and one ack subscription for every stream of the gateway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from gateway.errors import OutboxError
from gateway.flow import SendWindow
from gateway.outbox import Outbox
from telemetry.codec import encode
from telemetry.payloads import (
    VERSION,
    Reading,
    ReadingBatch,
    ScanBatch,
    ScanItem,
    TagBatch,
    TagItem,
)
from telemetry.topics import Kind

STREAM_KINDS = (Kind.READINGS, Kind.TAGS, Kind.SCANS)
CONFIRM_EVERY = 5_000  # items acked before the outbox deletes them at the latest
CONFIRM_AFTER_S = 1.0  # or this long after the last delete

_tag_decoder = msgspec.json.Decoder(TagItem)
_scan_decoder = msgspec.json.Decoder(ScanItem)


def _check_contiguous(kind: Kind, seqs: Sequence[int]) -> None:
    first = seqs[0]
    for offset, seq in enumerate(seqs):
        if seq != first + offset:
            raise ValueError(
                f"outbox {kind} rows are not contiguous: seq {seq} after {first + offset - 1}"
            )


def build_batch(
    rows: Sequence[tuple[int, Reading]], *, gateway: str, stream: str, sent_ms: int
) -> ReadingBatch:
    """Build a batch of contiguous outbox rows; raise ValueError on a gap."""
    _check_contiguous(Kind.READINGS, [seq for seq, _ in rows])
    seq = (rows[0][0], rows[-1][0])
    return ReadingBatch(VERSION, gateway, stream, seq, sent_ms, [r for _, r in rows])


def build_event_batch(
    kind: Kind, rows: Sequence[tuple[int, bytes]], *, gateway: str, stream: str, sent_ms: int
) -> TagBatch | ScanBatch:
    """Build a batch of contiguous outbox rows of ``kind``; raise ValueError on a gap."""
    _check_contiguous(kind, [seq for seq, _ in rows])
    seq = (rows[0][0], rows[-1][0])
    if kind == Kind.TAGS:
        return TagBatch(
            VERSION, gateway, stream, seq, sent_ms, [_tag_decoder.decode(i) for _, i in rows]
        )
    scans = [_scan_decoder.decode(item) for _, item in rows]
    return ScanBatch(VERSION, gateway, stream, seq, sent_ms, scans)


@dataclass
class OutboxStream:
    """One kind's stream of the outbox: its id, send window and pending deletes."""

    outbox: Outbox
    kind: Kind
    id: str
    window: SendWindow
    confirmed: int  # deleted from the outbox up to here
    last_confirm: float  # monotonic time of the last delete

    @classmethod
    def open(
        cls, outbox: Outbox, kind: Kind, *, resend_after_s: float, max_unconfirmed: int, now: float
    ) -> OutboxStream:
        """Open ``kind``'s stream (created on first use); the window starts at its oldest item."""
        if kind == Kind.READINGS:
            stream, first = outbox.stream, outbox.first_seq()
        else:
            stream, first = outbox.event_stream(kind), outbox.event_first_seq(kind)
        window = SendWindow.starting_at(
            first, resend_after_s=resend_after_s, max_unconfirmed=max_unconfirmed
        )
        return cls(outbox, kind, stream, window, window.committed, now)

    def restart(self, now: float) -> OutboxStream:
        """The same kind's stream under a new id, its held items renumbered from 1 (nothing lost).

        What ingest already committed is deleted first; the rest is sent again under the
        new id, whose watermark ingest starts from zero.
        """
        self.confirm(now, force=True)
        if self.kind == Kind.READINGS:
            self.outbox.restart_stream()
        else:
            self.outbox.restart_event_stream(self.kind)
        window = self.window
        return OutboxStream.open(
            self.outbox,
            self.kind,
            resend_after_s=window.resend_after_s,
            max_unconfirmed=window.max_unconfirmed,
            now=now,
        )

    def last_seq(self) -> int:
        """The highest seq ever assigned in this stream (0 if none)."""
        if self.kind == Kind.READINGS:
            return self.outbox.last_seq()
        return self.outbox.event_last_seq(self.kind)

    def next_batch(self, limit: int, *, gateway: str, sent_ms: int) -> tuple[bytes, int] | None:
        """Encode up to ``limit`` items from the window's next seq; return (payload, last seq)."""
        seq = self.window.next_seq
        limit = min(limit, self.window.room())
        if limit <= 0:
            return None
        batch = self._read(seq, limit, gateway=gateway, sent_ms=sent_ms)
        if batch is None:
            return None
        if batch.seq[0] != seq:
            raise OutboxError(
                self.outbox.path,
                f"read {self.kind}",
                f"seq {seq} is missing (the oldest held is {batch.seq[0]})",
            )
        return encode(batch), batch.seq[1]

    def _read(
        self, seq: int, limit: int, *, gateway: str, sent_ms: int
    ) -> ReadingBatch | TagBatch | ScanBatch | None:
        if self.kind == Kind.READINGS:
            readings = self.outbox.read_from(seq, limit)
            if not readings:
                return None
            return build_batch(readings, gateway=gateway, stream=self.id, sent_ms=sent_ms)
        events = self.outbox.read_events(self.kind, seq, limit)
        if not events:
            return None
        return build_event_batch(
            self.kind, events, gateway=gateway, stream=self.id, sent_ms=sent_ms
        )

    def confirm(self, now: float, *, force: bool) -> int:
        """Delete what ingest committed, coalesced unless ``force``; return how many."""
        committed = self.window.committed
        pending = committed - self.confirmed
        if pending <= 0:
            return 0
        if not force and pending < CONFIRM_EVERY and now - self.last_confirm < CONFIRM_AFTER_S:
            return 0
        if self.kind == Kind.READINGS:
            deleted = self.outbox.confirm(committed)
        else:
            deleted = self.outbox.confirm_events(self.kind, committed)
        self.confirmed, self.last_confirm = committed, now
        return deleted
