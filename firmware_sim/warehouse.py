"""A scripted warehouse: fixed barcode scanners and RFID portals that act on cue.

``coldtrace sim-warehouse`` serves one `SimulatedScanner` or `SimulatedReader` per named
device and follows a *script file*: each JSON line appended to it is one action, done as
soon as it appears, as a worker at a scanner or a pallet passing a portal would:

    {"device": "scan-f1", "scan": "]d2010400638133393117…"}
    {"device": "rfid-truck", "tag": "31…", "antenna": 1, "for_s": 3, "after_s": 5}

(``after_s``: wait that long before acting, so actions in one batch keep their order in
device time too.)

The demo appends lines when its story needs them (goods received once the fridges report,
then a pallet shipped), so what the gateway sees is timed like the real thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_sim.barcode import SimulatedScanner
from firmware_sim.lines import LineServer
from firmware_sim.rfid import SimulatedReader

log = logging.getLogger(__name__)
CONNECT_WAIT_S = 30.0
# pyserial's socket:// discards what arrived while it was opening (reset_input_buffer),
# so a device gives a newly connected gateway a moment before its first line.
SETTLE_S = 1.0


@dataclass(frozen=True, slots=True)
class Action:
    """One line of the script."""

    device: str
    scan: str | None = None
    tag: str | None = None
    antenna: int = 1
    for_s: float = 2.0
    after_s: float = 0.0


def parse_action(line: str, *, lineno: int) -> Action:
    """Parse one script line; ValueError naming the line when it is not an action."""
    try:
        raw: Any = json.loads(line)
        action = Action(**raw)
    except (ValueError, TypeError) as err:
        msg = f"script line {lineno}: {err}"
        raise ValueError(msg) from err
    if (action.scan is None) == (action.tag is None):
        msg = f"script line {lineno}: give exactly one of 'scan' or 'tag'"
        raise ValueError(msg)
    return action


def new_lines(script: Path, offset: int) -> tuple[list[str], int]:
    """The complete lines written to ``script`` after byte ``offset``, and the new offset."""
    if not script.exists():
        return [], offset
    lines: list[str] = []
    with script.open("rb") as fh:
        fh.seek(offset)
        for line in iter(fh.readline, b""):
            if not line.endswith(b"\n"):
                break  # a line still being written
            offset += len(line)
            lines.append(line.decode())
    return lines, offset


class Warehouse:
    """Named scanners and readers, served on fixed ports."""

    def __init__(self, scanners: dict[str, int], readers: dict[str, int]) -> None:
        self.scanners = {n: SimulatedScanner(n, port=p) for n, p in scanners.items()}
        self.readers = {
            n: SimulatedReader(n, port=p, read_interval_s=0.5) for n, p in readers.items()
        }
        self.done = 0
        self._settled: set[str] = set()

    async def start(self) -> None:
        """Start serving every device."""
        for scanner in self.scanners.values():
            await scanner.start()
        for reader in self.readers.values():
            await reader.start()

    async def act(self, action: Action) -> None:
        """Do one action; a device nobody has connected to yet is waited for."""
        if action.device not in self.scanners | self.readers:
            msg = f"no simulated device {action.device!r}"
            raise ValueError(msg)
        await asyncio.sleep(action.after_s)
        if action.scan is not None:
            scanner = self.scanners[action.device]
            await self._connected(action.device, scanner.server)
            await scanner.scan(action.scan)
        elif action.tag is not None:
            reader = self.readers[action.device]
            await self._connected(action.device, reader.server)
            reader.place(action.tag, action.antenna)
            await asyncio.sleep(action.for_s)
            reader.remove(action.tag, action.antenna)
        self.done += 1

    async def _connected(self, name: str, server: LineServer) -> None:
        await asyncio.wait_for(server.wait_connected(), CONNECT_WAIT_S)
        if name not in self._settled:
            await asyncio.sleep(SETTLE_S)
            self._settled.add(name)

    async def follow(self, script: Path, stop: asyncio.Event, *, poll_s: float = 0.2) -> None:
        """Do each line appended to ``script`` until ``stop``; bad lines are logged and skipped."""
        lineno, offset = 0, 0
        while not stop.is_set():
            lines, offset = await asyncio.to_thread(new_lines, script, offset)
            for line in lines:
                lineno += 1
                if not line.strip():
                    continue
                try:
                    await self.act(parse_action(line, lineno=lineno))
                except (ValueError, TimeoutError) as err:
                    log.warning("skipped: %s", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)

    async def close(self) -> None:
        """Stop every device."""
        for scanner in self.scanners.values():
            await scanner.close()
        for reader in self.readers.values():
            await reader.close()
