"""Pure: turn received messages into what one database transaction must write.

A plan holds the accepted readings, the dead letters (whole messages or single items,
each with its reason and raw bytes) and, per gateway stream, the sequence ranges the
transaction accounts for — rejected items included, so the watermark never waits for
data that will never be stored.

No message can stop the worker. `decode_message` decodes one message completely before
anything of it enters the plan; the codec raises nothing but `DecodeError` for any bytes
(tests/unit/test_codec_fuzz.py), and that becomes a dead letter with its reason. Should
anything else escape — a bug of ours, not the input's fault — `Plan.add` catches it
once, logs it with its traceback and dead-letters the message too: a message that
crashed the worker would be re-delivered to every worker after every restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from ingest.dead_letters import DeadLetter
from ingest.events import EVENT_KINDS, EdgeEvents, decode_events
from telemetry.codec import DecodeError, clip, decode_batch, decode_state
from telemetry.payloads import GatewayState, Reading
from telemetry.topics import Kind, Topic, TopicError

log = logging.getLogger(__name__)

__all__ = ["DeadLetter", "Decoded", "Plan", "Received", "StreamKey", "decode_message"]


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message as the consumer handed it over."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # the receiving connection's number, unique in the process


@dataclass(frozen=True, slots=True)
class StreamKey:
    """A gateway's outbox stream, addressed by site for the ack topic."""

    site: str
    gateway: str
    stream: str


@dataclass
class Decoded:
    """What one message adds to a plan."""

    topic: Topic | None = None
    readings: list[tuple[str, int, Reading]] = field(default_factory=list)
    events: EdgeEvents = field(default_factory=EdgeEvents)
    seq_range: tuple[StreamKey, tuple[int, int]] | None = None
    state: GatewayState | None = None
    raw_state: bytes = b""  # stored whole: checked whole by decode_state
    dead_letters: list[DeadLetter] = field(default_factory=list)


def decode_message(msg: Received, *, now_ms: int, max_future_ms: int) -> Decoded:
    """Decode one message; bad input becomes dead letters, never an exception."""
    try:
        topic = Topic.parse(msg.topic)
    except TopicError as err:
        return Decoded(dead_letters=[DeadLetter(msg.topic, str(err), msg.payload)])
    try:
        if topic.kind is Kind.READINGS:
            return _readings(topic, msg, now_ms=now_ms, max_future_ms=max_future_ms)
        if topic.kind in EVENT_KINDS:
            return _events(topic, msg, now_ms=now_ms, max_future_ms=max_future_ms)
        if topic.kind is Kind.STATE:
            return _state(topic, msg)
    except DecodeError as err:
        reason = f"invalid state message: {err.reason}" if topic.kind is Kind.STATE else err.reason
        return Decoded(
            topic, dead_letters=[DeadLetter(msg.topic, reason, msg.payload, topic.gateway)]
        )
    reason = f"ingest does not store {topic.kind} messages yet"
    return Decoded(topic, dead_letters=[DeadLetter(msg.topic, reason, msg.payload, topic.gateway)])


def _state(topic: Topic, msg: Received) -> Decoded:
    state = decode_state(msg.payload)
    if state.gateway != topic.gateway:  # a state for another gateway is never applied
        raise DecodeError(
            f"state payload gateway {state.gateway!r} does not match topic gateway "
            f"{topic.gateway!r}"
        )
    return Decoded(topic, state=state, raw_state=msg.payload)


def _readings(topic: Topic, msg: Received, *, now_ms: int, max_future_ms: int) -> Decoded:
    batch = decode_batch(msg.payload, now_ms=now_ms, max_future_ms=max_future_ms)
    if batch.gateway != topic.gateway:
        raise DecodeError(
            f"payload gateway {batch.gateway!r} does not match topic gateway {topic.gateway!r}"
        )
    gw = batch.gateway
    return Decoded(
        topic,
        readings=[(gw, seq, r) for seq, r in batch.readings],
        seq_range=(StreamKey(topic.site, gw, batch.stream), (batch.seq_first, batch.seq_last)),
        dead_letters=[
            DeadLetter(msg.topic, rej.reason, rej.raw, gw, batch.stream, rej.seq, rej.index)
            for rej in batch.rejected
        ],
    )


def _events(topic: Topic, msg: Received, *, now_ms: int, max_future_ms: int) -> Decoded:
    out = decode_events(topic, msg.payload, now_ms=now_ms, max_future_ms=max_future_ms)
    return Decoded(
        topic,
        events=out.events,
        seq_range=(StreamKey(topic.site, topic.gateway, out.stream), out.seq_range),
        dead_letters=[
            DeadLetter(msg.topic, r.reason, r.raw, topic.gateway, out.stream, r.seq, r.index)
            for r in out.rejected
        ],
    )


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Coalesce overlapping and adjacent seq ranges, in order.

    A batch may hold the same message twice (a gateway's re-send next to the original;
    a broker re-delivering while connected, as NATS does after its ack wait), and
    ``telemetry.commit_seq_ranges`` upserts each start once per call: the same start
    twice made PostgreSQL reject the whole batch ("ON CONFLICT DO UPDATE command cannot
    affect row a second time"), which the worker then wrote message by message.
    """
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


@dataclass
class Plan:
    """Everything one flush writes, in one transaction."""

    readings: list[tuple[str, int, Reading]] = field(default_factory=list)  # (gateway, seq, r)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    ranges: dict[StreamKey, list[tuple[int, int]]] = field(default_factory=dict)
    gateways: dict[str, str] = field(default_factory=dict)  # gateway -> site
    states: list[tuple[Topic, GatewayState, bytes]] = field(default_factory=list)  # + raw
    events: EdgeEvents = field(default_factory=EdgeEvents)  # tags and scans
    messages: int = 0

    def add(self, msg: Received, *, now_ms: int, max_future_ms: int) -> None:
        """Decode one message into the plan; never raises."""
        self.messages += 1
        try:
            part = decode_message(msg, now_ms=now_ms, max_future_ms=max_future_ms)
        except Exception as err:  # our bug, not the input's: see the module docstring
            log.exception(
                "decoding a message on %s failed; dead-lettering it", clip(msg.topic, 200)
            )
            reason = clip(f"ingest failed to decode it ({type(err).__name__}: {err})")
            part = Decoded(dead_letters=[DeadLetter(msg.topic, reason, msg.payload)])
        self._merge(part)

    def _merge(self, part: Decoded) -> None:
        if part.topic is not None:
            self.gateways[part.topic.gateway] = part.topic.site
            if part.state is not None:
                self.states.append((part.topic, part.state, part.raw_state))
        if part.seq_range is not None:
            key, seq_range = part.seq_range
            self.ranges.setdefault(key, []).append(seq_range)
        self.readings.extend(part.readings)
        self.events.extend(part.events)
        self.dead_letters.extend(part.dead_letters)
