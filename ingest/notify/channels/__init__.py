"""Channels deliver one rendered message to one address; one adapter per protocol.

Each adapter translates its library's errors into `ChannelError` (``permanent`` when a
retry cannot help, e.g. SMTP 550 or HTTP 400), so the notifier decides retries alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ingest.notify.errors import ChannelNotConfiguredError
from ingest.notify.models import ClaimedDelivery, Message

_SETTING_OF = {
    "email": "COLDTRACE_NOTIFY_SMTP_HOST",
    "sms": "COLDTRACE_NOTIFY_SMS_URL",
    "voice": "COLDTRACE_NOTIFY_VOICE_URL",
    "webhook": "(built in)",
    "mqtt": "COLDTRACE_NOTIFY_MQTT_HOST",
}


class Channel(Protocol):
    """Something that sends one message to one address or raises `ChannelError`."""

    async def send(self, delivery: ClaimedDelivery, message: Message) -> None:
        """Deliver ``message`` for ``delivery``; return only once the far end accepted it."""


def idempotency_key(delivery: ClaimedDelivery) -> str:
    """Stable per delivery, so a receiver can drop the one duplicate a crash may cause."""
    return f"coldtrace-delivery-{delivery.id}"


async def send_via(
    channels: Mapping[str, Channel], delivery: ClaimedDelivery, message: Message
) -> None:
    """Send over the delivery's channel, or raise if that channel is not configured."""
    channel = channels.get(delivery.channel)
    if channel is None:
        raise ChannelNotConfiguredError(
            delivery.channel, delivery.address, _SETTING_OF.get(delivery.channel, "?")
        )
    await channel.send(delivery, message)
