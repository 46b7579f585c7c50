"""A TCP server that pushes text lines to every connected client (scanner, RFID reader).

Both the simulated barcode scanner (read by the gateway through pyserial's
``socket://`` URL) and the simulated RFID reader (newline-delimited JSON) are, on the
wire, a stream of lines from device to gateway. This is that stream: `send` queues
a line for every client connected now; clients that hang up are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib

from firmware_sim.errors import BindError


class LineServer:
    """Serves lines to connected clients on ``host``:``port`` (port 0 = pick a free one)."""

    def __init__(self, name: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._connected = asyncio.Event()

    async def start(self) -> int:
        """Start listening; return the port."""
        try:
            self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        except OSError as err:
            raise BindError(self.name, self.host, self.port) from err
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _on_client(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        self._connected.set()

    async def wait_connected(self) -> None:
        """Wait until at least one client is connected (the caller bounds the wait)."""
        await self._connected.wait()

    @property
    def clients(self) -> int:
        """How many clients are connected."""
        return len(self._clients)

    async def send(self, data: bytes) -> None:
        """Send ``data`` (one or more whole lines) to every connected client."""
        for writer in list(self._clients):
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                self._clients.discard(writer)
                writer.close()

    async def close(self) -> None:
        """Disconnect every client and stop listening."""
        for writer in list(self._clients):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
        self._clients.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
