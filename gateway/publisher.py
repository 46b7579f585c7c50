"""Publisher: moves readings from the outbox to MQTT and deletes what ingest committed.

Delivery is at-least-once end to end (ARCHITECTURE rule 1). Batches go out QoS 1 on
``ct/v1/{site}/{gw}/readings``; ingest answers with a retained `Ack` on ``…/ack``
carrying the highest contiguous seq it has stored, and only that deletes from the
outbox. A broker PUBACK proves nothing about storage, so when the watermark has not
moved for ``resend_after_s`` the publisher goes back to ``committed + 1`` (go-back-N;
ingest is idempotent). It also keeps the gateway's state topic: birth on connect, a
last will for death, a periodic state with the outbox depth and each source's health,
and an explicit offline state on a graceful stop. Lost connections are retried
forever with capped exponential backoff.

The state message is `gateway.health.HealthState`: besides the source health it
carries per-sensor last-seen, battery and gaps, the age of the oldest reading still
in the outbox, and the gateway-vs-ingest clock skew measured from fresh acks.

Draining a large backlog reads the outbox in ``batch_max`` chunks, never the whole
backlog, and keeps at most ``max_unconfirmed`` readings between the outbox and ingest.
Deletes are coalesced (every ``CONFIRM_EVERY`` readings, ``CONFIRM_AFTER_S`` seconds, or
when there is nothing to send): each is a durable SQLite commit, and one per ack made
them the larger part of the drain time. A delete that is late or lost to a crash only
means those readings are sent again, which ingest ignores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import aiomqtt

from gateway.config import GatewayConfig
from gateway.errors import OutboxError, PublishError
from gateway.flow import Backoff, SendWindow
from gateway.health import HealthMonitor, HealthState, expected_intervals
from gateway.outbox import Outbox
from gateway.sources.base import Clock, millis
from telemetry.codec import DecodeError, decode_ack, encode
from telemetry.payloads import VERSION, Reading, ReadingBatch, SourceState, Status
from telemetry.topics import Kind, Topic

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 0.5
MQTT_TIMEOUT_S = 10.0  # for CONNACK, PUBACK and SUBACK
CONFIRM_EVERY = 5_000  # readings acked before the outbox deletes them at the latest
CONFIRM_AFTER_S = 1.0  # or this long after the last delete
PUBLISH_PIPELINE = 8  # batches published without waiting for their PUBACKs

StatusProvider = Callable[[], Sequence[SourceState]]


def _no_sources() -> Sequence[SourceState]:
    return ()


def build_batch(
    rows: Sequence[tuple[int, Reading]], *, gateway: str, stream: str, sent_ms: int
) -> ReadingBatch:
    """Build a batch of contiguous outbox rows; raise ValueError on a gap."""
    first = rows[0][0]
    for offset, (seq, _) in enumerate(rows):
        if seq != first + offset:
            raise ValueError(
                f"outbox rows are not contiguous: seq {seq} after {first + offset - 1}"
            )
    return ReadingBatch(
        v=VERSION,
        gateway=gateway,
        stream=stream,
        seq=(first, rows[-1][0]),
        sent=sent_ms,
        items=[reading for _, reading in rows],
    )


class Publisher:
    """Publishes one outbox to MQTT and applies ingest's acks to it."""

    def __init__(
        self,
        cfg: GatewayConfig,
        outbox: Outbox,
        *,
        status: StatusProvider = _no_sources,
        clock: Clock = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cfg = cfg
        self._outbox = outbox
        self._status = status
        self._clock = clock
        self._monotonic = monotonic
        site, gw = cfg.gateway.site, cfg.gateway.id
        self._topics = {kind: str(Topic.build(site, gw, kind)) for kind in Kind}
        self._window = SendWindow.starting_at(
            outbox.first_seq(),
            resend_after_s=cfg.outbox.resend_after_s,
            max_unconfirmed=cfg.outbox.max_unconfirmed,
        )
        self._wake = asyncio.Event()
        self._connected = False
        self._confirmed = self._window.committed  # deleted from the outbox up to here
        self._last_confirm = monotonic()
        self._health = HealthMonitor(expected_intervals(cfg))
        self._skew_reported = False
        outbox.add_listener(lambda readings: self._health.observe(readings, millis(clock)))

    @property
    def connected(self) -> bool:
        """Whether a broker connection is up right now."""
        return self._connected

    @property
    def committed(self) -> int:
        """The watermark of this outbox's stream as last acked by ingest."""
        return self._window.committed

    def notify(self) -> None:
        """Tell the publisher that new readings are in the outbox."""
        self._wake.set()

    def state(self, status: Status) -> HealthState:
        """Build the gateway state message as it would be published now."""
        committed = self._window.committed
        # acked rows may wait up to CONFIRM_AFTER_S for their delete: count from the ack
        oldest = self._outbox.read_from(committed + 1, 1)
        return self._health.state(
            gateway=self._cfg.gateway.id,
            status=status,
            now_ms=millis(self._clock),
            outbox_depth=max(0, self._outbox.last_seq() - committed),
            sources=self._status(),
            committed=committed,
            oldest_t=oldest[0][1].t if oldest else None,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set, reconnecting forever; then publish offline."""
        try:
            await self._reconnect_forever(stop)
        finally:
            self.flush()  # deletes still pending from the last acks

    async def _reconnect_forever(self, stop: asyncio.Event) -> None:
        backoff = Backoff(initial=RECONNECT_MIN_S, cap=self._cfg.mqtt.reconnect_max_s, jitter=0.2)
        while not stop.is_set():
            try:
                await self._session(stop, backoff)
            except PublishError as err:
                if stop.is_set():
                    # stopping anyway; if we were connected, the broker sends our will
                    log.warning("%s; stopping without publishing the offline state", err)
                    return
                delay = backoff.next_delay()
                log.warning("%s; reconnecting in %.1f s", err, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    def _client(self) -> aiomqtt.Client:
        mqtt = self._cfg.mqtt
        gw = self._cfg.gateway
        will = aiomqtt.Will(
            self._topics[Kind.STATE], encode(self.state(Status.OFFLINE)), qos=1, retain=True
        )
        return aiomqtt.Client(
            mqtt.host,
            mqtt.port,
            identifier=mqtt.client_id or f"coldtrace-{gw.site}-{gw.id}",
            username=mqtt.username,
            password=mqtt.password.get_secret_value() if mqtt.password else None,
            keepalive=mqtt.keepalive_s,
            will=will,
            clean_session=True,
            timeout=MQTT_TIMEOUT_S,
        )

    async def _session(self, stop: asyncio.Event, backoff: Backoff) -> None:
        """One broker connection: birth, ack subscription, send/ack/state loops."""
        mqtt = self._cfg.mqtt
        try:
            async with self._client() as client:
                self._connected = True
                backoff.reset()
                log.info("connected to MQTT broker %s:%d", mqtt.host, mqtt.port)
                await self._publish_state(client, Status.ONLINE)
                await client.subscribe(self._topics[Kind.ACK], qos=1)
                # whatever was in flight on the old connection may be lost: go back
                self._window.rewind()
                await _until_stopped(
                    stop,
                    self._receive_acks(client),
                    self._send(client),
                    self._report(client),
                )
                await self._publish_state(client, Status.OFFLINE)
        except aiomqtt.MqttError as err:
            raise PublishError(mqtt.host, mqtt.port, str(err) or type(err).__name__) from err
        finally:
            self._connected = False

    async def _publish_state(self, client: aiomqtt.Client, status: Status) -> None:
        payload = encode(self.state(status))
        await client.publish(self._topics[Kind.STATE], payload, qos=1, retain=True)

    async def _report(self, client: aiomqtt.Client) -> None:
        """Publish the periodic state message."""
        while True:
            await asyncio.sleep(self._cfg.state_interval_s)
            await self._publish_state(client, Status.ONLINE)

    async def _receive_acks(self, client: aiomqtt.Client) -> None:
        """Apply every ack of our stream to the outbox and the window."""
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes):
                payload = str(payload).encode()
            self.apply_ack(payload, retained=bool(message.retain))
        raise aiomqtt.MqttError("message stream ended")

    def apply_ack(self, payload: bytes, *, retained: bool = False) -> int:
        """Apply one ack payload; return how many readings it let the outbox delete.

        A ``retained`` ack may be hours old, so only fresh ones feed the skew estimate.
        """
        try:
            ack = decode_ack(payload)
        except DecodeError as err:
            # foreign input must not stop the gateway; the next good ack supersedes it
            log.warning("ignoring a malformed ack on %s: %s", self._topics[Kind.ACK], err.reason)
            return 0
        if ack.gateway != self._cfg.gateway.id:
            log.debug("ignoring an ack for %s/%s", ack.gateway, ack.stream)
            return 0
        if not retained:
            self._note_clock(ack.t)
        if ack.stream != self._outbox.stream:
            log.debug("ignoring an ack for %s/%s", ack.gateway, ack.stream)
            return 0
        last = self._outbox.last_seq()
        committed = ack.committed
        if committed > last:
            log.warning("ack says seq %d is committed but only %d were assigned", committed, last)
            committed = last
        if committed <= self._window.committed:
            return 0
        self._window.acked(committed, self._monotonic())
        self._wake.set()
        return self._confirm(force=False)

    def flush(self) -> int:
        """Delete everything acked so far from the outbox now; return how many."""
        return self._confirm(force=True)

    def _confirm(self, *, force: bool) -> int:
        committed = self._window.committed
        pending = committed - self._confirmed
        if pending <= 0:
            return 0
        now = self._monotonic()
        if not force and pending < CONFIRM_EVERY and now - self._last_confirm < CONFIRM_AFTER_S:
            return 0
        deleted = self._outbox.confirm(committed)
        self._confirmed, self._last_confirm = committed, now
        return deleted

    def _note_clock(self, ack_t: int) -> None:
        """Feed the skew estimate; log once each time it crosses the tolerance."""
        self._health.ack(ack_t, millis(self._clock))
        skewed = self._health.skewed()
        if skewed != self._skew_reported:
            self._skew_reported = skewed
            log.warning(
                "gateway clock %s ingest's: estimated skew %s ms",
                "disagrees with" if skewed else "agrees again with",
                self._health.clock_skew_ms(),
            )

    async def _send(self, client: aiomqtt.Client) -> None:
        """Publish batches from the window's next seq, pausing and going back as needed.

        Up to ``PUBLISH_PIPELINE`` batches wait for their PUBACK at once (paho keeps
        them in order); waiting for each in turn left the gateway idle most of a drain.
        """
        inflight: set[asyncio.Task[None]] = set()
        try:
            await self._send_loop(client, inflight)
        finally:
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)

    @staticmethod
    async def _settle(inflight: set[asyncio.Task[None]], *, keep: int) -> None:
        """Wait until at most ``keep`` publishes are in flight; re-raise a failed one."""
        while len(inflight) > keep:
            done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            inflight.difference_update(done)
            for task in done:
                task.result()

    async def _send_loop(self, client: aiomqtt.Client, inflight: set[asyncio.Task[None]]) -> None:
        window = self._window
        batch_max = self._cfg.outbox.batch_max
        topic = self._topics[Kind.READINGS]
        while True:
            self._wake.clear()
            if window.expire(self._monotonic()):
                log.info(
                    "watermark stuck at %d for %.1f s; re-sending from %d",
                    window.committed,
                    window.resend_after_s,
                    window.next_seq,
                )
            limit = min(batch_max, window.room())
            rows = self._outbox.read_from(window.next_seq, limit) if limit else []
            if rows:
                if rows[0][0] != window.next_seq:
                    raise OutboxError(
                        self._outbox.path,
                        "read",
                        f"seq {window.next_seq} is missing (the oldest held is {rows[0][0]})",
                    )
                batch = build_batch(
                    rows,
                    gateway=self._cfg.gateway.id,
                    stream=self._outbox.stream,
                    sent_ms=millis(self._clock),
                )
                inflight.add(asyncio.create_task(client.publish(topic, encode(batch), qos=1)))
                window.sent(batch.seq[1], self._monotonic())
                await self._settle(inflight, keep=PUBLISH_PIPELINE - 1)
                continue
            await self._settle(inflight, keep=0)
            self.flush()  # nothing to send: a good moment for the delete
            deadline = window.deadline()
            timeout = None if deadline is None else max(0.0, deadline - self._monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)


async def _until_stopped(stop: asyncio.Event, *loops: Coroutine[Any, Any, None]) -> None:
    """Run ``loops`` until ``stop`` is set or one of them fails; re-raise that failure."""
    tasks = [asyncio.create_task(c) for c in loops]
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (stopper, *tasks):
            task.cancel()
        await asyncio.gather(stopper, *tasks, return_exceptions=True)
    for task in tasks:
        if task in done and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error
