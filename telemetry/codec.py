"""Encode and decode wire payloads; every rejection carries a reason a person can read.

Decoding is strict where a wrong value would corrupt the record (types, finiteness,
units, time bounds, sequence range) and lenient where it costs nothing (unknown
fields are ignored). A batch whose envelope is sound but some items are not is split:
good items go on, each bad item is rejected on its own with its index.

The public decoders are the boundary between untrusted bytes and ingest: whatever the
bytes, they return or raise `DecodeError`, never anything else. Every msgspec call goes
through `_run`, which turns each way decoding can fail into a reason: malformed JSON,
a wrong field, invalid UTF-8 (msgspec raises ``UnicodeDecodeError`` for it, not its own
error) and nesting deeper than the interpreter's recursion limit (msgspec counts its C
recursion against ``sys.getrecursionlimit()`` and raises ``RecursionError``, so 1,000
nested brackets — 2 kB — are enough; see docs/wire-contract.md). Text that PostgreSQL
cannot store (NUL) is rejected here too, item by item, instead of failing a whole
database transaction later.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from telemetry.payloads import (
    UNITS,
    VERSION,
    Ack,
    GatewayId,
    GatewayState,
    Millis,
    Reading,
    ReadingBatch,
    ScanItem,
    Seq,
    StreamId,
    TagItem,
)

MAX_PAYLOAD_BYTES = 1_048_576
MAX_REASON_CHARS = 500  # a reason quoting a hostile value is cut to this
MAX_ITEMS = 10_000
MAX_FUTURE_MS = 10 * 60 * 1000  # device clocks ahead of ours by more than this are wrong
MIN_TIME_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: earlier means an unset device clock
ABSOLUTE_ZERO = -273.15

T = TypeVar("T")


class DecodeError(ValueError):
    """A whole payload was rejected; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RejectedItem:
    """One item of a batch that was rejected while the rest were accepted."""

    index: int
    seq: int
    reason: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """A batch after decoding: accepted readings with their seq, and rejected items."""

    gateway: str
    stream: str
    seq_first: int
    seq_last: int
    sent: int
    readings: list[tuple[int, Reading]]
    rejected: list[RejectedItem] = field(default_factory=list)


class _RawBatch(msgspec.Struct, frozen=True):
    """The envelope fully typed, the items left raw to be judged one by one."""

    v: int
    gateway: GatewayId
    stream: StreamId
    seq: tuple[Seq, Seq]
    sent: Millis
    items: list[msgspec.Raw]


class _Version(msgspec.Struct):
    v: int


_json_encoder = msgspec.json.Encoder()
_batch_decoder = msgspec.json.Decoder(ReadingBatch)
_raw_batch_decoder = msgspec.json.Decoder(_RawBatch)
_item_decoder = msgspec.json.Decoder(Reading)
_version_decoder = msgspec.json.Decoder(_Version)


def encode(payload: msgspec.Struct) -> bytes:
    """Serialise any wire payload to JSON bytes."""
    return _json_encoder.encode(payload)


def _check_size(data: bytes) -> None:
    if len(data) > MAX_PAYLOAD_BYTES:
        raise DecodeError(f"payload of {len(data)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}")


def _check_version(data: bytes) -> None:
    version = _run(_version_decoder, data).v
    if version != VERSION:
        raise DecodeError(f"unknown wire version {version}; this reader understands {VERSION}")


def clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` cut to ``limit`` characters (marked with an ellipsis) for a reason."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _run(decoder: msgspec.json.Decoder[T], data: bytes) -> T:
    """Decode untrusted bytes; every failure becomes a `DecodeError` with a readable reason."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as err:
        raise DecodeError(clip(f"invalid field: {err}")) from None
    except msgspec.DecodeError as err:
        raise DecodeError(clip(f"not valid JSON: {err}")) from None
    except UnicodeDecodeError as err:
        raise DecodeError(f"not valid UTF-8 in a string ({err.reason})") from None
    except RecursionError:
        raise DecodeError(
            f"JSON nested too deeply (more than about {sys.getrecursionlimit()} levels)"
        ) from None
    except MemoryError:
        raise DecodeError(f"payload of {len(data)} bytes needs too much memory to decode") from None
    except Exception as err:  # msgspec documents no other error; untrusted input must not crash
        raise DecodeError(clip(f"could not be decoded ({type(err).__name__}: {err})")) from None


def _has_nul(*texts: str | None) -> bool:
    return any(t is not None and "\x00" in t for t in texts)


def check_reading(  # noqa: PLR0911 - one return per rule reads best
    item: Reading, *, now_ms: int, max_future_ms: int = MAX_FUTURE_MS
) -> str | None:
    """Return why ``item`` is unacceptable, or None if it is fine."""
    if not (item.sensor.isascii() and item.sensor.isprintable()) or " " in item.sensor:
        return f"sensor id {item.sensor!r} must be printable ASCII without spaces"
    if not math.isfinite(item.value):
        return f"value of {item.sensor} is {item.value}, not a finite number"
    units = UNITS.get(item.qty)
    if units is None:
        return f"unknown quantity {item.qty!r}; known: {', '.join(sorted(UNITS))}"
    if item.unit not in units:
        return f"unit {item.unit!r} is not valid for {item.qty}; expected one of {sorted(units)}"
    if item.qty == "temperature" and item.value < ABSOLUTE_ZERO:
        return f"temperature {item.value} Cel is below absolute zero"
    if item.t > now_ms + max_future_ms:
        ahead = (item.t - now_ms) / 1000
        return (
            f"timestamp {item.t} is {ahead:.0f} s in the future (limit {max_future_ms // 1000} s)"
        )
    if item.t < MIN_TIME_MS:
        return f"timestamp {item.t} is before 2000-01-01; the device clock is probably unset"
    return None


def _check_envelope(seq: tuple[int, int], n_items: int) -> None:
    first, last = seq
    if last < first:
        raise DecodeError(f"sequence range [{first}, {last}] is reversed")
    if last - first + 1 != n_items:
        raise DecodeError(
            f"sequence range [{first}, {last}] covers {last - first + 1} items but the batch "
            f"has {n_items}"
        )
    if n_items == 0:
        raise DecodeError("batch has no items")
    if n_items > MAX_ITEMS:
        raise DecodeError(f"batch has {n_items} items, more than the limit of {MAX_ITEMS}")


def decode_batch(data: bytes, *, now_ms: int, max_future_ms: int = MAX_FUTURE_MS) -> DecodedBatch:
    """Decode a readings payload; raise `DecodeError` if the envelope is unusable."""
    _check_size(data)
    try:
        batch = _run(_batch_decoder, data)
    except DecodeError:  # find out which part is bad, and keep the good items
        return _decode_item_by_item(data, now_ms=now_ms, max_future_ms=max_future_ms)
    if batch.v != VERSION:
        raise DecodeError(f"unknown wire version {batch.v}; this reader understands {VERSION}")
    _check_envelope(batch.seq, len(batch.items))
    first = batch.seq[0]
    readings: list[tuple[int, Reading]] = []
    rejected: list[RejectedItem] = []
    for i, item in enumerate(batch.items):
        reason = check_reading(item, now_ms=now_ms, max_future_ms=max_future_ms)
        if reason is None:
            readings.append((first + i, item))
        else:
            rejected.append(RejectedItem(i, first + i, reason, _json_encoder.encode(item)))
    return DecodedBatch(
        batch.gateway, batch.stream, first, batch.seq[1], batch.sent, readings, rejected
    )


def _raw_envelope(data: bytes) -> _RawBatch:
    """The envelope checked, the items left raw; raise `DecodeError` if it is unusable."""
    _check_version(data)
    raw = _run(_raw_batch_decoder, data)
    _check_envelope(raw.seq, len(raw.items))
    return raw


def _judge_items(
    raw: _RawBatch,
    decoder: msgspec.json.Decoder[T],
    check: Callable[[T], str | None],
    *,
    label: bool,
) -> tuple[list[tuple[int, T]], list[RejectedItem]]:
    """Decode and check each item on its own: (accepted with seq, rejected with reason).

    ``label`` puts "item i: " before a failed check's reason as well as a decode error's.
    """
    first = raw.seq[0]
    accepted: list[tuple[int, T]] = []
    rejected: list[RejectedItem] = []
    for i, item_raw in enumerate(raw.items):
        raw_bytes = bytes(item_raw)
        try:
            item = _run(decoder, raw_bytes)
        except DecodeError as err:
            rejected.append(RejectedItem(i, first + i, f"item {i}: {err.reason}", raw_bytes))
            continue
        reason = check(item)
        if reason is None:
            accepted.append((first + i, item))
        else:
            text = f"item {i}: {reason}" if label else reason
            rejected.append(RejectedItem(i, first + i, text, raw_bytes))
    return accepted, rejected


def _decode_item_by_item(data: bytes, *, now_ms: int, max_future_ms: int) -> DecodedBatch:
    """Slow path: the batch did not decode whole, so find out which part is bad."""
    raw = _raw_envelope(data)
    readings, rejected = _judge_items(
        raw,
        _item_decoder,
        lambda r: check_reading(r, now_ms=now_ms, max_future_ms=max_future_ms),
        label=False,
    )
    return DecodedBatch(
        raw.gateway, raw.stream, raw.seq[0], raw.seq[1], raw.sent, readings, rejected
    )


def _decode(decoder: msgspec.json.Decoder[T], data: bytes) -> T:
    _check_size(data)
    _check_version(data)
    return _run(decoder, data)


_ack_decoder = msgspec.json.Decoder(Ack)
_state_decoder = msgspec.json.Decoder(GatewayState)
_any_decoder = msgspec.json.Decoder()
# \u0000 preceded by an even number of backslashes (an odd one would escape the first)
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def decode_ack(data: bytes) -> Ack:
    """Decode a committed-watermark message."""
    return _decode(_ack_decoder, data)


def decode_state(data: bytes) -> GatewayState:
    """Decode a gateway state (birth, death, periodic) message.

    Ingest stores a state message whole (``telemetry.gateways.state``, jsonb): unknown
    fields such as the gateway's alarm outputs are read from there. So the whole
    document is checked, not only the fields read here — msgspec skips unknown fields
    without checking their UTF-8 or numbers — and an escaped NUL, which jsonb refuses,
    is rejected.
    """
    _check_size(data)
    _check_version(data)
    _run(_any_decoder, data)
    if _ESCAPED_NUL.search(data):
        raise DecodeError("a string has a NUL character (\\u0000), which cannot be stored")
    return _run(_state_decoder, data)


# --- edge events: tags and scans ---

EventItem = TypeVar("EventItem", TagItem, ScanItem)


@dataclass(frozen=True, slots=True)
class DecodedEvents:
    """A tags or scans batch after decoding: accepted items with their seq, and rejected ones."""

    gateway: str
    stream: str
    seq_first: int
    seq_last: int
    sent: int
    items: list[tuple[int, TagItem | ScanItem]]
    rejected: list[RejectedItem] = field(default_factory=list)


def check_event(  # noqa: PLR0911 - one return per rule reads best
    item: TagItem | ScanItem, *, now_ms: int, max_future_ms: int
) -> str | None:
    """Return why a tag read or scan is unacceptable, or None if it is fine."""
    if item.t > now_ms + max_future_ms:
        return f"timestamp {item.t} is {(item.t - now_ms) / 1000:.0f} s in the future"
    if item.t < MIN_TIME_MS:
        return f"timestamp {item.t} is before 2000-01-01; the device clock is probably unset"
    if isinstance(item, ScanItem) and item.ok == (item.reason is not None):
        return "a scan must have a reason exactly when it is not ok"
    if isinstance(item, TagItem) and item.rssi is not None and not math.isfinite(item.rssi):
        return f"rssi {item.rssi} is not a finite number"
    texts: tuple[str | None, ...]
    if isinstance(item, TagItem):
        texts = (item.scheme, item.uri, item.gtin, item.serial, item.sscc)
    else:  # raw data and reason may quote a scanner's NUL (stripped when stored); codes may not
        texts = (item.scheme, item.di, item.gtin, item.sscc, item.lot, item.serial)
    if _has_nul(*texts):
        return "a text field has a NUL character, which cannot be stored"
    if isinstance(item, ScanItem):
        for name, value in (("expiry", item.expiry), ("production", item.production)):
            if value is not None and not _is_date(value):
                return f"{name} {value!r} is not a calendar date"
    return None


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return value.isascii()


_event_decoders: dict[type, msgspec.json.Decoder[Any]] = {
    TagItem: msgspec.json.Decoder(TagItem),
    ScanItem: msgspec.json.Decoder(ScanItem),
}


def _decode_events(
    data: bytes, item_type: type[EventItem], *, now_ms: int, max_future_ms: int
) -> DecodedEvents:
    _check_size(data)
    raw = _raw_envelope(data)
    decoder = _event_decoders[item_type]
    items, rejected = _judge_items(
        raw,
        decoder,
        lambda e: check_event(e, now_ms=now_ms, max_future_ms=max_future_ms),
        label=True,
    )
    return DecodedEvents(raw.gateway, raw.stream, raw.seq[0], raw.seq[1], raw.sent, items, rejected)


def decode_tags(data: bytes, *, now_ms: int, max_future_ms: int = MAX_FUTURE_MS) -> DecodedEvents:
    """Decode a tags payload; raise `DecodeError` if the envelope is unusable."""
    return _decode_events(data, TagItem, now_ms=now_ms, max_future_ms=max_future_ms)


def decode_scans(data: bytes, *, now_ms: int, max_future_ms: int = MAX_FUTURE_MS) -> DecodedEvents:
    """Decode a scans payload; raise `DecodeError` if the envelope is unusable."""
    return _decode_events(data, ScanItem, now_ms=now_ms, max_future_ms=max_future_ms)
