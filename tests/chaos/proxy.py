"""A TCP proxy on loopback that can cut a client off from its server, silently.

``cut()`` is a network that stops carrying packets (a cable pulled, a VPN down): bytes
from either side are read and dropped, connections stay open, new ones are accepted and
then ignored, so each side only finds out through its own keepalive. ``heal()`` closes
whatever was opened before or during the cut and carries new connections again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

from coldtrace.broker import free_port


@dataclass
class CuttableProxy:
    """Forwards 127.0.0.1:``port`` to ``target_port``; may be cut and healed."""

    target_port: int
    port: int = field(default_factory=free_port)
    _cut: threading.Event = field(default_factory=threading.Event)
    _socks: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socket.socket | None = None

    def start(self) -> None:
        """Listen and forward in daemon threads."""
        server = socket.create_server(("127.0.0.1", self.port))
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._socks.extend(socks)

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            self._track(client)
            if self._cut.is_set():  # held open, never answered
                threading.Thread(target=self._pump, args=(client, None), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._track(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket | None) -> None:
        try:
            while data := src.recv(65536):
                if dst is not None and not self._cut.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Stop carrying bytes, without closing anything."""
        self._cut.set()

    def heal(self) -> None:
        """Close every connection made so far and carry new ones again."""
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._cut.clear()

    def stop(self) -> None:
        """Stop listening and close everything."""
        if self._server is not None:
            self._server.close()
        self.heal()
