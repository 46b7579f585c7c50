"""HTTP channels (httpx): a JSON webhook per recipient, and an SMS/voice provider API.

The provider contract is deliberately small — ``POST {"to", "text", "kind", "ref"}``
with an optional bearer token — so an adapter for a specific vendor (Aliyun SMS,
Twilio, a plant's own gateway) is a thin proxy. Both send an ``Idempotency-Key``
header that stays the same on every retry of a delivery.

Webhook URLs, provider URLs and tokens are secrets: error texts (which end up in the log
and in ``notify_attempts.error``) show them only through ``ingest.notify.redact``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from ingest.notify.channels import idempotency_key
from ingest.notify.errors import ChannelError
from ingest.notify.models import ClaimedDelivery, Message
from ingest.notify.redact import scrub, shown_address

_RETRYABLE_4XX = frozenset({408, 425, 429})
# httpx logs every request with its full URL at INFO, and a webhook or provider URL is a
# credential: the library's own request log is kept to warnings and errors.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


async def _post(  # noqa: PLR0913, PLR0917 - one private helper of two callers
    client: httpx.AsyncClient,
    channel: str,
    address: str,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    secrets: tuple[str | None, ...] = (),
) -> None:
    shown = shown_address(channel, address)
    hidden = (url, *secrets)
    try:
        response = await client.post(url, json=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as err:
        reason = scrub(f"{type(err).__name__}: {err}", hidden)
        permanent = isinstance(err, httpx.InvalidURL | httpx.UnsupportedProtocol)
        raise ChannelError(channel, shown, reason, permanent=permanent) from None
    if response.is_success:
        return
    status = response.status_code
    permanent = 400 <= status < 500 and status not in _RETRYABLE_4XX
    reason = scrub(f"HTTP {status} {response.text[:200]}", hidden)
    raise ChannelError(channel, shown, reason, permanent=permanent)


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    """POSTs the alert event's JSON document to the recipient's webhook URL."""

    client: httpx.AsyncClient

    async def send(self, delivery: ClaimedDelivery, message: Message) -> None:
        """POST the document; any 2xx is success."""
        body = {**message.document, "delivery_id": delivery.id}
        key = idempotency_key(delivery)
        await _post(
            self.client,
            "webhook",
            delivery.address,
            delivery.address,
            body,
            {"Idempotency-Key": key},
        )


@dataclass(frozen=True, slots=True)
class ProviderChannel:
    """SMS or voice call through an HTTP provider: the short text to the phone number."""

    client: httpx.AsyncClient
    url: str
    kind: str  # 'sms' or 'voice'
    token: str | None = None

    async def send(self, delivery: ClaimedDelivery, message: Message) -> None:
        """Ask the provider to text or call; any 2xx is success."""
        key = idempotency_key(delivery)
        headers = {"Idempotency-Key": key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = {"to": delivery.address, "text": message.short, "kind": self.kind, "ref": key}
        await _post(
            self.client, self.kind, delivery.address, self.url, body, headers, (self.token,)
        )
