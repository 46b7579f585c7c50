"""A barcode source that stops never closes its input under a running read, nor leaks one."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import ClassVar

import pytest

import gateway.sources.barcode as barcode
from gateway.config import BarcodeScanner
from gateway.sources.barcode import BarcodeSource


class SlowInput:
    """A terminal whose open and reads take a while, as a select() with a timeout does."""

    open_s: ClassVar[float] = 0.0
    opened: ClassVar[list[SlowInput]] = []

    def __init__(self, path: str) -> None:
        time.sleep(self.open_s)
        self.path = path
        self.reading = threading.Event()
        self.closed = False
        self.closed_while_reading = False
        SlowInput.opened.append(self)

    def read(self, _size: int) -> bytes:
        self.reading.set()
        time.sleep(0.3)
        self.reading.clear()
        return b""

    def close(self) -> None:
        self.closed_while_reading = self.reading.is_set()
        self.closed = True


@pytest.fixture
def slow_input(monkeypatch: pytest.MonkeyPatch) -> type[SlowInput]:
    SlowInput.opened = []
    SlowInput.open_s = 0.0
    monkeypatch.setattr(barcode, "KeyboardInput", SlowInput)
    return SlowInput


def source() -> BarcodeSource:
    scanner = BarcodeScanner(name="desk-1", keyboard="/dev/tty9")
    return BarcodeSource(scanner, events=lambda _k, _i: None, clock=time.time)


async def run_then_cancel(after_s: float) -> None:
    task = asyncio.create_task(source().run(lambda _r: None))
    await asyncio.sleep(after_s)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_stop_during_a_read_closes_the_input_after_the_read(slow_input: type[SlowInput]) -> None:
    asyncio.run(run_then_cancel(0.15))
    [opened] = slow_input.opened
    assert opened.closed
    assert not opened.closed_while_reading


def test_stop_during_the_open_still_closes_what_was_opened(slow_input: type[SlowInput]) -> None:
    slow_input.open_s = 0.3
    asyncio.run(run_then_cancel(0.1))
    [opened] = slow_input.opened
    assert opened.closed  # a terminal left in scanner mode otherwise
