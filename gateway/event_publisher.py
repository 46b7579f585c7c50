"""Publishes RFID tag reads and barcode scans from the outbox, with the readings' discipline.

Tags and scans are not readings (no sensor, no quantity), so they travel on their own
topics, ``ct/v1/{site}/{gw}/tags`` and ``…/scans``, each kind with its own outbox
sequence stream. Everything else is as for readings (ARCHITECTURE rule 1): items wait
in the SQLite outbox, go out QoS 1 in contiguous batches, are deleted only up to
ingest's committed watermark for that stream (on the shared ``…/ack`` topic, told
apart by stream id), and are re-sent from ``committed + 1`` when the watermark is
stuck (go-back-N, `gateway.flow.SendWindow`). It keeps its own MQTT connection so
the readings publisher is untouched; gateway state (birth/death) stays with that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import aiomqtt
import msgspec

from gateway.config import GatewayConfig
from gateway.errors import OutboxError, PublishError
from gateway.flow import Backoff, SendWindow
from gateway.outbox import Outbox
from gateway.sources.base import Clock, millis
from telemetry.codec import DecodeError, decode_ack, encode
from telemetry.payloads import VERSION, ScanBatch, ScanItem, TagBatch, TagItem
from telemetry.topics import Kind, Topic

log = logging.getLogger(__name__)

EVENT_KINDS = (Kind.TAGS, Kind.SCANS)
MQTT_TIMEOUT_S = 10.0
RECONNECT_MIN_S = 0.5

EventSink = Callable[[Kind, Sequence[TagItem | ScanItem]], None]
"""Where RFID and barcode sources deliver items; returns once they are durable."""

_tag_decoder = msgspec.json.Decoder(TagItem)
_scan_decoder = msgspec.json.Decoder(ScanItem)


def build_event_batch(
    kind: Kind, rows: Sequence[tuple[int, bytes]], *, gateway: str, stream: str, sent_ms: int
) -> TagBatch | ScanBatch:
    """Build a batch of contiguous outbox rows of ``kind``; raise ValueError on a gap."""
    first = rows[0][0]
    if [seq for seq, _ in rows] != list(range(first, first + len(rows))):
        raise ValueError(f"outbox {kind} rows are not contiguous from seq {first}")
    seq = (first, rows[-1][0])
    if kind is Kind.TAGS:
        tags = [_tag_decoder.decode(item) for _, item in rows]
        return TagBatch(VERSION, gateway, stream, seq, sent_ms, tags)
    scans = [_scan_decoder.decode(item) for _, item in rows]
    return ScanBatch(VERSION, gateway, stream, seq, sent_ms, scans)


class EventPublisher:
    """Moves tags and scans from the outbox to MQTT and applies ingest's acks."""

    def __init__(
        self,
        cfg: GatewayConfig,
        outbox: Outbox,
        *,
        clock: Clock = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cfg = cfg
        self._outbox = outbox
        self._clock = clock
        self._monotonic = monotonic
        site, gw = cfg.gateway.site, cfg.gateway.id
        self._topics = {kind: str(Topic.build(site, gw, kind)) for kind in Kind}
        self._streams = {kind: outbox.event_stream(kind) for kind in EVENT_KINDS}
        self._windows = {
            kind: SendWindow.starting_at(
                outbox.event_first_seq(kind),
                resend_after_s=cfg.outbox.resend_after_s,
                max_unconfirmed=cfg.outbox.max_unconfirmed,
            )
            for kind in EVENT_KINDS
        }
        self._wake = asyncio.Event()

    def sink(self, kind: Kind, items: Sequence[TagItem | ScanItem]) -> None:
        """Store ``items`` in the outbox and wake the sender (the sources' `EventSink`)."""
        if items:
            self._outbox.append_events(kind, [encode(item) for item in items])
            self._wake.set()

    def committed(self, kind: Kind) -> int:
        """The watermark of ``kind``'s stream as last acked by ingest."""
        return self._windows[kind].committed

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set, reconnecting forever."""
        backoff = Backoff(initial=RECONNECT_MIN_S, cap=self._cfg.mqtt.reconnect_max_s, jitter=0.2)
        while not stop.is_set():
            try:
                await self._session(stop, backoff)
            except PublishError as err:
                if stop.is_set():
                    return
                delay = backoff.next_delay()
                log.warning("%s; reconnecting the event publisher in %.1f s", err, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _session(self, stop: asyncio.Event, backoff: Backoff) -> None:
        mqtt, gw = self._cfg.mqtt, self._cfg.gateway
        base_id = mqtt.client_id or f"coldtrace-{gw.site}-{gw.id}"
        client = aiomqtt.Client(
            mqtt.host,
            mqtt.port,
            identifier=f"{base_id}-events",
            username=mqtt.username,
            password=mqtt.password.get_secret_value() if mqtt.password else None,
            keepalive=mqtt.keepalive_s,
            clean_session=True,
            timeout=MQTT_TIMEOUT_S,
        )
        try:
            async with client:
                backoff.reset()
                await client.subscribe(self._topics[Kind.ACK], qos=1)
                for window in self._windows.values():
                    window.rewind()  # in-flight messages of the old connection may be lost
                tasks = [
                    asyncio.create_task(self._receive_acks(client)),
                    asyncio.create_task(self._send(client)),
                    asyncio.create_task(stop.wait()),
                ]
                try:
                    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                for task in done:
                    if not task.cancelled() and (error := task.exception()) is not None:
                        raise error
        except aiomqtt.MqttError as err:
            raise PublishError(mqtt.host, mqtt.port, str(err) or type(err).__name__) from err

    async def _receive_acks(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            self.apply_ack(payload if isinstance(payload, bytes) else str(payload).encode())
        raise aiomqtt.MqttError("message stream ended")

    def apply_ack(self, payload: bytes) -> int:
        """Apply one ack payload; return how many items it let the outbox delete."""
        try:
            ack = decode_ack(payload)
        except DecodeError as err:
            log.warning("ignoring a malformed ack: %s", err.reason)
            return 0
        if ack.gateway != self._cfg.gateway.id:
            return 0
        for kind, stream in self._streams.items():
            if ack.stream != stream:
                continue
            committed = min(ack.committed, self._outbox.event_last_seq(kind))
            window = self._windows[kind]
            if committed <= window.committed:
                return 0
            deleted = self._outbox.confirm_events(kind, committed)
            window.acked(committed, self._monotonic())
            self._wake.set()
            return deleted
        return 0

    async def _send(self, client: aiomqtt.Client) -> None:
        batch_max = self._cfg.outbox.batch_max
        while True:
            self._wake.clear()
            sent_any = False
            for kind, window in self._windows.items():
                window.expire(self._monotonic())
                limit = min(batch_max, window.room())
                rows = self._outbox.read_events(kind, window.next_seq, limit) if limit else []
                if not rows:
                    continue
                if rows[0][0] != window.next_seq:
                    raise OutboxError(
                        self._outbox.path, "read events", f"{kind} seq {window.next_seq} is missing"
                    )
                batch = build_event_batch(
                    kind,
                    rows,
                    gateway=self._cfg.gateway.id,
                    stream=self._streams[kind],
                    sent_ms=millis(self._clock),
                )
                await client.publish(self._topics[kind], encode(batch), qos=1)
                window.sent(batch.seq[1], self._monotonic())
                sent_any = True
            if sent_any:
                continue
            deadlines = [d for w in self._windows.values() if (d := w.deadline()) is not None]
            timeout = max(0.0, min(deadlines) - self._monotonic()) if deadlines else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
