"""The MQTT alerts topic: each alert event's JSON document, QoS 1, not retained.

Topic ``ct/v1/{site}/alerts`` (``unassigned`` when the alert has no site). paho's own
network thread keeps the connection and reconnects; a send waits for the PUBACK. The
notifier logs in with its own account, which may publish on these topics and nothing
else (docs/mqtt.md); the broker's refusal (MQTT 5 PUBACK reason) fails the
delivery, which is retried and shows in the delivery log. The project's broker uses the
account name as the client id whatever ``client_id`` says, so each notifier process
needs an account of its own (``coldtrace devices service notifier --name notifier-2``).
"""

from __future__ import annotations

import asyncio
import json
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from ingest.mqtt_security import MqttSecurity
from ingest.notify.errors import ChannelError
from ingest.notify.models import ClaimedDelivery, Message

NO_SITE = "unassigned"


def alerts_topic(site: str | None) -> str:
    """The topic an alert of ``site`` is published on."""
    return f"ct/v1/{site or NO_SITE}/alerts"


class MqttChannel:
    """Publishes alert documents to the broker the ingest workers use."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        timeout_s: float,
        security: MqttSecurity | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self._address = f"{host}:{port}"
        # MQTT 5, so the PUBACK says whether the broker's ACL let the event through
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self._client.reconnect_delay_set(1, 30)
        self._refused: dict[int, str] = {}  # mid -> the broker's reason for refusing it
        self._client.on_publish = self._on_publish
        try:
            (security or MqttSecurity()).apply(self._client, host)
        except (OSError, ssl.SSLError) as err:
            raise ChannelError("mqtt", self._address, f"cannot set up TLS: {err}") from err
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
        refused = self._refused.pop(info.mid, None)
        if refused is not None:
            raise ChannelError("mqtt", topic, f"the broker refused the event: {refused}")

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason: ReasonCode,
        _props: object,
    ) -> None:
        if reason.is_failure:
            self._refused[mid] = str(reason)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()
