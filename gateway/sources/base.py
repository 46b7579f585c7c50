"""What a source (Modbus poller, BLE scanner, RFID reader, …) looks like to the gateway.

The app runs every source the same way: it hands each one a sink that stores readings
in the outbox, and asks each one for its health for the state topic. A new protocol is
a new module with a class that fits `Source`; nothing else in the gateway changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from telemetry.payloads import Reading, ScanItem, SourceState, TagItem
from telemetry.topics import Kind

Clock = Callable[[], float]
"""Wall-clock seconds since the Unix epoch (``time.time`` in production)."""

Sink = Callable[[Sequence[Reading]], None]
"""Where a source delivers readings; returns once they are durable in the outbox."""

EventSink = Callable[[Kind, Sequence[TagItem | ScanItem]], None]
"""Where RFID and barcode sources deliver items; returns once they are durable."""


def millis(clock: Clock) -> int:
    """Return the clock's time in integer milliseconds, as the wire carries it."""
    return int(clock() * 1000)


class Source(Protocol):
    """One device or reader that produces readings."""

    @property
    def name(self) -> str:
        """Unique name of the source in the gateway config."""
        ...

    def status(self) -> SourceState:
        """Return the current health, for the gateway state topic."""
        ...

    async def run(self, sink: Sink) -> None:
        """Produce readings into ``sink`` until cancelled; retry device failures inside."""
        ...


@dataclass
class Health:
    """The health record a source keeps up to date; `snapshot` is what is published."""

    name: str
    ok: bool = False
    last_seen: int | None = None
    error: str | None = None
    failures: int = 0

    def succeeded(self, t_ms: int) -> None:
        """Record a successful read at ``t_ms``."""
        self.ok = True
        self.last_seen = t_ms
        self.error = None
        self.failures = 0

    def failed(self, reason: str) -> None:
        """Record a failed attempt and why."""
        self.ok = False
        self.error = reason
        self.failures += 1

    def snapshot(self) -> SourceState:
        """Return the wire form of this record."""
        return SourceState(name=self.name, ok=self.ok, last_seen=self.last_seen, error=self.error)
