"""paho-mqtt adapter: a persistent QoS 1 session whose messages are acked by the caller.

The session is MQTT 5 with a session expiry interval (``session_expiry_s``): a worker
that comes back within it resumes its session and gets what the broker kept for it; a
worker that left for good loses its session after it, and with it its share of
``$share/ingest/…`` — before, an MQTT 3.1.1 session lived for the broker's
``persistent_client_expiration`` (14 days) and the broker went on parking every n-th
message of the group in it. Whatever an expired session held is sent again by the
gateways (their watermark stalls at the gap), now to the workers that remain
(docs/reliability.md).

paho's network thread only hands messages over through a bounded `Intake` (see
ingest/intake.py for the flow control); the worker acks them after its database commit
(``manual_ack``). Messages received on an earlier connection are never acked on
a later one: the broker re-sends them on the resumed session, and ingest is idempotent.

The session belongs to the worker's broker account: the project's broker replaces the
client id by the account name (docs/mqtt.md), so two workers sharing an account would
cut each other off in turn. A connection lost moments after it was made says so.

A broker without MQTT 5 (NATS, RabbitMQ before 3.13) gets MQTT 3.1.1 with a persistent
session (``protocol="3.1.1"``); it has no session expiry, so a departed worker's share is
freed by partition hand-over instead (ingest/partitions.py, docs/scaling.md). A clustered
broker is reached through a list of nodes: a lost connection is retried on the next one.
"""

from __future__ import annotations

import itertools
import logging
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.errors import BrokerConnectionError
from ingest.intake import Intake
from ingest.mqtt_security import MqttSecurity
from ingest.plan import Received
from telemetry.topics import Kind, subscription

log = logging.getLogger(__name__)

SHORT_CONNECTION_S = 5.0  # a connection lost sooner may have been taken over
RESUBSCRIBE_S = 1.0
MqttProtocol = Literal["5", "3.1.1"]
Node = tuple[str, int]
# A message carries the number of the connection that received it, unique in the process:
# a worker holding several consumers (partitions) acks each message on that connection
# only, never with the same packet id on another one.
_CONNECTIONS = itertools.count(1)


class Consumer:
    """Subscribes to gateway topics and hands messages to the caller through ``inbox``.

    ``inbox`` has the default limits; the worker replaces it with one built from its
    settings before `start`.
    """

    def __init__(  # noqa: PLR0913 - dependencies are passed in, not looked up
        self,
        *,
        host: str,
        port: int,
        client_id: str,
        share_group: str | None,
        security: MqttSecurity | None = None,
        session_expiry_s: int = 300,
        protocol: MqttProtocol = "5",
        failover: Sequence[Node] = (),
        scopes: Sequence[tuple[str, str]] = (("+", "+"),),
        keepalive_s: int = 30,
    ) -> None:
        self.host = host
        self.port = port
        self.inbox = Intake()
        self._keepalive = keepalive_s  # also bounds the wait for CONNACK
        self._nodes: list[Node] = [(host, port), *failover]
        self._node = 0
        self._share = share_group
        self._scopes = list(scopes)  # (site, gateway) filters, "+" for any
        self._generation = 0  # connections made so far
        self._connection = 0  # the current connection's number, unique in the process
        self._subscribed = threading.Event()
        self._v5 = protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else False,
            manual_ack=True,
        )
        self._connect_properties: Properties | None = None
        if self._v5:
            self._connect_properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            self._connect_properties.SessionExpiryInterval = session_expiry_s
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._refused: str | None = None  # why the broker last refused us, if it did
        self._connected_at: float | None = None
        security = security or MqttSecurity()
        self._account = security.username
        try:
            security.apply(self._client, host)
        except (OSError, ssl.SSLError) as err:
            raise BrokerConnectionError(host, port, f"cannot set up TLS: {err}") from err
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = lambda *_: self._next_node()
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    @property
    def generation(self) -> int:
        """Increments on every (re)connection."""
        return self._generation

    def start(self, timeout: float = 10.0) -> None:
        """Connect, subscribe and start paho's network thread; raise if the broker is away."""
        errors: list[str] = []
        for i, (host, port) in enumerate(self._nodes):  # the first node that answers
            try:
                self._client.connect(host, port, **self._connect_options())
                self._node = i
                break
            except OSError as err:  # ssl.SSLError too: a certificate that does not verify
                errors.append(f"{host}:{port}: {err}")
        else:
            raise BrokerConnectionError(self.host, self.port, "; ".join(errors))
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            why = f"refused: {self._refused}" if self._refused else "no subscription"
            raise BrokerConnectionError(self.host, self.port, f"{why} within {timeout} s")

    def stop(self, *, close_inbox: bool = True) -> None:
        """Disconnect cleanly; unacked messages stay queued in the broker's session.

        ``close_inbox=False`` when the intake is shared with other consumers that go on
        (partitions); the worker's collecting thread then keeps making room in it.
        """
        if close_inbox:  # a delivery waiting for room must not hold the network thread
            self.inbox.close()
        self._client.disconnect()
        self._client.loop_stop()

    def covers(self, site: str, gateway: str) -> bool:
        """Whether this consumer's subscriptions include the gateway's topics."""
        return any(s in ("+", site) and g in ("+", gateway) for s, g in self._scopes)

    def ack(self, messages: Iterable[Received]) -> int:
        """Acknowledge messages of the current connection, in order; return how many."""
        n = 0
        for m in messages:
            if m.qos > 0 and m.generation == self._connection:
                self._client.ack(m.mid, m.qos)
                n += 1
        return n

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Publish QoS 1 (paho queues it while disconnected)."""
        self._client.publish(topic, payload, qos=1, retain=retain)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: object,
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            log.error("broker %s:%d refused the connection: %s", self.host, self.port, reason)
            return
        self._generation += 1
        self._connection = next(_CONNECTIONS)
        self._connected_at = time.monotonic()
        self._subscribe(client)
        log.info(
            "connected to %s:%d as %r (generation %d)",
            client.host,
            client.port,
            self._account,
            self._generation,
        )

    def _subscribe(self, client: mqtt.Client) -> None:
        kinds = (Kind.READINGS, Kind.STATE, Kind.TAGS, Kind.SCANS)
        client.subscribe(
            [
                (subscription(k, site=site, gateway=gw, share=self._share), 1)
                for site, gw in self._scopes
                for k in kinds
            ]
        )

    def _on_subscribe(
        self,
        client: mqtt.Client,
        _userdata: object,
        _mid: int,
        codes: list[ReasonCode],
        _props: object,
    ) -> None:
        """Retry a refused subscription: a session that subscribes to nothing gets nothing.

        Seen on a NATS cluster just after a node was killed: SUBACK 0x80, because the
        broker could not create the subscription's JetStream consumer in time.
        """
        refused = [str(code) for code in codes if code.is_failure]
        if not refused:
            self._subscribed.set()
            return
        log.error(
            "broker refused %d of %d subscriptions (%s); subscribing again in %.0f s",
            len(refused),
            len(codes),
            ", ".join(sorted(set(refused))),
            RESUBSCRIBE_S,
        )
        timer = threading.Timer(RESUBSCRIBE_S, self._subscribe, args=(client,))
        timer.daemon = True
        timer.start()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: object,
    ) -> None:
        connected_at, self._connected_at = self._connected_at, None
        if not reason.is_failure:
            return
        lost = f"{self._client.host}:{self._client.port}"
        self._next_node()
        lasted = time.monotonic() - connected_at if connected_at is not None else None
        if lasted is not None and lasted < SHORT_CONNECTION_S:
            log.warning(
                "lost %s %.1f s after connecting (%s); paho reconnects. If this repeats, "
                "another client is logged in as %r: the broker gives an account one "
                "connection, so each worker needs its own (`coldtrace devices service "
                "ingest --name ingest-2`)",
                lost,
                lasted,
                reason,
                self._account,
            )
        else:
            log.warning("lost %s (%s); paho reconnects", lost, reason)

    def _connect_options(self) -> dict[str, Any]:
        if self._v5:  # paho keeps clean_start and the properties for its reconnects
            return {
                "keepalive": self._keepalive,
                "clean_start": False,
                "properties": self._connect_properties,
            }
        return {"keepalive": self._keepalive}  # the persistent session: clean_session=False

    def _next_node(self) -> None:
        """Point paho's next reconnect at the next node of the list (a clustered broker)."""
        if len(self._nodes) == 1:
            return
        self._node = (self._node + 1) % len(self._nodes)
        host, port = self._nodes[self._node]
        # paho reconnects to the host of its last connect; connect_async only sets it
        self._client.connect_async(host, port, **self._connect_options())
        log.info("next connection attempt goes to %s:%d", host, port)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers refuse these (MQTT 4.7.3); if one did not, a
            topic = "<topic is not valid UTF-8>"  # dead letter, never a dead network thread
        # blocks while the intake is full (QoS 1), or drops and counts (QoS 0): intake.py
        self.inbox.put(Received(topic, bytes(msg.payload), msg.mid, msg.qos, self._connection))
