"""Fuzzing RFID reader JSON lines (gateway/sources/rfid.py).

Contract: ``parse_event(line: bytes, reader=, now_ms=) -> TagRead`` for one JSON object
``{"epc": hex, "antenna": 0-255, "rssi": number?, "t": ms?}``; anything else (not JSON,
not UTF-8, nested too deeply, a field out of range, an EPC that is no tag) raises
``EpcError`` with a reason, and nothing else. ``tag_item`` turns every read it returns
into a ``TagItem`` the wire contract accepts. ``RfidSource.accept`` never raises: bad
lines are logged, counted in the source's health and skipped.

The reader serves lines of at most ``MAX_LINE`` (4,096) bytes; the stream reader
refuses longer ones before they are parsed.
"""

from __future__ import annotations

import math

import msgspec
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.config import RfidReader
from gateway.sources.rfid import MAX_LINE, RfidSource, parse_event, tag_item
from gateway.tag_reads import TagRead
from identifiers.epc import EpcError
from telemetry.payloads import TagItem
from tests.fuzz_support import (
    assert_scales_linearly,
    dumps,
    fuzz_settings,
    hostile_text,
    invalid_utf8,
    json_values,
    nested,
)

NOW = 1_764_000_000_000
SGTIN = "3074257BF7194E4000001A85"


def _wire_valid(read: TagRead) -> TagItem:
    item = tag_item(read)
    again = msgspec.json.decode(msgspec.json.encode(item), type=TagItem)
    assert again == item
    assert item.rssi is None or math.isfinite(item.rssi)
    return item


def _refuses_or_reads(line: bytes) -> None:
    try:
        read = parse_event(line, reader="door-1", now_ms=NOW)
    except EpcError as err:
        assert err.reason  # noqa: PT017 - either outcome is fine; a refusal has a reason
        return
    _wire_valid(read)


EVENTS = st.fixed_dictionaries(
    {},
    optional={
        "epc": st.one_of(
            st.text("0123456789ABCDEFabcdef", max_size=130),
            st.sampled_from([SGTIN, "3174257BF4499602D2000000", "30", "E2"]),
            hostile_text(),
            st.integers(),
        ),
        "antenna": st.one_of(st.integers(-5, 300), st.integers(), st.floats(), st.text(max_size=3)),
        "rssi": st.one_of(st.floats(), st.integers(), st.none(), st.text(max_size=3)),
        "t": st.one_of(st.integers(), st.integers(0, 2**64), st.floats(), st.none()),
        "x": json_values(),
    },
)


@fuzz_settings()
@given(st.one_of(EVENTS.map(dumps), json_values().map(dumps)))
@example(b'{"epc":"' + SGTIN.encode() + b'","antenna":1,"t":18446744073709551615}')  # past 2**53
@example(b'{"epc":"' + SGTIN.encode() + b'","antenna":1,"rssi":1e400}')
def test_any_json_line_is_a_tag_read_or_an_epc_error(line: bytes) -> None:
    _refuses_or_reads(line)


@fuzz_settings()
@given(st.one_of(st.binary(max_size=200), invalid_utf8()))
def test_any_bytes_are_a_tag_read_or_an_epc_error(line: bytes) -> None:
    _refuses_or_reads(line)


@fuzz_settings(scale=0.3)
@given(st.integers(1, MAX_LINE // 2), st.sampled_from(["list", "dict"]))
@example(2000, "list")  # was RecursionError out of msgspec, which stopped the source
@example(MAX_LINE // 5, "dict")
def test_deep_nesting_within_a_line_is_an_epc_error(depth: int, kind: str) -> None:
    inner = nested(depth, kind=kind)
    line = b'{"epc":"' + SGTIN.encode() + b'","antenna":1,"x":' + inner + b"}"
    _refuses_or_reads(line)
    _refuses_or_reads(inner)


def test_a_huge_line_takes_linear_time() -> None:
    assert_scales_linearly(
        lambda n: _refuses_or_reads(b'{"epc":"E2","antenna":1,"x":"' + b"a" * n + b'"}'), 200_000
    )
    assert_scales_linearly(lambda n: _refuses_or_reads(b"[" * n), 100_000)


@fuzz_settings()
@given(st.lists(st.one_of(EVENTS.map(dumps), st.binary(max_size=60)), max_size=20))
def test_the_source_skips_bad_lines_and_keeps_the_good_ones(lines: list[bytes]) -> None:
    source = RfidSource(
        RfidReader(name="door-1", host="reader.local", port=4001, collapse_window_s=0),
        events=lambda *_: None,
        clock=lambda: NOW / 1000,
    )
    good = []
    for line in lines:
        try:
            good.append(parse_event(line, reader="door-1", now_ms=NOW))
        except EpcError:
            continue
    items = source.accept(lines)
    assert len(items) <= len(good)  # repeats in one window collapse, nothing is invented
    for item in items:
        assert msgspec.json.decode(msgspec.json.encode(item), type=TagItem) == item
    error = source.status().error
    if len(good) < len(lines):  # a bad line shows as the source's error on the state topic
        assert error is not None
        assert error.startswith("bad line")
    else:
        assert error is None


def test_the_documented_line_decodes_to_what_it_says() -> None:
    # docs/edge-devices.md: {"epc": "<hex>", "antenna": 1, "rssi": -52.5, "t": <ms>}; the
    # EPC is the TDS worked example urn:epc:id:sgtin:0614141.812345.6789 (GTIN 80614141123458)
    read = parse_event(
        b'{"epc":"3074257bf7194e4000001a85","antenna":1,"rssi":-52.5,"t":1764000060120}',
        reader="door-1",
        now_ms=NOW,
    )
    item = _wire_valid(read)
    assert (item.t, item.antenna, item.rssi, item.gtin, item.serial) == (
        1764000060120,
        1,
        -52.5,
        "80614141123458",
        "6789",
    )
