"""RFID reader source speaking LLRP to a fixed reader, through sllurp (docs/edge-devices.md).

Many fixed readers (Impinj, Zebra FX, Kathrein, …) speak only LLRP, the EPCglobal
reader protocol, on TCP port 5084. sllurp's `LLRPReaderClient` does the protocol: it
configures the reader, adds an inventory ROSpec on all antennas that reports the
antenna id, peak RSSI and first-seen time of every tag, and calls back on its own
socket thread. This module is the thin adapter around it: the callbacks only hand
events to the gateway's event loop (``call_soon_threadsafe``), where tag reports
take the same path as the JSON source's reads — `TagRead`, the collapse window,
`gateway.sources.rfid.tag_item`, the event sink. sllurp's errors become
`SourceError`; a lost or silent reader (no report and no keepalive for
``timeout_s``) is reconnected with backoff, forever, with a fresh client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from sllurp.llrp import LLRPReaderClient, LLRPReaderConfig, LLRPReaderState
from sllurp.llrp_errors import LLRPError

from gateway.config import RfidReader
from gateway.errors import SourceError
from gateway.flow import Backoff
from gateway.sources.base import Clock, EventSink, Health, Sink, millis
from gateway.sources.rfid import MAX_MILLIS, tag_item
from gateway.tag_reads import TagRead, collapse_and_forget
from identifiers.epc import EpcError, epc_hex
from telemetry.payloads import SourceState, TagItem
from telemetry.topics import Kind

log = logging.getLogger(__name__)

MAX_ANTENNA = 255
EventKind = Literal["ready", "tags", "alive", "lost"]
Event = tuple[EventKind, Sequence[Mapping[str, Any]]]


def reader_config(timeout_s: float) -> LLRPReaderConfig:
    """The sllurp settings: inventory on all antennas (0), report antenna, RSSI, first seen."""
    return LLRPReaderConfig(
        {
            "antennas": [0],
            # a report per tag observation: the AISpec ends after each tag and the ROSpec
            # (no stop trigger) runs it again; with sllurp's default N = 0 a reader may
            # report only at the end of an AISpec that never ends
            "report_every_n_tags": 1,
            "tag_content_selector": {
                "EnableAntennaID": True,
                "EnablePeakRSSI": True,
                "EnableFirstSeenTimestamp": True,
            },
            # the reader says it is alive three times per timeout
            "keepalive_interval": max(100, int(timeout_s * 1000 / 3)),
            "reconnect": False,  # reconnecting is this module's loop, with backoff
        }
    )


def tag_read(tag: Mapping[str, Any], *, reader: str, now_ms: int) -> TagRead:
    """Turn one sllurp TagReportData dict into a `TagRead`; raise `EpcError` if unusable."""
    raw = tag.get("EPC", tag.get("EPC-96"))
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("ascii", "replace")
    if not isinstance(raw, str):
        raise EpcError("tag report without an EPC")
    epc = epc_hex(raw)  # validates the hex; tag_item decodes what it can
    antenna = tag.get("AntennaID", 0)
    # LLRP antenna ids are 16-bit; the wire (like the JSON source) carries 0-255
    if not isinstance(antenna, int) or not 0 <= antenna <= MAX_ANTENNA:
        raise EpcError(f"antenna id {antenna!r} is not 0-{MAX_ANTENNA}")
    first_seen_us = tag.get("FirstSeenTimestampUTC")
    # a reader clock beyond what the wire carries is no clock: the gateway's time then
    t_ms = now_ms
    if isinstance(first_seen_us, int) and 0 <= first_seen_us // 1000 <= MAX_MILLIS:
        t_ms = first_seen_us // 1000
    rssi = tag.get("PeakRSSI")
    return TagRead(
        t_ms=t_ms,
        reader=reader,
        antenna=antenna,
        epc=epc,
        rssi=float(rssi) if isinstance(rssi, int | float) and math.isfinite(rssi) else None,
    )


class LlrpSource:
    """Keeps an LLRP session with one reader and delivers collapsed tag reads."""

    def __init__(self, device: RfidReader, *, events: EventSink, clock: Clock) -> None:
        self._device = device
        self._events = events
        self._clock = clock
        self._health = Health(device.name)
        self._last_kept: dict[tuple[str, int, str], int] = {}

    @property
    def name(self) -> str:
        """The reader name from the config."""
        return self._device.name

    def status(self) -> SourceState:
        """Last event and last error."""
        return self._health.snapshot()

    def accept(self, report: Sequence[Mapping[str, Any]]) -> list[TagItem]:
        """Convert and collapse one tag report; unusable entries are logged and skipped."""
        now_ms = millis(self._clock)
        reads: list[TagRead] = []
        for tag in report:
            try:
                reads.append(tag_read(tag, reader=self.name, now_ms=now_ms))
            except EpcError as err:
                log.warning("reader %s sent a bad tag report (%s)", self.name, err.reason)
                self._health.failed(f"bad tag report: {err.reason}")
        window_ms = int(self._device.collapse_window_s * 1000)
        kept = collapse_and_forget(reads, window_ms=window_ms, last_kept=self._last_kept)
        return [tag_item(r) for r in kept]

    async def run(self, _sink: Sink) -> None:
        """Keep a session forever; reconnect with backoff when it fails or goes silent."""
        backoff = Backoff(initial=1.0, cap=30.0)
        device = self._device
        while True:
            try:
                await self._session(backoff)
            except (OSError, SourceError) as err:
                reason = f"{device.host}:{device.port}: {str(err) or type(err).__name__}"
                self._health.failed(reason)
                delay = backoff.next_delay()
                log.warning("reader %s: %s; reconnecting in %.1f s", self.name, reason, delay)
                await asyncio.sleep(delay)

    async def _session(self, backoff: Backoff) -> None:
        device = self._device
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def post(event: Event) -> None:  # called on sllurp's thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: the gateway stopped
                loop.call_soon_threadsafe(queue.put_nowait, event)

        try:
            client = LLRPReaderClient(
                device.host, device.port, reader_config(device.timeout_s), device.timeout_s
            )
        except LLRPError as err:
            raise SourceError(self.name, f"LLRP settings rejected: {err}") from err
        ready = LLRPReaderState.STATE_INVENTORYING
        client.add_state_callback(ready, lambda _client, _state: post(("ready", ())))
        client.add_tag_report_callback(lambda _client, tags: post(("tags", tags)))
        client.add_message_callback("KEEPALIVE", lambda _client, _msg: post(("alive", ())))
        client.add_disconnected_callback(lambda _client: post(("lost", ())))
        try:
            await _connect(client, self.name)
            await self._receive(queue, backoff)
        finally:
            client.disconnect_requested.set()
            client.hard_disconnect()  # ends sllurp's thread; the next connect resets the reader

    async def _receive(self, queue: asyncio.Queue[Event], backoff: Backoff) -> None:
        timeout_s = self._device.timeout_s
        ready = False
        while True:
            try:
                async with asyncio.timeout(timeout_s):
                    kind, payload = await queue.get()
            except TimeoutError as err:
                what = "report or keepalive" if ready else "inventory started"
                raise SourceError(self.name, f"no {what} for {timeout_s:g} s") from err
            if kind == "lost":
                raise SourceError(self.name, "reader closed the connection or refused the setup")
            if kind == "ready" and not ready:
                ready = True
                backoff.reset()
                log.info("reader %s: LLRP inventory running", self.name)
            items = self.accept(payload) if kind == "tags" else []
            if items:
                self._events(Kind.TAGS, items)
            if ready and (self._health.error is None or items or kind != "tags"):
                self._health.succeeded(millis(self._clock))


async def _connect(client: LLRPReaderClient, name: str) -> None:
    """Open the TCP connection (blocking in sllurp) in a worker thread; close it if cancelled."""
    connecting = asyncio.ensure_future(asyncio.to_thread(client.connect))
    try:
        await asyncio.shield(connecting)
    except asyncio.CancelledError:
        # once connected (not failed, not cancelled), close what the thread opened
        connecting.add_done_callback(
            lambda f: f.cancelled() or f.exception() or client.hard_disconnect()
        )
        raise
    except LLRPError as err:
        raise SourceError(name, f"cannot connect: {err}") from err
