"""A simulated RFID reader serving the newline-delimited JSON tag stream.

Tags placed in the field of an antenna are reported every ``read_interval_s`` with a
jittered RSSI and the reader's clock, one JSON object per line, in the format the
gateway accepts (docs/edge-devices.md): ``{"epc", "antenna", "rssi", "t"}``. Like a
real reader it reports a tag again and again while it stays in the field; the
gateway collapses the repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable

from firmware_sim.lines import LineServer


class SimulatedReader:
    """An RFID reader with antennas; `place` and `remove` move tags in and out of the field."""

    def __init__(  # noqa: PLR0913 - keyword-only settings of a simulated device
        self,
        name: str = "reader",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        read_interval_s: float = 0.1,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.server = LineServer(name, host=host, port=port)
        self.read_interval_s = read_interval_s
        self.clock = clock
        self.rng = rng or random.Random(0)  # noqa: S311 - simulated noise
        self.field: dict[tuple[str, int], float] = {}  # (epc, antenna) -> mean rssi
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Start serving and reading; return the port."""
        port = await self.server.start()
        self._task = asyncio.create_task(self._run())
        return port

    def place(self, epc: str, antenna: int, *, rssi: float = -55.0) -> None:
        """Put a tag in the field of ``antenna``."""
        self.field[(epc.upper(), antenna)] = rssi

    def remove(self, epc: str, antenna: int) -> None:
        """Take a tag out of the field of ``antenna``."""
        self.field.pop((epc.upper(), antenna), None)

    def event(self, epc: str, antenna: int, rssi: float) -> bytes:
        """One line of the stream."""
        t_ms = int(self.clock() * 1000)
        jitter = round(rssi + self.rng.uniform(-3, 3), 1)
        return json.dumps({"epc": epc, "antenna": antenna, "rssi": jitter, "t": t_ms}).encode()

    async def _run(self) -> None:
        while True:
            if self.server.clients:
                lines = [self.event(e, a, r) for (e, a), r in list(self.field.items())]
                if lines:
                    await self.server.send(b"\n".join(lines) + b"\n")
                    self.sent += len(lines)
            await asyncio.sleep(self.read_interval_s)

    async def close(self) -> None:
        """Stop reading and serving."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.server.close()
