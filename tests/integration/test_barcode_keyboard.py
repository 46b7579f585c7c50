"""Keyboard-wedge scanners: a USB scanner in keyboard mode types scans + Enter into a terminal.

A pseudo-terminal stands in for the console: the test writes to its master side what
the terminal receives when the scanner "types" (Enter arrives as CR; GS as Ctrl-]),
and the gateway's barcode source reads the slave side, either as a tty device path or
as its own standard input (in a child process, as ``coldtrace gateway run`` would).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.config import BarcodeScanner, parse_config
from gateway.errors import ConfigError
from gateway.sources.barcode import BarcodeSource
from telemetry.payloads import ScanItem, TagItem
from telemetry.topics import Kind

pytestmark = pytest.mark.timeout(60)

GS = "\x1d"
GS1 = "]d2" + "0104012345678901" + "17270600" + "10" + "LOT-7" + GS + "21" + "SN1"
HIBC = "+A123BJC5D6E71G"
REPO = Path(__file__).resolve().parents[2]


def typed(text: str) -> bytes:
    """What a terminal receives when a keyboard-mode scanner types ``text`` and Enter."""
    return (text + "\r").encode("latin-1")


def test_scans_typed_into_a_terminal_are_read_without_echo_and_settings_restored() -> None:
    master, slave = os.openpty()  # a fresh pty is in cooked mode, echo on, like a console
    path = os.ttyname(slave)
    before = termios.tcgetattr(slave)
    got: list[ScanItem] = []

    def sink(kind: Kind, items: Sequence[TagItem | ScanItem]) -> None:
        assert kind is Kind.SCANS
        got.extend(i for i in items if isinstance(i, ScanItem))

    async def main() -> None:
        source = BarcodeSource(
            BarcodeScanner(name="desk-1", keyboard=path), events=sink, clock=time.time
        )
        task = asyncio.create_task(source.run(lambda _: None))
        try:
            deadline = time.monotonic() + 5
            while termios.tcgetattr(slave)[3] & termios.ECHO:  # wait for scanner mode
                assert time.monotonic() < deadline, "the terminal was not switched"
                await asyncio.sleep(0.02)
            os.write(master, typed(GS1))
            os.write(master, typed(HIBC)[:5])  # a scan may arrive in pieces
            await asyncio.sleep(0.2)
            os.write(master, typed(HIBC)[5:])
            deadline = time.monotonic() + 10
            while len(got) < 2:
                assert time.monotonic() < deadline, f"got {got}"
                await asyncio.sleep(0.05)
            assert source.status().ok
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    try:
        asyncio.run(main())
        echoed, _, _ = select.select([master], [], [], 0.2)
        assert not echoed, "the scans were echoed to the terminal"
        assert termios.tcgetattr(slave) == before  # the console is as it was
    finally:
        os.close(master)
        os.close(slave)
    assert [s.data for s in got] == [GS1, HIBC]  # GS kept, no CR/LF
    assert (got[0].ok, got[0].gtin, got[0].lot, got[0].serial) == (
        True,
        "04012345678901",
        "LOT-7",
        "SN1",
    )
    assert (got[1].ok, got[1].scheme) == (True, "hibc")


CHILD = """
import asyncio, json, sys, time
from gateway.config import BarcodeScanner
from gateway.sources.barcode import BarcodeSource

def sink(kind, items):
    for item in items:
        print(json.dumps({"data": item.data, "ok": item.ok, "gtin": item.gtin}), flush=True)

async def main():
    scanner = BarcodeScanner(name="desk-2", keyboard="-")
    source = BarcodeSource(scanner, events=sink, clock=time.time)
    await source.run(lambda _: None)

print("ready", flush=True)
asyncio.run(main())
"""


def test_scans_typed_into_the_gateways_stdin_are_read() -> None:
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=slave,
        stdout=subprocess.PIPE,
        cwd=REPO,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 5
        while termios.tcgetattr(slave)[3] & termios.ICANON:
            assert time.monotonic() < deadline, "stdin was not switched to scanner mode"
            time.sleep(0.02)
        os.write(master, typed(GS1))
        os.write(master, typed("\x03not a label"))  # Ctrl-C typed by a scanner is data
        lines = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert proc.poll() is None, "a typed Ctrl-C must not stop the gateway"
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(master)
        os.close(slave)
    assert lines[0] == {"data": GS1, "ok": True, "gtin": "04012345678901"}
    assert lines[1]["data"] == "\x03not a label"
    assert lines[1]["ok"] is False


def test_a_scanner_needs_exactly_one_input(tmp_path: Path) -> None:
    base = "gateway: {id: g, site: s}\nmqtt: {host: h}\noutbox: {path: o.sqlite}\nbarcode:\n"
    for entry in ("  - {name: a}\n", "  - {name: a, url: /dev/ttyACM0, keyboard: '-'}\n"):
        with pytest.raises(ConfigError) as info:
            parse_config(base + entry, path=tmp_path / "gw.yaml")
        [issue] = info.value.issues
        assert (issue.field, issue.line) == ("barcode[0]", 5)
        assert "'keyboard'" in issue.message
    cfg = parse_config(base + "  - {name: a, keyboard: /dev/tty2}\n", path=tmp_path / "gw.yaml")
    assert (cfg.barcode[0].keyboard, cfg.barcode[0].url) == ("/dev/tty2", None)
