"""Tags and scans on the wire, and the pure parts of the RFID/barcode sources and config."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.outbox import Outbox
from gateway.sources.barcode import scan_item, split_lines
from gateway.sources.rfid import parse_event, tag_item
from gateway.streams import build_event_batch
from identifiers.epc import EpcError
from telemetry.codec import DecodeError, decode_scans, decode_tags, encode
from telemetry.payloads import ScanItem, TagItem
from telemetry.topics import Kind

NOW = 1_764_000_000_000

tag_items = st.builds(
    TagItem,
    t=st.integers(NOW - 10**9, NOW),
    reader=st.sampled_from(["door-1", "dock:2"]),
    antenna=st.integers(0, 255),
    epc=st.binary(min_size=1, max_size=62).map(lambda b: b.hex().upper()),
    rssi=st.none() | st.floats(-120, 0),
    gtin=st.none() | st.text("0123456789", min_size=14, max_size=14),
)
scan_items = st.builds(
    lambda t, data, reason: ScanItem(
        t=t, scanner="dock-1", data=data, ok=reason is None, reason=reason
    ),
    t=st.integers(NOW - 10**9, NOW),
    data=st.text(max_size=200),
    reason=st.none() | st.text(min_size=1, max_size=100),
)


@given(st.lists(tag_items, min_size=1, max_size=20), st.integers(1, 10**6))
def test_tags_round_trip_through_the_outbox_batch_and_codec(
    items: list[TagItem], first: int
) -> None:
    rows = [(first + i, encode(item)) for i, item in enumerate(items)]
    batch = build_event_batch(Kind.TAGS, rows, gateway="gw-1", stream="s", sent_ms=NOW)
    decoded = decode_tags(encode(batch), now_ms=NOW)
    assert decoded.items == [(first + i, item) for i, item in enumerate(items)]
    assert (decoded.seq_first, decoded.seq_last) == (first, first + len(items) - 1)


@given(st.lists(scan_items, min_size=1, max_size=20))
def test_scans_round_trip(items: list[ScanItem]) -> None:
    rows = [(1 + i, encode(item)) for i, item in enumerate(items)]
    batch = build_event_batch(Kind.SCANS, rows, gateway="gw-1", stream="s", sent_ms=NOW)
    assert [item for _, item in decode_scans(encode(batch), now_ms=NOW).items] == items


def test_bad_items_are_rejected_one_by_one_and_bad_envelopes_whole() -> None:
    good = b'{"t":%d,"scanner":"s","data":"x","ok":false,"reason":"r"}' % NOW
    ok_with_reason = b'{"t":%d,"scanner":"s","data":"x","ok":true,"reason":"r"}' % NOW
    unset_clock = b'{"t":5,"scanner":"s","data":"x","ok":false,"reason":"r"}'
    payload = b'{"v":1,"gateway":"g","stream":"s","seq":[4,6],"sent":1,"items":[%s,%s,%s]}' % (
        good,
        ok_with_reason,
        unset_clock,
    )
    decoded = decode_scans(payload, now_ms=NOW)
    assert [seq for seq, _ in decoded.items] == [4]
    assert [(r.seq, r.index) for r in decoded.rejected] == [(5, 1), (6, 2)]
    assert "reason exactly when" in decoded.rejected[0].reason
    assert "clock" in decoded.rejected[1].reason
    with pytest.raises(DecodeError, match="covers 2 items"):
        decode_tags(
            b'{"v":1,"gateway":"g","stream":"s","seq":[1,2],"sent":1,"items":[{}]}', now_ms=NOW
        )
    with pytest.raises(DecodeError, match="version"):
        decode_tags(b'{"v":2}', now_ms=NOW)


def test_gap_in_outbox_rows_is_refused() -> None:
    item = encode(ScanItem(t=NOW, scanner="s", data="x", ok=False, reason="r"))
    with pytest.raises(ValueError, match="contiguous"):
        build_event_batch(Kind.SCANS, [(1, item), (3, item)], gateway="g", stream="s", sent_ms=1)


def test_rfid_event_lines() -> None:
    read = parse_event(
        b'{"epc":"3074257bf7194e4000001a85","antenna":3,"rssi":-61.5,"t":1764000000123,"x":1}',
        reader="door-1",
        now_ms=NOW,
    )
    assert (read.epc, read.antenna, read.rssi, read.t_ms) == (
        "3074257BF7194E4000001A85",
        3,
        -61.5,
        1764000000123,
    )
    item = tag_item(read)
    assert (item.gtin, item.serial, item.scheme) == ("80614141123458", "6789", "sgtin-96")
    assert parse_event(b'{"epc":"E200","antenna":0}', reader="r", now_ms=NOW).t_ms == NOW
    for bad in (
        b"not json",
        b'{"antenna":1}',
        b'{"epc":"XYZ1","antenna":1}',
        b'{"epc":"30","antenna":1}',
    ):
        with pytest.raises(EpcError):
            parse_event(bad, reader="r", now_ms=NOW)


def test_scanner_lines_and_scan_records() -> None:
    lines, rest = split_lines(b"+A123BJC5D6E71G\r\n]C1010\r")
    assert (lines, rest) == ([b"+A123BJC5D6E71G", b"]C1010"], b"")
    lines, rest = split_lines(b"abc\ndef")
    assert (lines, rest) == ([b"abc"], b"def")
    good = scan_item("+A123BJC5D6E71G", scanner="dock-1", t_ms=NOW)
    assert (good.ok, good.scheme, good.di, good.reason) == (True, "hibc", "A123BJC5D6E71", None)
    bad = scan_item("+A123BJC5D6E71X", scanner="dock-1", t_ms=NOW)
    assert (bad.ok, bad.scheme, bad.data) == (False, None, "+A123BJC5D6E71X")
    assert bad.reason is not None
    assert "check character" in bad.reason


BASE = """\
gateway: {id: gw-01, site: plant-a}
mqtt: {host: broker.local}
outbox: {path: o.sqlite}
"""


def test_edge_sections_load(tmp_path: Path) -> None:
    text = BASE + textwrap.dedent(
        """\
        ble:
          loggers:
            - {address: "a4:c1:38:00:00:01", sensor: BLE-1}
        rfid:
          - {name: door-1, host: 127.0.0.1, port: 5084}
        barcode:
          - {name: dock-1, url: "socket://127.0.0.1:7000"}
        """
    )
    cfg = parse_config(text, path=tmp_path / "gw.yaml")
    assert cfg.ble is not None
    assert (cfg.ble.name, cfg.ble.loggers[0].format) == ("ble", "bthome")
    assert cfg.rfid[0].collapse_window_s == 5.0
    assert cfg.barcode[0].baudrate == 9600


@pytest.mark.parametrize(
    ("extra", "field", "line", "message"),
    [
        (
            "ble:\n  loggers:\n    - {address: nope, sensor: s}\n",
            "ble.loggers[0].address",
            6,
            "pattern",
        ),
        ("rfid:\n  - {name: r, host: h}\n", "rfid[0].port", 5, "required"),
        (
            "rfid:\n  - {name: same, host: h, port: 1}\nbarcode:\n  - {name: same, url: x}\n",
            "",
            1,
            "used twice: same",
        ),
    ],
)
def test_edge_section_errors_point_at_the_line(
    tmp_path: Path, extra: str, field: str, line: int, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + extra, path=tmp_path / "gw.yaml")
    issue = err.value.issues[0]
    assert message in issue.message
    assert issue.field == field
    assert issue.line == line


def test_outbox_event_streams_are_per_kind_durable_and_confirmed_by_watermark(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox.open(path) as outbox:
        assert outbox.append_events("tags", [b"a", b"b", b"c"]) == (1, 3)
        assert outbox.append_events("scans", [b"x"]) == (1, 1)  # its own numbering
        assert outbox.append_events("tags", [b"d"]) == (4, 4)
        streams = (outbox.event_stream("tags"), outbox.event_stream("scans"))
        assert streams[0] != streams[1]
        assert outbox.confirm_events("tags", 2) == 2
        assert outbox.depth() == 0  # readings are untouched
    with Outbox.open(path) as outbox:  # survives a restart
        assert (outbox.event_stream("tags"), outbox.event_stream("scans")) == streams
        assert outbox.read_events("tags", outbox.event_first_seq("tags"), 10) == [
            (3, b"c"),
            (4, b"d"),
        ]
        assert (outbox.event_depth("tags"), outbox.event_last_seq("tags")) == (2, 4)
        assert outbox.append_events("tags", [b"e"]) == (5, 5)
        assert outbox.confirm_events("tags", 5) == 3
        assert outbox.event_first_seq("tags") == 6  # empty: the next seq to assign
