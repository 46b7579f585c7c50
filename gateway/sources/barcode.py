"""Barcode scanner source: one scan per line from a serial port, a pyserial URL or a terminal.

Scanners in USB-CDC / RS-232 mode are serial ports; pyserial's ``serial_for_url`` also
opens ``socket://host:port`` and ``rfc2217://`` (serial-over-network servers, and the
simulated scanner). Scanners in USB keyboard mode type into a terminal or the
gateway's stdin, read through `gateway.sources.keyboard.KeyboardInput`. A line ends
at CR or LF; GS (0x1D, FNC1) and a leading AIM symbology identifier (``]C1``,
``]d2``) are kept as the scanner sends them. Every line becomes a scan record:
decoded as GS1, HIBC or MA by the pure `identifiers.udi`, or, if it is not a valid
label, recorded as a failed scan with the reason (a rejected label at goods-in is
evidence too). Scanners have no clock: time is the gateway's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import termios
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

import serial

from gateway.config import BarcodeScanner
from gateway.errors import SourceError
from gateway.flow import Backoff
from gateway.sources.base import Clock, EventSink, Health, Sink, millis
from gateway.sources.keyboard import KeyboardInput
from identifiers.udi import BarcodeError, Label, decode_label
from telemetry.payloads import ScanItem, SourceState
from telemetry.topics import Kind

log = logging.getLogger(__name__)


class LineInput(Protocol):
    """What scans are read from: a pyserial port or a `KeyboardInput`."""

    def read(self, size: int) -> bytes:
        """Return up to ``size`` bytes, b"" after a short silence."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


MAX_LINE = 1024
MAX_FIELD = 128  # the wire contract's limit on a decoded field (lot, serial, …)
T = TypeVar("T")
_LINE_END = re.compile(rb"[\r\n]")


def scan_item(line: str, *, scanner: str, t_ms: int) -> ScanItem:
    """Turn one scanned line into a scan record, ok or failed with the reason."""
    data = line[:MAX_LINE]
    try:
        label = decode_label(data)
    except BarcodeError as err:
        return ScanItem(t=t_ms, scanner=scanner, data=data, ok=False, reason=err.reason[:512])
    if (too_long := _too_long(label)) is not None:
        return ScanItem(t=t_ms, scanner=scanner, data=data, ok=False, reason=too_long)
    return ScanItem(
        t=t_ms,
        scanner=scanner,
        data=data,
        ok=True,
        scheme=label.scheme.value,
        di=label.di,
        gtin=label.gtin,
        sscc=label.sscc,
        lot=label.lot,
        serial=label.serial,
        expiry=label.expiry.isoformat() if label.expiry else None,
        production=label.production.isoformat() if label.production else None,
    )


def _too_long(label: Label) -> str | None:
    """Why a decoded field does not fit the record, or None.

    An MA code's lot and serial have no length limit, the wire's fields do: the scan is
    recorded as failed with its data, since a truncated lot would be a wrong one.
    """
    for name, value in (("di", label.di), ("lot", label.lot), ("serial", label.serial)):
        if value is not None and len(value) > MAX_FIELD:
            return f"{name} has {len(value)} characters, more than the {MAX_FIELD} a record holds"
    return None


def split_lines(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Split complete lines (CR, LF or CRLF ended) off ``buffer``; return them and the rest."""
    parts = _LINE_END.split(buffer)
    rest = parts.pop()
    return [p for p in parts if p], rest


class BarcodeSource:
    """Reads one scanner and delivers each scan to the event sink."""

    def __init__(self, device: BarcodeScanner, *, events: EventSink, clock: Clock) -> None:
        self._device = device
        self._events = events
        self._clock = clock
        self._health = Health(device.name)

    @property
    def name(self) -> str:
        """The scanner name from the config."""
        return self._device.name

    def status(self) -> SourceState:
        """Last scan and last error."""
        return self._health.snapshot()

    @property
    def _where(self) -> str:
        device = self._device
        return f"keyboard {device.keyboard}" if device.keyboard is not None else str(device.url)

    def _open(self) -> LineInput:
        device = self._device
        try:
            if device.keyboard is not None:
                return KeyboardInput(device.keyboard)
            return cast(
                "LineInput",
                serial.serial_for_url(device.url, baudrate=device.baudrate, timeout=0.5),
            )
        except (serial.SerialException, OSError, ValueError, termios.error) as err:
            raise SourceError(self.name, f"cannot open {self._where}: {err}") from err

    async def run(self, _sink: Sink) -> None:
        """Read scans forever; reopen the port with backoff when it fails."""
        backoff = Backoff(initial=1.0, cap=30.0)
        while True:
            try:
                port = await _finish_in_thread(self._open, undo=lambda p: p.close())
                self._health.succeeded(millis(self._clock))
                backoff.reset()
                try:
                    await self._read(port)
                finally:
                    port.close()
            except SourceError as err:
                self._health.failed(err.reason)
                delay = backoff.next_delay()
                log.warning("%s; retrying in %.1f s", err, delay)
                await asyncio.sleep(delay)

    async def _read(self, port: LineInput) -> None:
        buffer = b""
        while True:
            try:
                chunk = await _finish_in_thread(port.read, 256)
            except (serial.SerialException, OSError, EOFError) as err:
                raise SourceError(self.name, f"{self._where}: {err}") from err
            if not chunk:
                continue
            lines, buffer = split_lines(buffer + chunk)
            if len(buffer) > MAX_LINE:
                lines.append(buffer)
                buffer = b""
            if lines:
                t_ms = millis(self._clock)
                items = [
                    scan_item(raw.decode("latin-1"), scanner=self.name, t_ms=t_ms) for raw in lines
                ]
                self._events(Kind.SCANS, items)
                self._health.succeeded(t_ms)


async def _finish_in_thread(
    fn: Callable[..., T], *args: Any, undo: Callable[[T], None] | None = None
) -> T:
    """Run ``fn`` in a thread; if cancelled, let it finish (then ``undo`` its result), re-raise.

    A read or open still running in its thread when the source stops would otherwise
    race the close: a port or terminal opened after the close is never closed (a
    terminal left without echo), and a read of a closed descriptor may read whatever
    file reuses its number. Reads return within their poll timeout (0.5 s).
    """
    running = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            result = await running
            if undo is not None:
                undo(result)
        raise
