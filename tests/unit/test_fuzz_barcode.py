"""Fuzzing barcode scanner lines: the scheme dispatch, scan records, line splitting, keyboard.

Contracts:

- ``decode_label(text: str) -> Label`` picks GS1, HIBC or MA from the data; anything
  else raises ``BarcodeError``, and nothing else.
- ``scan_item(line, scanner=, t_ms=) -> ScanItem`` never raises: a scan that is not
  a label is a failed scan with its reason. Every record it returns is one the wire
  contract's ``ScanItem`` accepts (data ≤ 1024, reason ≤ 512, decoded fields ≤ 128
  characters, ISO dates), so ingest stores it instead of dead-lettering it.
- ``split_lines(buffer) -> (lines, rest)`` splits CR/LF/CRLF-ended lines whatever the
  chunks a serial port delivers.
- ``KeyboardInput`` (a terminal in scanner mode) delivers every byte typed, control
  characters included, as typed.

Scanners send bytes; the gateway reads them as Latin-1 (every byte is a character),
so the line strategies here are arbitrary bytes decoded that way, and also arbitrary
text (surrogates, non-ASCII digits) for the pure decoders.
"""

from __future__ import annotations

import os
import re
import time

import msgspec
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.sources.barcode import MAX_LINE, scan_item, split_lines
from gateway.sources.keyboard import KeyboardInput
from identifiers.udi import BarcodeError, decode_label
from telemetry.payloads import ScanItem
from tests.fuzz_support import (
    assert_scales_linearly,
    encoded,
    fuzz_settings,
    hostile_text,
    invalid_utf8,
    mutated,
)

GS = "\x1d"
OWN = "0123456789+$/.%]Cd2MA.ABCLSE" + GS
LABELS = st.sampled_from(
    [
        "]d2" + "0104012345678901" + "17270600" + "10" + "LOT-7" + GS + "21" + "SN1",
        "+A123BJC5D6E71G",
        "+A99912345/$$52001510X33",
        "MA.156.M0.100761.21234561.LAB12.E260131",
    ]
)
T = 1_764_000_000_000


def _wire_valid(item: ScanItem) -> None:
    """The record survives the wire contract's own validation, and its rule ok ⇔ no reason."""
    again = msgspec.json.decode(msgspec.json.encode(item), type=ScanItem)
    assert again == item
    assert item.ok == (item.reason is None)


@fuzz_settings()
@given(st.one_of(hostile_text(OWN), mutated(LABELS, OWN)))
def test_any_text_is_a_label_or_a_barcode_error(text: str) -> None:
    try:
        decode_label(text)
    except BarcodeError as err:
        assert err.reason  # noqa: PT017 - either outcome is fine; a refusal has a reason


@fuzz_settings()
@given(st.one_of(st.binary(max_size=200), invalid_utf8(), mutated(LABELS, OWN).map(encoded)))
def test_every_scanned_line_becomes_a_wire_valid_scan_record(raw: bytes) -> None:
    # as BarcodeSource reads a port: bytes, split into lines, each decoded as Latin-1
    lines, rest = split_lines(raw)
    for line in [*lines, rest]:
        _wire_valid(scan_item(line.decode("latin-1"), scanner="dock-1", t_ms=T))


@fuzz_settings()
@given(hostile_text(OWN, max_size=300, surrogates=False))
@example("MA.156.M0.100761.21234561.L" + "A" * 200)  # was ok with a 200-character lot,
# which the wire's 128-character limit refused: the scan was dead-lettered at ingest
@example("MA.156.M0.100761.21234561.S" + "7" * 129)
def test_every_text_becomes_a_wire_valid_scan_record(text: str) -> None:
    # text as a line reaches scan_item: decoded from bytes, so without lone surrogates
    _wire_valid(scan_item(text, scanner="dock-1", t_ms=T))


def test_a_label_field_longer_than_the_record_holds_is_a_failed_scan_with_its_data() -> None:
    data = "MA.156.M0.100761.21234561.L" + "A" * 200
    item = scan_item(data, scanner="dock-1", t_ms=T)
    assert (item.ok, item.data, item.lot) == (False, data, None)
    assert item.reason is not None
    assert "lot" in item.reason


def test_huge_lines_take_linear_time() -> None:
    assert_scales_linearly(
        lambda n: scan_item("]d201" + "0" * n, scanner="s", t_ms=T), 100_000
    )  # cut to 1024 characters, then refused or decoded
    assert_scales_linearly(lambda n: split_lines(b"ab\r\n" * n), 20_000)


@fuzz_settings()
@given(st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=20))
def test_lines_do_not_depend_on_how_the_port_chunks_them(stream: bytes, cuts: list[int]) -> None:
    expected = [p for p in re.split(rb"[\r\n]", stream)[:-1] if p]
    got: list[bytes] = []
    buffer, pos = b"", 0
    for size in [*cuts, len(stream)]:
        chunk, pos = stream[pos : pos + size], pos + size
        lines, buffer = split_lines(buffer + chunk)
        got.extend(lines)
    assert got == expected
    assert all(b"\r" not in line and b"\n" not in line for line in got)


@fuzz_settings(scale=0.3)
@given(st.binary(min_size=1, max_size=MAX_LINE))
@example(b"\x03\x1a\x1c\x11\x13\x16\x04\x7f\r\x00\x1d")  # ^C ^Z ^\ ^Q ^S ^V ^D DEL CR NUL GS
def test_a_terminal_in_scanner_mode_delivers_every_byte_as_typed(typed: bytes) -> None:
    # a fresh pty is in cooked mode, like a console: signals, flow control, CR->LF,
    # line editing; KeyboardInput must switch all of that off before the scan arrives
    master, slave = os.openpty()
    keyboard = KeyboardInput(os.ttyname(slave))
    try:
        for i in range(0, len(typed), 512):  # a tty input queue holds at least 4 KiB
            os.write(master, typed[i : i + 512])
        received = b""
        deadline = time.monotonic() + 5
        while len(received) < len(typed) and time.monotonic() < deadline:
            received += keyboard.read(4096)
        assert received == typed
    finally:
        keyboard.close()
        os.close(slave)
        os.close(master)
