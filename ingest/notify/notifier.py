"""The notifier loop: route new alert events, claim due deliveries, send, record.

Delivery semantics (docs/notifications.md): a claim is committed before sending and
the outcome after it, each in its own transaction. Killed before or during a send,
the claim's lease runs out and another pass sends again; killed between the far end
accepting and the ``sent`` mark committing, the message goes out once more — at most
one duplicate per crash, never a loss. Several notifiers may run: claims use
``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ingest.notify import store
from ingest.notify.channels import Channel, send_via
from ingest.notify.errors import ChannelError
from ingest.notify.models import ClaimedDelivery
from ingest.notify.redact import scrub, shown_address
from ingest.notify.render import render
from ingest.notify.routing import after_failure
from ingest.notify.settings import NotifySettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Hook for the alert lifecycle's periodic work (escalation of unacknowledged alerts, the
# offline sweep): called with the pool and the time every ``jobs_interval_s``.
PeriodicJob = Callable[[AsyncConnectionPool[Any], datetime], Awaitable[object]]
WAKE_CHANNEL = "coldtrace_alert_events"


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


@dataclass
class Totals:
    """What one notifier did since it started."""

    routed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0


class Notifier:
    """Routes and delivers; one instance per process, any number of processes."""

    def __init__(
        self,
        settings: NotifySettings,
        *,
        pool: AsyncConnectionPool[Any],
        channels: Mapping[str, Channel],
        clock: Clock = utc_now,
        jobs: Sequence[PeriodicJob] = (),
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.channels = channels
        self.clock = clock
        self.jobs = jobs
        self.totals = Totals()
        self._zones = _zones(settings.site_timezones)

    async def route(self) -> int:
        """Turn alert events not routed yet into deliveries; the number of events routed."""
        async with self.pool.connection() as conn:
            routed = await store.route_new_events(
                conn, now=self.clock(), limit=self.settings.batch_size
            )
        for r in routed:
            for gap in r.unreachable:
                log.error(
                    "alert %d event %d: recipient %s has no address for channel %s",
                    r.alert_id, r.event_id, gap.recipient, gap.channel,
                )  # fmt: skip
            log.info("alert %d event %d (%s): %d deliveries", r.alert_id, r.event_id, r.event,
                     r.deliveries)  # fmt: skip
        self.totals.routed += len(routed)
        return len(routed)

    async def deliver_due(self) -> int:
        """Claim due deliveries, send them concurrently, record each outcome; the number claimed."""
        now = self.clock()
        async with self.pool.connection() as conn:
            for delivery_id in await store.give_up_abandoned(
                conn, now=now, max_attempts=self.settings.max_attempts
            ):
                self.totals.failed += 1
                log.error("delivery %d FAILED: notifier died during its last attempt", delivery_id)
            claimed = await store.claim_due(
                conn,
                worker=self.settings.worker,
                now=now,
                lease_s=self.settings.lease_s,
                limit=self.settings.batch_size,
            )
        if claimed:
            await asyncio.gather(*(self._deliver(d) for d in claimed))
        return len(claimed)

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        zone = self._zones.get(delivery.notice.site or "")
        message = render(delivery.notice, base_url=self.settings.base_url, tz=zone)
        try:
            await asyncio.wait_for(
                send_via(self.channels, delivery, message), self.settings.send_timeout_s
            )
        except (ChannelError, TimeoutError) as err:
            await self._record_failure(delivery, err)
            return
        except Exception as err:  # a bug must not leave the row claimed until its lease ends
            # the message may quote a webhook URL or a token: scrubbed, and the traceback
            # is logged without the exception's text
            log.error(  # noqa: TRY400 - the traceback follows, without the secret-bearing text
                "delivery %d: unexpected error while sending: %s\n%s",
                delivery.id,
                self._scrub(delivery, f"{type(err).__name__}: {err}"),
                "".join(traceback.format_tb(err.__traceback__)),
            )
            await self._record_failure(delivery, err)
            return
        async with self.pool.connection() as conn:
            kept = await store.mark_sent(
                conn, delivery_id=delivery.id, attempt=delivery.attempts, now=self.clock()
            )
        self.totals.sent += 1
        log.info(
            "sent delivery %d: alert %d event %d %s to %s (%s), attempt %d%s",
            delivery.id, delivery.notice.alert_id, delivery.notice.event_id, delivery.channel,
            delivery.recipient, shown_address(delivery.channel, delivery.address),
            delivery.attempts,
            "" if kept else " (claim had expired: another notifier may send it too)",
        )  # fmt: skip

    async def _record_failure(self, delivery: ClaimedDelivery, err: Exception) -> None:
        now = self.clock()
        permanent = isinstance(err, ChannelError) and err.permanent
        reason = self._scrub(
            delivery,
            str(err)
            if isinstance(err, ChannelError)
            else "timed out"
            if isinstance(err, TimeoutError)
            else f"{type(err).__name__}: {err}",
        )
        outcome = after_failure(
            attempts=delivery.attempts,
            max_attempts=self.settings.max_attempts,
            permanent=permanent,
            now=now,
            base_s=self.settings.backoff_base_s,
            cap_s=self.settings.backoff_cap_s,
        )
        async with self.pool.connection() as conn:
            await store.mark_failed(
                conn,
                delivery_id=delivery.id,
                attempt=delivery.attempts,
                now=now,
                error=reason,
                outcome=outcome,
            )
        if outcome.status == "failed":
            self.totals.failed += 1
            log.error(
                "delivery %d FAILED for good (alert %d, %s to %s) after %d attempts: %s",
                delivery.id, delivery.notice.alert_id, delivery.channel, delivery.recipient,
                delivery.attempts, reason,
            )  # fmt: skip
        else:
            self.totals.retried += 1
            log.warning(
                "delivery %d attempt %d failed, retry at %s: %s",
                delivery.id, delivery.attempts, outcome.next_attempt_at.isoformat(), reason,
            )  # fmt: skip

    def _scrub(self, delivery: ClaimedDelivery, text: str) -> str:
        """``text`` without the delivery's webhook URL or any configured secret."""
        hidden = [
            self.settings.smtp_password,
            self.settings.provider_token,
            self.settings.sms_url,
            self.settings.voice_url,
        ]
        if shown_address(delivery.channel, delivery.address) != delivery.address:
            hidden.append(delivery.address)
        return scrub(text, hidden)

    async def run_jobs(self) -> None:
        """Run the alert lifecycle's periodic jobs once (each failure logged, none fatal)."""
        for job in self.jobs:
            try:
                await job(self.pool, self.clock())
            except Exception:
                name = getattr(job, "__name__", repr(job))
                log.exception("periodic alert job %s failed; next run in %.0f s", name,
                              self.settings.jobs_interval_s)  # fmt: skip

    async def run_once(self) -> int:
        """One pass: route new events, deliver what is due; the amount of work done."""
        work = await self.route()
        work += await self.deliver_due()
        return work

    async def _jobs_loop(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        # Beside the delivery passes, so a slow sweep never delays an alert's message.
        while not stop.is_set():
            await self.run_jobs()
            wake.set()  # the jobs may have appended alert events
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.jobs_interval_s)

    async def run(self, stop: asyncio.Event, wake: asyncio.Event | None = None) -> None:
        """Pass after pass until ``stop``; idle passes wait for ``wake`` or the poll interval."""
        wake = wake or asyncio.Event()
        jobs = asyncio.create_task(self._jobs_loop(stop, wake)) if self.jobs else None
        try:
            await self._passes(stop, wake)
        finally:
            if jobs is not None:
                jobs.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await jobs

    async def _passes(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                work = await self.run_once()
            except Exception:
                log.exception("notifier pass failed; retrying")
                work = 0
            if work:
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first_of(stop, wake), timeout=self.settings.poll_interval_s)


async def _first_of(*events: asyncio.Event) -> None:
    tasks = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


async def listen_for_events(db_url: str, wake: asyncio.Event, stop: asyncio.Event) -> None:
    """Set ``wake`` whenever an alert event commits (LISTEN); reconnect on errors."""
    while not stop.is_set():
        try:
            async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {WAKE_CHANNEL}")
                while not stop.is_set():
                    async for _ in conn.notifies(timeout=1.0):
                        wake.set()
        except Exception as err:
            log.warning("LISTEN %s: %s; polling meanwhile", WAKE_CHANNEL, err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5.0)


def _zones(names: Mapping[str, str]) -> dict[str, ZoneInfo]:
    zones = {}
    for site, name in names.items():
        try:
            zones[site] = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.error("site %s: unknown time zone %r; messages show UTC only", site, name)  # noqa: TRY400 - a setting, no traceback
    return zones
