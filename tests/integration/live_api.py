"""The real app served by a real uvicorn in a thread, and HTTP clients from chosen addresses.

For tests of what only a real server shows: concurrency against the real pool, streamed
request bodies, client addresses. Linux accepts any 127.0.0.0/8 address as a source, so
``client(source="127.0.0.2")`` is a second machine as far as the server can tell.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from coldtrace.broker import free_port


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free port until the block ends; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def client(base_url: str, *, source: str = "127.0.0.1", timeout: float = 30.0) -> httpx.Client:
    """An HTTP client whose connections come from ``source``."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=base_url, transport=transport, timeout=timeout)
