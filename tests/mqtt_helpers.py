"""Small real-broker helpers for tests: a publishing client and a topic collector."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from telemetry.codec import encode
from telemetry.payloads import VERSION, Reading, ReadingBatch

T0_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def client(port: int, client_id: str = "") -> mqtt.Client:
    """A connected paho client with its network loop running."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


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


def publish(c: mqtt.Client, topic: str, payload: bytes | ReadingBatch) -> None:
    """Publish QoS 1 and wait for the broker's PUBACK."""
    data = encode(payload) if isinstance(payload, ReadingBatch) else payload
    c.publish(topic, data, qos=1).wait_for_publish(10)


class Collector:
    """Subscribes to a topic filter and keeps the payloads that arrive."""

    def __init__(self, port: int, topic: str) -> None:
        self.payloads: list[bytes] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.on_message = self._on_message
        self._client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.payloads.append(msg.payload)

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


def wait_until(predicate: Callable[[], bool], timeout: float = 30, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
