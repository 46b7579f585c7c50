"""Small real-broker helpers for tests: logged-in clients, a topic collector, settings.

The test broker (fixture ``broker``) refuses anonymous clients and confines each account
to its topics, as a plant's broker does, and uses the account name as the client id: one
account is one connection (a second connection of an account cuts the first off and takes
over its session). These helpers log in for you:

- ``client(broker)`` and ``Collector(broker, topic)`` are observers (read everything,
  publish nothing), each with an account of its own (`new_observer`);
- ``gateway_client(broker, site, gateway)`` publishes as that gateway (provisioned on
  first use; do not run the gateway itself at the same time),
  ``client(broker, broker.ingest_credentials)`` as ingest, and so on;
- ``publish`` raises `PublishRefusedError` when the broker's ACL refuses the message (the
  clients speak MQTT 5, whose PUBACK carries the reason), so a test cannot silently
  publish into nothing;
- ``ingest_settings`` / ``ingest_env`` / ``gateway_mqtt`` give ingest and a gateway
  their broker address and credentials (a second worker: ``account="ingest-2"``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from coldtrace.broker import Broker
from coldtrace.devices import Role
from coldtrace.devices_store import Credentials
from ingest.settings import IngestSettings
from telemetry.codec import encode
from telemetry.payloads import VERSION, Reading, ReadingBatch

T0_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z
_observers = itertools.count(1)


class PublishRefusedError(AssertionError):
    """The broker answered a publish with a failure reason (e.g. not authorised)."""


class ConnectRefusedError(AssertionError):
    """The broker refused the connection (e.g. bad password)."""


class _Client(mqtt.Client):
    """A paho MQTT 5 client that remembers the broker's refusals of its publishes."""

    def __init__(self, client_id: str) -> None:
        super().__init__(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.refused: dict[int, str] = {}
        self.connack: str | None = None
        self.subscriptions: list[str] = []  # (re)subscribed on every connect
        self.disconnects: list[str] = []  # reasons, e.g. another connection took over
        self._connected = threading.Event()
        self.on_publish = self._record_refusal
        self.on_connect = self._record_connack
        self.on_disconnect = lambda _c, _u, _f, reason, _p: self.disconnects.append(str(reason))
        # Mosquitto 2.0 closes an MQTT 5 connection after refusing a QoS 1 publish
        self.reconnect_delay_set(min_delay=0.2, max_delay=1)  # type: ignore[arg-type]

    def _record_refusal(self, _c: object, _u: object, mid: int, reason: Any, _p: object) -> None:
        if reason.is_failure:
            self.refused[mid] = str(reason)

    def _record_connack(self, _c: object, _u: object, _f: object, reason: Any, _p: object) -> None:
        self.connack = str(reason)
        if not reason.is_failure:
            for topic in self.subscriptions:
                self.subscribe(topic, qos=1)
        self._connected.set()

    def wait_connected(self, timeout: float = 10) -> None:
        if not self._connected.wait(timeout):
            raise ConnectRefusedError("no CONNACK in time")
        if self.connack != "Success":
            raise ConnectRefusedError(f"the broker refused the connection: {self.connack}")


def new_observer(broker: Broker) -> Credentials:
    """A further observer account (reads everything): one per connection."""
    return broker.service_credentials(Role.OBSERVER, f"observer-{next(_observers)}")


def client(broker: Broker, creds: Credentials | None = None, client_id: str = "") -> _Client:
    """A connected client logged in as ``creds`` (default: a new observer), network loop on."""
    creds = creds or new_observer(broker)
    c = _Client(client_id)
    c.username_pw_set(creds.username, creds.password)
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.wait_connected()
    return c


def gateway_client(
    broker: Broker, site: str = "plant-1", gateway: str = "gw-1", client_id: str = ""
) -> _Client:
    """A client logged in as gateway ``gateway`` of ``site`` (provisioned on first use)."""
    return client(broker, broker.gateway_credentials(site, gateway), client_id)


def batch(
    first_seq: int,
    n: int,
    *,
    gateway: str = "gw-1",
    stream: str = "s1",
    sensor: str = "fridge-a",
    t0_ms: int = T0_MS,
    step_ms: int = 1000,
    value: Callable[[int], float] = lambda i: 4.0 + (i % 10) / 10,
) -> ReadingBatch:
    """A valid batch of ``n`` temperature readings, one per ``step_ms``, seq from first_seq."""
    items = [
        Reading(
            t=t0_ms + (first_seq + i) * step_ms,
            sensor=sensor,
            qty="temperature",
            value=value(first_seq + i),
            unit="Cel",
        )
        for i in range(n)
    ]
    return ReadingBatch(
        v=VERSION,
        gateway=gateway,
        stream=stream,
        seq=(first_seq, first_seq + n - 1),
        sent=t0_ms,
        items=items,
    )


def publish(
    c: mqtt.Client, topic: str, payload: bytes | ReadingBatch, *, retain: bool = False
) -> None:
    """Publish QoS 1, wait for the PUBACK; raise `PublishRefusedError` if the broker refused it."""
    data = encode(payload) if isinstance(payload, ReadingBatch) else payload
    info = c.publish(topic, data, qos=1, retain=retain)
    info.wait_for_publish(10)
    reason = c.refused.pop(info.mid, None) if isinstance(c, _Client) else None
    if reason is not None:
        # Mosquitto 2.0 also drops the connection: let paho reconnect before going on
        wait_until(lambda: not c.is_connected(), timeout=1, interval=0.02)
        if not wait_until(c.is_connected, timeout=10, interval=0.02):
            raise ConnectRefusedError(f"did not reconnect after the broker refused {topic}")
        raise PublishRefusedError(f"{topic}: {reason}")


class Collector:
    """Subscribes to a topic filter and keeps the payloads that arrive (as a new observer)."""

    def __init__(self, broker: Broker, topic: str, creds: Credentials | None = None) -> None:
        self.payloads: list[bytes] = []
        self.topics: list[str] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = _Client("")
        creds = creds or new_observer(broker)
        self._client.username_pw_set(creds.username, creds.password)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.subscriptions.append(topic)
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self._client.wait_connected()
        if not self._subscribed.wait(10):
            raise AssertionError(f"no SUBACK for {topic}")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.payloads.append(msg.payload)
            self.topics.append(msg.topic)

    def wait_for(self, predicate: Callable[[list[bytes]], bool], timeout: float = 20) -> bool:
        """Wait until ``predicate(payloads)`` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(list(self.payloads)):
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def ingest_settings(broker: Broker, account: str = "ingest", **overrides: Any) -> IngestSettings:
    """Settings of an ingest worker on ``broker``, logged in as ingest account ``account``."""
    creds = broker.service_credentials(Role.INGEST, account)
    values: dict[str, Any] = {
        "mqtt_host": broker.host,
        "mqtt_port": broker.port,
        "mqtt_username": creds.username,
        "mqtt_password": creds.password,
        **({"share_group": creds.share_group} if creds.share_group else {}),
        **overrides,
    }
    return IngestSettings(**values)


def ingest_env(broker: Broker, account: str = "ingest") -> dict[str, str]:
    """Environment of a ``coldtrace ingest`` process on ``broker`` (with its credentials)."""
    return broker.service_env(Role.INGEST, account)


def gateway_mqtt(broker: Broker, site: str, gateway: str, **extra: Any) -> dict[str, Any]:
    """The ``mqtt`` section of a gateway config on ``broker``, with the gateway's credentials."""
    creds = broker.gateway_credentials(site, gateway)
    return {
        "host": broker.host,
        "port": broker.port,
        "username": creds.username,
        "password": creds.password,
        **extra,
    }


def wait_until(predicate: Callable[[], bool], timeout: float = 30, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
