"""Pure: turn received messages into what one database transaction must write.

A plan holds the accepted readings, the dead letters (whole messages or single items,
each with its reason and raw bytes) and, per gateway stream, the sequence ranges the
transaction accounts for — rejected items included, so the watermark never waits for
data that will never be stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.events import EVENT_KINDS, EdgeEvents
from telemetry.codec import DecodeError, decode_batch
from telemetry.payloads import Reading
from telemetry.topics import Kind, Topic, TopicError


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message as the consumer handed it over."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Something that could not be stored as a reading, kept with its reason."""

    topic: str
    reason: str
    payload: bytes
    gateway: str | None = None
    stream: str | None = None
    seq: int | None = None
    item_index: int | None = None


@dataclass(frozen=True, slots=True)
class StreamKey:
    """A gateway's outbox stream, addressed by site for the ack topic."""

    site: str
    gateway: str
    stream: str


@dataclass
class Plan:
    """Everything one flush writes, in one transaction."""

    readings: list[tuple[str, int, Reading]] = field(default_factory=list)  # (gateway, seq, r)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    ranges: dict[StreamKey, list[tuple[int, int]]] = field(default_factory=dict)
    gateways: dict[str, str] = field(default_factory=dict)  # gateway -> site
    states: list[tuple[Topic, bytes]] = field(default_factory=list)
    events: EdgeEvents = field(default_factory=EdgeEvents)  # tags and scans
    messages: int = 0

    def add(self, msg: Received, *, now_ms: int, max_future_ms: int) -> None:
        """Decode one message into the plan; never raises for bad input."""
        self.messages += 1
        try:
            topic = Topic.parse(msg.topic)
        except TopicError as err:
            self.dead_letters.append(DeadLetter(msg.topic, str(err), msg.payload))
            return
        self.gateways[topic.gateway] = topic.site
        if topic.kind is Kind.STATE:
            self.states.append((topic, msg.payload))
            return
        if topic.kind in EVENT_KINDS:
            out = self.events.add(topic, msg.payload, now_ms=now_ms, max_future_ms=max_future_ms)
            if out.stream is not None and out.seq_range is not None:
                key = StreamKey(topic.site, topic.gateway, out.stream)
                self.ranges.setdefault(key, []).append(out.seq_range)
            self.dead_letters.extend(
                DeadLetter(msg.topic, why, raw, topic.gateway, out.stream, seq, index)
                for why, raw, seq, index in out.rejected
            )
            return
        if topic.kind is not Kind.READINGS:
            reason = f"ingest does not store {topic.kind} messages yet"
            self.dead_letters.append(DeadLetter(msg.topic, reason, msg.payload, topic.gateway))
            return
        try:
            batch = decode_batch(msg.payload, now_ms=now_ms, max_future_ms=max_future_ms)
        except DecodeError as err:
            self.dead_letters.append(DeadLetter(msg.topic, err.reason, msg.payload, topic.gateway))
            return
        if batch.gateway != topic.gateway:
            reason = (
                f"payload gateway {batch.gateway!r} does not match topic gateway {topic.gateway!r}"
            )
            self.dead_letters.append(DeadLetter(msg.topic, reason, msg.payload, topic.gateway))
            return
        key = StreamKey(topic.site, batch.gateway, batch.stream)
        self.ranges.setdefault(key, []).append((batch.seq_first, batch.seq_last))
        gw = batch.gateway
        self.readings.extend((gw, seq, r) for seq, r in batch.readings)
        self.dead_letters.extend(
            DeadLetter(msg.topic, rej.reason, rej.raw, gw, batch.stream, rej.seq, rej.index)
            for rej in batch.rejected
        )
