"""Run the notifier as a process: build channels from settings, LISTEN, loop until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from ingest.notify import admin
from ingest.notify.channels import Channel
from ingest.notify.channels.email import EmailChannel
from ingest.notify.channels.http import ProviderChannel, WebhookChannel
from ingest.notify.channels.mqtt import MqttChannel
from ingest.notify.notifier import Clock, Notifier, PeriodicJob, listen_for_events, utc_now
from ingest.notify.settings import NotifySettings

log = logging.getLogger(__name__)


def build_channels(
    settings: NotifySettings, client: httpx.AsyncClient
) -> tuple[dict[str, Channel], MqttChannel | None]:
    """The configured channels; channels without settings are left out (and fail visibly)."""
    channels: dict[str, Channel] = {"webhook": WebhookChannel(client)}
    if settings.smtp_host:
        channels["email"] = EmailChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            timeout_s=settings.send_timeout_s,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    if settings.sms_url:
        channels["sms"] = ProviderChannel(client, settings.sms_url, "sms", settings.provider_token)
    if settings.voice_url:
        channels["voice"] = ProviderChannel(
            client, settings.voice_url, "voice", settings.provider_token
        )
    mqtt = None
    if settings.mqtt_host:
        mqtt = MqttChannel(
            settings.mqtt_host,
            settings.mqtt_port,
            settings.mqtt_client_id,
            settings.send_timeout_s,
            settings.mqtt_security(),
        )
        channels["mqtt"] = mqtt
    return channels, mqtt


@contextlib.asynccontextmanager
async def open_notifier(
    settings: NotifySettings,
    db_url: str,
    *,
    clock: Clock = utc_now,
    jobs: Sequence[PeriodicJob] = (),
) -> AsyncIterator[Notifier]:
    """A notifier with its pool, HTTP client and MQTT connection; all closed on exit."""
    async with (
        AsyncConnectionPool[Any](db_url, min_size=1, max_size=4, open=False) as pool,
        httpx.AsyncClient(timeout=settings.send_timeout_s) as client,
    ):
        channels, mqtt = build_channels(settings, client)
        try:
            yield Notifier(settings, pool=pool, channels=channels, clock=clock, jobs=jobs)
        finally:
            if mqtt is not None:
                mqtt.close()


async def run_notifier(
    settings: NotifySettings,
    db_url: str,
    stop: asyncio.Event,
    *,
    clock: Clock = utc_now,
    jobs: Sequence[PeriodicJob] = (),
) -> Notifier:
    """Run one notifier until ``stop`` is set; return it (with its totals)."""
    async with open_notifier(settings, db_url, clock=clock, jobs=jobs) as notifier:
        async with notifier.pool.connection() as conn:
            for gap in await admin.coverage_gaps_in_db(conn):
                log.error("routing reaches too few people (min_recipients): %s", gap)
        wake = asyncio.Event()
        listener = asyncio.create_task(listen_for_events(db_url, wake, stop))
        log.info(
            "notifier %s running: channels %s",
            settings.worker,
            ", ".join(sorted(notifier.channels)),
        )
        try:
            await notifier.run(stop, wake)
        finally:
            stop.set()
            await listener
        t = notifier.totals
        log.info("stopped: %d events routed, %d sent, %d retries, %d failed",
                 t.routed, t.sent, t.retried, t.failed)  # fmt: skip
        return notifier
