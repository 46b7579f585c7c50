"""Publisher: moves the outbox's streams to MQTT and deletes what ingest committed.

Delivery is at-least-once end to end (ARCHITECTURE rule 1). The outbox holds three
sequence streams (`gateway.streams`): readings, RFID tag reads and barcode scans.
Their batches go out QoS 1 on ``ct/v1/{site}/{gw}/readings``, ``…/tags`` and
``…/scans``; ingest answers each stream with a retained `Ack` on
``…/ack/{stream}`` carrying the highest contiguous seq it has stored, and only that
deletes from the outbox. A broker PUBACK proves nothing about storage, so when a
stream's watermark has not moved for ``resend_after_s`` the publisher goes back to
``committed + 1`` (go-back-N; ingest is idempotent). All streams share one MQTT
connection, so the gateway has one last will. The publisher also keeps the
gateway's state topic: birth on connect, a last will for death, a periodic state
with the outbox depth and each source's health, and an explicit offline state on a
graceful stop. Lost connections are retried forever with capped exponential backoff,
each attempt on the next node of ``mqtt.failover`` when the broker is a cluster.

The state message is `gateway.health.HealthState`: besides the source health it
carries per-sensor last-seen, battery and gaps, the age of the oldest reading still
in the outbox, the gateway-vs-ingest clock skew measured from fresh acks, and the
local alarm outputs.

Draining a large backlog reads the outbox in ``batch_max`` chunks, never the whole
backlog, and keeps at most ``max_unconfirmed`` items per stream between the outbox
and ingest. Deletes are coalesced (`gateway.streams.CONFIRM_EVERY` items,
``CONFIRM_AFTER_S`` seconds, or when there is nothing to send): each is a durable
SQLite commit, and one per ack made them the larger part of the drain time. A delete
that is late or lost to a crash only means those items are sent again, which ingest
ignores.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import aiomqtt

from gateway.central_alerts import alerts_topic
from gateway.config import GatewayConfig
from gateway.errors import OutboxFullError, PublishError
from gateway.flow import Backoff
from gateway.health import AlarmState, HealthMonitor, HealthState, expected_intervals
from gateway.outbox import Outbox
from gateway.sources.base import Clock, millis
from gateway.streams import CONFIRM_AFTER_S, STREAM_KINDS, OutboxStream
from telemetry.codec import DecodeError, decode_ack, encode
from telemetry.payloads import Reading, ScanItem, SourceState, Status, TagItem
from telemetry.topics import Kind, Topic, ack_filter

__all__ = ["CONFIRM_AFTER_S", "Publisher"]

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 0.5
MQTT_TIMEOUT_S = 10.0  # for CONNACK, PUBACK and SUBACK
PUBLISH_PIPELINE = 8  # batches published without waiting for their PUBACKs
FULL_LOG_EVERY_S = 60.0  # while the outbox is full, the error is repeated this often

StatusProvider = Callable[[], Sequence[SourceState]]
AlarmProvider = Callable[[], Sequence[AlarmState]]
AlertHandler = Callable[[bytes], None]


def _none() -> Sequence[Any]:
    return ()


class Publisher:
    """Publishes the outbox's streams over one MQTT connection and applies ingest's acks."""

    def __init__(  # noqa: PLR0913 - dependencies are passed in, not looked up
        self,
        cfg: GatewayConfig,
        outbox: Outbox,
        *,
        status: StatusProvider = _none,
        alarms: AlarmProvider = _none,
        alerts: AlertHandler | None = None,
        clock: Clock = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cfg = cfg
        self._outbox = outbox
        self._status = status
        self._alarms = alarms
        self._alerts = alerts
        self._clock = clock
        self._monotonic = monotonic
        site, gw = cfg.gateway.site, cfg.gateway.id
        self._topics = {kind: str(Topic.build(site, gw, kind)) for kind in Kind}
        self._ack_filter = ack_filter(site, gw)
        self._alerts_topic = alerts_topic(site)
        now = monotonic()
        self._streams = {
            kind: OutboxStream.open(
                outbox,
                kind,
                resend_after_s=cfg.outbox.resend_after_s,
                max_unconfirmed=cfg.outbox.max_unconfirmed,
                now=now,
            )
            for kind in STREAM_KINDS
        }
        self._by_id = {s.id: s for s in self._streams.values()}
        self._wake = asyncio.Event()
        self._state_now = asyncio.Event()
        self._connected = False
        self._health = HealthMonitor(expected_intervals(cfg))
        self._skew_reported = False
        self._ignored_acks = 0
        self._full_logged = 0.0
        self._nodes = cfg.mqtt.nodes()
        self._node = 0  # index in _nodes of the node to connect to next
        self._tls = cfg.mqtt.tls.context() if cfg.mqtt.tls is not None else None
        if cfg.mqtt.username is not None and self._tls is None and not _loopback(cfg.mqtt.host):
            log.warning(
                "the MQTT password goes to %s without TLS: anyone on that network can read "
                "it; set mqtt.tls (docs/mqtt.md)",
                cfg.mqtt.host,
            )
        outbox.add_listener(lambda readings: self._health.observe(readings, millis(clock)))

    @property
    def connected(self) -> bool:
        """Whether a broker connection is up right now."""
        return self._connected

    @property
    def committed(self) -> int:
        """The watermark of this outbox's readings stream as last acked by ingest."""
        return self._streams[Kind.READINGS].window.committed

    def committed_of(self, kind: Kind) -> int:
        """The watermark of ``kind``'s stream (readings, tags, scans) as last acked."""
        return self._streams[kind].window.committed

    def notify(self) -> None:
        """Tell the publisher that new items are in the outbox."""
        self._wake.set()

    def store(self, readings: Sequence[Reading]) -> None:
        """Store readings durably and wake the sender; a full outbox refuses them, said loudly."""
        try:
            self._outbox.append(readings)
        except OutboxFullError as err:
            self._refused(len(readings), err)
            return
        self._accepted()
        self._wake.set()

    def sink_events(self, kind: Kind, items: Sequence[TagItem | ScanItem]) -> None:
        """Store tag reads or scans durably and wake the sender (the sources' `EventSink`)."""
        if not items:
            return
        try:
            self._outbox.append_events(kind, [encode(item) for item in items])
        except OutboxFullError as err:
            self._refused(len(items), err)
            return
        self._accepted()
        self._wake.set()

    def _refused(self, n: int, err: OutboxFullError) -> None:
        """A full outbox refused ``n`` new items: keep what it holds, count, log, report.

        The oldest data is the evidence, so it is never deleted to make room; what is
        refused shows as a gap of each sensor in the state message (docs/reliability.md).
        """
        now = self._monotonic()
        if self._health.refused(n, millis(self._clock)):
            self._full_logged = now
            self._state_now.set()
            log.error(
                "%s; refusing new readings until ingest confirms what it holds (%d items "
                "kept) or the disk has room. Refused items are counted in the state message",
                err,
                self._outbox.depth(),
            )
        elif now - self._full_logged >= FULL_LOG_EVERY_S:
            self._full_logged = now
            log.error("outbox still full: %d items refused so far", self._health.refused_total)

    def _accepted(self) -> None:
        since = self._health.accepted()
        if since is not None:
            self._state_now.set()
            log.warning(
                "outbox accepts readings again after %.0f s full; %d items refused since "
                "the gateway started (see the sensors' gaps in the state message)",
                (millis(self._clock) - since) / 1000,
                self._health.refused_total,
            )

    def state(self, status: Status) -> HealthState:
        """Build the gateway state message as it would be published now."""
        committed = self.committed
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
            alarms=self._alarms(),
            ignored_acks=self._ignored_acks,
            outbox_size=self._outbox.size(),
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
                self._node = (self._node + 1) % len(self._nodes)  # a cluster: try another
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
        host, port = self._nodes[self._node]
        return aiomqtt.Client(
            host,
            port,
            # the project's broker replaces it by the account name (docs/mqtt.md); nothing
            # here depends on the id: the session is clean and the topics are the gateway's
            identifier=mqtt.client_id or f"coldtrace-{gw.site}-{gw.id}",
            username=mqtt.username,
            password=mqtt.secret(),
            keepalive=mqtt.keepalive_s,
            tls_context=self._tls,
            will=will,
            clean_session=True,
            timeout=MQTT_TIMEOUT_S,
        )

    async def _session(self, stop: asyncio.Event, backoff: Backoff) -> None:
        """One broker connection: birth, ack subscription, send/ack/state loops."""
        host, port = self._nodes[self._node]
        try:
            async with self._client() as client:
                self._connected = True
                backoff.reset()
                log.info("connected to MQTT broker %s:%d", host, port)
                await self._publish_state(client, Status.ONLINE)
                await _subscribe(client, self._ack_filter)
                if self._alerts is not None:  # central alerts drive local alarm outputs
                    await _subscribe(client, self._alerts_topic)
                # whatever was in flight on the old connection may be lost: go back
                for stream in self._streams.values():
                    stream.window.rewind()
                await _until_stopped(
                    stop,
                    self._receive_acks(client),
                    self._send(client),
                    self._report(client),
                )
                await self._publish_state(client, Status.OFFLINE)
        except (aiomqtt.MqttError, OSError) as err:  # OSError: e.g. the password file is gone
            raise PublishError(host, port, str(err) or type(err).__name__) from err
        finally:
            self._connected = False

    async def _publish_state(self, client: aiomqtt.Client, status: Status) -> None:
        payload = encode(self.state(status))
        await client.publish(self._topics[Kind.STATE], payload, qos=1, retain=True)

    def publish_state_soon(self) -> None:
        """Publish the state now rather than at the next period (an alarm changed)."""
        self._state_now.set()

    async def _report(self, client: aiomqtt.Client) -> None:
        """Publish the state message every ``state_interval_s`` and on request."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._state_now.wait(), self._cfg.state_interval_s)
            self._state_now.clear()
            await self._publish_state(client, Status.ONLINE)

    async def _receive_acks(self, client: aiomqtt.Client) -> None:
        """Apply every ack of our streams to the outbox and the windows; pass on alerts."""
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes):
                payload = str(payload).encode()
            if self._alerts is not None and message.topic.matches(self._alerts_topic):
                self._alerts(payload)
                continue
            self.apply_ack(payload, retained=bool(message.retain))
        raise aiomqtt.MqttError("message stream ended")

    def apply_ack(self, payload: bytes, *, retained: bool = False) -> int:  # noqa: PLR0911
        """Apply one ack payload; return how many items it let the outbox delete.

        A ``retained`` ack may be hours old, so only fresh ones feed the skew estimate.
        """
        if not payload:
            return 0  # a cleared retained message
        try:
            ack = decode_ack(payload)
        except (DecodeError, RecursionError) as err:  # msgspec: RecursionError on deep nesting
            # foreign input must not stop the gateway; the next good ack supersedes it
            reason = err.reason if isinstance(err, DecodeError) else "nested too deeply"
            log.warning("ignoring a malformed ack on %s: %s", self._ack_filter, reason)
            return 0
        if ack.gateway != self._cfg.gateway.id:
            log.debug("ignoring an ack for %s/%s", ack.gateway, ack.stream)
            return 0
        if not retained:
            self._note_clock(ack.t)
        stream = self._by_id.get(ack.stream)
        if stream is None:
            log.debug("ignoring an ack for %s/%s", ack.gateway, ack.stream)
            return 0
        last = stream.last_seq()
        committed = ack.committed
        if committed > last:
            self._ack_beyond_assigned(stream, committed, last)
            return 0
        if not stream.window.acked(committed, self._monotonic()):
            return 0
        self._wake.set()
        return stream.confirm(self._monotonic(), force=False)

    def _ack_beyond_assigned(self, stream: OutboxStream, committed: int, last: int) -> None:
        """Ignore an ack for seqs this outbox never assigned, and move to a new stream.

        Either the outbox was rolled back (restored from a backup: its next seqs are ones
        ingest already committed, so under the old id they would be deleted unsent) or
        the ack is forged. The ack cannot tell which; in both cases nothing is deleted and
        the held items go out again under a new stream id, which ingest counts from zero.
        """
        self._ignored_acks += 1
        fresh = stream.restart(self._monotonic())
        log.error(
            "ignored an ack for %s stream %s: seq %d committed, but this outbox assigned "
            "only up to %d (restored from a backup, or a forged ack); nothing deleted, "
            "its %d held items go out again as stream %s",
            stream.kind,
            stream.id,
            committed,
            last,
            max(0, fresh.last_seq() - fresh.window.committed),
            fresh.id,
        )
        self._streams[stream.kind] = fresh
        self._by_id = {s.id: s for s in self._streams.values()}
        self._wake.set()

    @property
    def ignored_acks(self) -> int:
        """How many acks were ignored for claiming seqs this outbox never assigned."""
        return self._ignored_acks

    def flush(self) -> int:
        """Delete everything acked so far from the outbox now; return how many."""
        now = self._monotonic()
        return sum(s.confirm(now, force=True) for s in self._streams.values())

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
        """Publish batches from each window's next seq, pausing and going back as needed.

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
        batch_max = self._cfg.outbox.batch_max
        gateway = self._cfg.gateway.id
        while True:
            self._wake.clear()
            sent_any = False
            for stream in self._streams.values():
                window = stream.window
                if window.expire(self._monotonic()):
                    log.info(
                        "%s watermark stuck at %d for %.1f s; re-sending from %d",
                        stream.kind,
                        window.committed,
                        window.resend_after_s,
                        window.next_seq,
                    )
                batch = stream.next_batch(batch_max, gateway=gateway, sent_ms=millis(self._clock))
                if batch is None:
                    continue
                payload, last = batch
                topic = self._topics[stream.kind]
                inflight.add(asyncio.create_task(client.publish(topic, payload, qos=1)))
                window.sent(last, self._monotonic())
                sent_any = True
                await self._settle(inflight, keep=PUBLISH_PIPELINE - 1)
            if sent_any:
                continue
            await self._settle(inflight, keep=0)
            self.flush()  # nothing to send: a good moment for the delete
            deadlines = [
                d for s in self._streams.values() if (d := s.window.deadline()) is not None
            ]
            timeout = max(0.0, min(deadlines) - self._monotonic()) if deadlines else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)


async def _subscribe(client: aiomqtt.Client, topic: str) -> None:
    """Subscribe QoS 1; a refusal in the SUBACK is a lost connection, not a silent gap.

    A gateway whose ack subscription failed would re-send forever without ever seeing a
    watermark. Measured on a NATS cluster just after a node was killed: the broker
    answered SUBACK with 0x80 (it could not create the subscription's JetStream
    consumer in time), and the gateway went on unaware. Reconnecting retries it.
    """
    granted = await client.subscribe(topic, qos=1)
    refused = [str(code) for code in granted if isinstance(code, int) and code >= 0x80]
    refused += [str(code) for code in granted if not isinstance(code, int) and code.is_failure]
    if refused:
        raise aiomqtt.MqttError(f"the broker refused the subscription to {topic}: {refused}")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


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
