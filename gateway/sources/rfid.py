"""RFID reader source: newline-delimited JSON tag events over TCP (docs/edge-devices.md).

A reader (or the middleware in front of it) serves one JSON object per line:
``{"epc": "<hex>", "antenna": 1, "rssi": -52.5, "t": <ms since epoch>}``; ``rssi`` and
``t`` are optional (without ``t`` the gateway clock is used), unknown fields are
ignored. Readers report a tag in the field many times a second, so repeated reads
of one tag on one antenna within ``collapse_window_s`` become one read
(`gateway.tag_reads.collapse_and_forget`). SGTIN-96 and SSCC-96 EPCs are decoded to GTIN +
serial and SSCC on the way; other EPCs are kept raw. Readers that speak LLRP are
read by `gateway.sources.llrp` (``protocol: llrp``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import msgspec

from gateway.config import RfidReader
from gateway.errors import SourceError
from gateway.flow import Backoff
from gateway.sources.base import Clock, EventSink, Health, Sink, millis
from gateway.tag_reads import TagRead, collapse_and_forget
from identifiers.epc import EpcError, decode_epc, epc_hex
from telemetry.payloads import SourceState, TagItem
from telemetry.topics import Kind

log = logging.getLogger(__name__)

MAX_LINE = 4096
MAX_MILLIS = 2**53  # the wire contract's largest time (telemetry.payloads.Millis)


class ReaderEvent(msgspec.Struct, frozen=True):
    """One line of the reader's JSON stream."""

    epc: Annotated[str, msgspec.Meta(min_length=2, max_length=124)]
    antenna: Annotated[int, msgspec.Meta(ge=0, le=255)]
    rssi: float | None = None
    t: Annotated[int, msgspec.Meta(ge=0, le=MAX_MILLIS)] | None = None


_event_decoder = msgspec.json.Decoder(ReaderEvent)


def parse_event(line: bytes, *, reader: str, now_ms: int) -> TagRead:
    """Parse one JSON line into a `TagRead`; raise `EpcError` with the reason if unusable."""
    try:
        event = _event_decoder.decode(line)
    except msgspec.DecodeError as err:
        raise EpcError(f"not a tag event: {err}") from None
    except RecursionError:  # msgspec's answer to deeply nested JSON within MAX_LINE
        raise EpcError("not a tag event: nested too deeply") from None
    epc = epc_hex(event.epc)  # validates the hex; tag_item decodes what it can
    t_ms = event.t if event.t is not None else now_ms
    return TagRead(t_ms=t_ms, reader=reader, antenna=event.antenna, epc=epc, rssi=event.rssi)


def tag_item(read: TagRead) -> TagItem:
    """Build the wire item of a tag read, with GTIN/serial or SSCC where the EPC has them."""
    try:
        epc = decode_epc(read.epc)
    except EpcError:
        epc = None  # a broken SGTIN/SSCC is still a read of that tag; keep it raw
    return TagItem(
        t=read.t_ms,
        reader=read.reader,
        antenna=read.antenna,
        epc=read.epc,
        rssi=read.rssi,
        scheme=epc.scheme if epc else None,
        uri=epc.uri if epc else None,
        gtin=epc.gtin if epc else None,
        serial=epc.serial if epc else None,
        sscc=epc.sscc if epc else None,
    )


class RfidSource:
    """Connects to one reader's JSON stream and delivers collapsed tag reads."""

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

    def accept(self, lines: list[bytes]) -> list[TagItem]:
        """Parse and collapse a burst of lines; bad lines are logged and skipped."""
        now_ms = millis(self._clock)
        reads: list[TagRead] = []
        for line in lines:
            try:
                reads.append(parse_event(line, reader=self.name, now_ms=now_ms))
            except EpcError as err:
                log.warning("reader %s sent a bad line (%s): %r", self.name, err.reason, line[:200])
                self._health.failed(f"bad line: {err.reason}")
        window_ms = int(self._device.collapse_window_s * 1000)
        kept = collapse_and_forget(reads, window_ms=window_ms, last_kept=self._last_kept)
        return [tag_item(r) for r in kept]

    async def run(self, _sink: Sink) -> None:
        """Read the stream forever; reconnect with backoff when it fails or goes silent."""
        backoff = Backoff(initial=1.0, cap=30.0)
        device = self._device
        while True:
            try:
                await self._session(backoff)
            except (OSError, TimeoutError, SourceError) as err:
                reason = f"{device.host}:{device.port}: {str(err) or type(err).__name__}"
                self._health.failed(reason)
                delay = backoff.next_delay()
                log.warning("reader %s: %s; reconnecting in %.1f s", self.name, reason, delay)
                await asyncio.sleep(delay)

    async def _session(self, backoff: Backoff) -> None:
        device = self._device
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        async with asyncio.timeout(device.timeout_s):
            reader, writer = await asyncio.open_connection(device.host, device.port, limit=MAX_LINE)
        backoff.reset()
        self._health.succeeded(millis(self._clock))
        try:
            while True:
                try:
                    async with asyncio.timeout(device.timeout_s):
                        line = await reader.readline()
                except ValueError as err:  # a line over the limit
                    raise SourceError(self.name, f"line longer than {MAX_LINE} bytes") from err
                if not line:
                    raise SourceError(self.name, "reader closed the connection")
                items = self.accept([line.strip()] if line.strip() else [])
                if items:
                    self._events(Kind.TAGS, items)
                if self._health.error is None or items:
                    self._health.succeeded(millis(self._clock))
        finally:
            writer.close()
