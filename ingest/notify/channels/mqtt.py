"""The MQTT alerts topic: each alert event's JSON document, QoS 1, not retained.

Topic ``ct/v1/{site}/alerts`` (``unassigned`` when the alert has no site). paho's own
network thread keeps the connection and reconnects; a send waits for the PUBACK.
"""

from __future__ import annotations

import asyncio
import json

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.notify.errors import ChannelError
from ingest.notify.models import ClaimedDelivery, Message

NO_SITE = "unassigned"


def alerts_topic(site: str | None) -> str:
    """The topic an alert of ``site`` is published on."""
    return f"ct/v1/{site or NO_SITE}/alerts"


class MqttChannel:
    """Publishes alert documents to the broker the ingest workers use."""

    def __init__(self, host: str, port: int, client_id: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._address = f"{host}:{port}"
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.reconnect_delay_set(1, 30)
        self._client.connect_async(host, port)
        self._client.loop_start()

    async def send(self, delivery: ClaimedDelivery, message: Message) -> None:
        """Publish QoS 1 and wait for the broker's PUBACK."""
        topic = alerts_topic(delivery.notice.site)
        payload = json.dumps({**message.document, "delivery_id": delivery.id})
        info = self._client.publish(topic, payload, qos=1, retain=False)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ChannelError("mqtt", topic, f"not connected to {self._address} (rc {info.rc})")
        try:
            await asyncio.to_thread(info.wait_for_publish, self.timeout_s)
        except (RuntimeError, ValueError) as err:
            raise ChannelError("mqtt", topic, str(err)) from err
        if not info.is_published():
            raise ChannelError("mqtt", topic, f"no PUBACK from {self._address} in time")

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()
