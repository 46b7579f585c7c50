"""Fuzzing LLRP frames: tag reports through sllurp into the LLRP source, and the simulator.

Contracts:

- ``tag_read(tag, reader=, now_ms=) -> TagRead`` for one TagReportData as sllurp
  decodes it from an RO_ACCESS_REPORT; a report that names no usable tag (no EPC, not
  hex, an antenna the wire cannot carry) raises ``EpcError``, and nothing else. A
  reader time past the wire's 2**53 ms is replaced by the gateway clock. Every read
  becomes a ``TagItem`` the wire contract accepts.
- ``LlrpSource.accept(report)`` never raises.
- ``SimulatedLlrpReader.answer(type, id, body)`` answers any client message with a
  message sllurp decodes, or raises ``ValueError``/``struct.error``, on which its
  session drops the connection as a reader would.

sllurp's own decoding of a malformed frame may raise (``LLRPError``, ``struct.error``,
in sllurp's socket thread); that ends the session and the source reconnects after
``timeout_s`` (docs/fuzzing.md). The frames here are built with the simulator's
encoders (LLRP 1.0.1 layout), then mutated.
"""

from __future__ import annotations

import struct

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sllurp.llrp import LLRPMessage

from firmware_sim.llrp_reader import (
    RO_ACCESS_REPORT,
    SimulatedLlrpReader,
    message,
    tag_report_data,
    tlv,
    tv,
)
from gateway.config import RfidReader
from gateway.sources.llrp import LlrpSource, tag_read
from gateway.sources.rfid import tag_item
from identifiers.epc import EpcError
from telemetry.payloads import TagItem
from tests.fuzz_support import assert_scales_linearly, fuzz_settings

P_TAG_REPORT_DATA, P_EPC_DATA = 240, 241
TV_ANTENNA_ID, TV_FIRST_SEEN_UTC, TV_PEAK_RSSI, TV_EPC96 = 1, 2, 6, 13
NOW = 1_764_000_000_000

TV_PARAMS = st.one_of(
    st.binary(min_size=12, max_size=12).map(lambda b: tv(TV_EPC96, b)),
    st.integers(0, 0xFFFF).map(lambda a: tv(TV_ANTENNA_ID, struct.pack("!H", a))),
    st.integers(-128, 127).map(lambda r: tv(TV_PEAK_RSSI, struct.pack("!b", r))),
    st.integers(0, 2**64 - 1).map(lambda t: tv(TV_FIRST_SEEN_UTC, struct.pack("!Q", t))),
    # EPCData: a bit count and the bits, any length (LLRP 1.0.1, 16.2.7.3.1)
    st.builds(
        lambda n, b: tlv(P_EPC_DATA, struct.pack("!H", n) + b),
        st.integers(0, 600),
        st.binary(max_size=80),
    ),
)
REPORTS = st.lists(
    st.lists(TV_PARAMS, max_size=6).map(lambda ps: tlv(P_TAG_REPORT_DATA, b"".join(ps))),
    max_size=5,
).map(b"".join)


def _decoded_tags(frame: bytes) -> list[dict[str, object]] | None:
    """The tag reports sllurp hands the source's callback, or None if sllurp refuses the frame."""
    try:
        msg = LLRPMessage(msgbytes=frame)
    except Exception:
        return None
    return list(msg.msgdict["RO_ACCESS_REPORT"]["TagReportData"])


def _reads_or_refuses(tag: dict[str, object]) -> None:
    try:
        read = tag_read(tag, reader="dock-door", now_ms=NOW)
    except EpcError as err:
        assert err.reason  # noqa: PT017 - either outcome is fine; a refusal has a reason
        return
    item = tag_item(read)
    assert msgspec.json.decode(msgspec.json.encode(item), type=TagItem) == item


@fuzz_settings()
@given(REPORTS)
@example(tlv(P_TAG_REPORT_DATA, tv(TV_EPC96, bytes(12)) + tv(TV_ANTENNA_ID, b"\x01\x00")))
# antenna 256 was passed on and the TagItem refused at ingest (the wire carries 0-255)
@example(tlv(P_TAG_REPORT_DATA, tv(TV_EPC96, bytes(12)) + tv(TV_FIRST_SEEN_UTC, b"\xff" * 8)))
# a first-seen time of 2**64-1 µs was passed on, past the wire's 2**53 ms
@example(tlv(P_TAG_REPORT_DATA, tlv(P_EPC_DATA, b"\x07\xd0" + b"\xab" * 250)))
# a 2000-bit EPCData was accepted as an EPC no tag holds and no TagItem carries
def test_every_tag_report_sllurp_decodes_is_a_tag_read_or_an_epc_error(body: bytes) -> None:
    tags = _decoded_tags(message(RO_ACCESS_REPORT, 1, body))
    for tag in tags or []:
        _reads_or_refuses(tag)


@fuzz_settings()
@given(REPORTS, st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4))
def test_corrupted_frames_never_reach_the_source_as_anything_but_tags_or_errors(
    body: bytes, flips: list[tuple[int, int]]
) -> None:
    frame = bytearray(message(RO_ACCESS_REPORT, 1, body))
    for at, value in flips:  # corrupt bytes past the header (a header error is sllurp's)
        if 10 + at < len(frame):
            frame[10 + at] = value
    for tag in _decoded_tags(bytes(frame)) or []:
        _reads_or_refuses(tag)


@fuzz_settings()
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "EPC-96": st.binary(max_size=30) | st.text(max_size=30),
                "EPC": st.binary(max_size=140),
                "AntennaID": st.integers(-1, 70_000) | st.none() | st.text(max_size=2),
                "PeakRSSI": st.integers(-200, 200) | st.floats() | st.none(),
                "FirstSeenTimestampUTC": st.integers(-(2**65), 2**65) | st.floats() | st.none(),
            },
        ),
        max_size=8,
    )
)
@example([{"EPC": b"e280", "PeakRSSI": float("nan")}])  # was passed on as NaN, sent as null
def test_the_source_accepts_any_report_without_raising(report: list[dict[str, object]]) -> None:
    source = LlrpSource(
        RfidReader(name="dock-door", protocol="llrp", host="reader.local", collapse_window_s=0),
        events=lambda *_: None,
        clock=lambda: NOW / 1000,
    )
    for item in source.accept(report):
        assert msgspec.json.decode(msgspec.json.encode(item), type=TagItem) == item


def test_a_report_of_many_tags_takes_linear_time() -> None:
    def report(n: int) -> None:
        one = tag_report_data("3074257BF7194E4000001A85", 1, -50, NOW * 1000)
        for tag in _decoded_tags(message(RO_ACCESS_REPORT, 1, one * n)) or []:
            _reads_or_refuses(tag)

    assert_scales_linearly(report, 200)


# --- the simulator: frames for the tests, and a reader that survives any client ---


@fuzz_settings()
@given(
    st.integers(0, 1023),
    st.integers(0, 2**32 - 1),
    st.one_of(
        st.binary(max_size=60),
        st.builds(
            tlv,
            st.sampled_from([177, 178, 179, 183, 220]),
            st.binary(max_size=40),
        ),
        st.builds(
            lambda i, b: struct.pack("!I", i) + b, st.integers(0, 2**32 - 1), st.binary(max_size=8)
        ),
    ),
)
def test_the_simulated_reader_answers_any_message_or_drops_the_connection(
    msg_type: int, msg_id: int, body: bytes
) -> None:
    reader = SimulatedLlrpReader()
    try:
        reply, _keepalive = reader.answer(msg_type, msg_id, body)
    except (ValueError, struct.error):
        return  # its session catches these and closes the connection
    if reply:
        assert LLRPMessage(msgbytes=reply).getName()  # sllurp reads whatever it answers


@fuzz_settings()
@given(
    st.lists(
        st.tuples(st.binary(min_size=12, max_size=12), st.integers(1, 255), st.integers(-128, 127)),
        min_size=1,
        max_size=10,
        unique_by=lambda t: (t[0], t[1]),
    )
)
def test_simulated_reports_round_trip_through_sllurp_and_the_source(
    tags: list[tuple[bytes, int, int]],
) -> None:
    body = b"".join(
        tag_report_data(epc.hex(), antenna, rssi, NOW * 1000) for epc, antenna, rssi in tags
    )
    decoded = _decoded_tags(message(RO_ACCESS_REPORT, 7, body))
    assert decoded is not None
    got = set()
    for tag in decoded:
        read = tag_read(tag, reader="dock-door", now_ms=0)
        got.add((read.epc, read.antenna, read.rssi, read.t_ms))
    assert got == {(epc.hex().upper(), a, float(r), NOW) for epc, a, r in tags}


def test_refusals_name_the_reason() -> None:
    with pytest.raises(EpcError, match="without an EPC"):
        tag_read({"AntennaID": 1}, reader="r", now_ms=0)
    with pytest.raises(EpcError, match="antenna"):
        tag_read({"EPC-96": b"3074257bf7194e4000001a85", "AntennaID": 300}, reader="r", now_ms=0)
    with pytest.raises(EpcError, match="longer than a tag holds"):
        tag_read({"EPC": b"ab" * 63}, reader="r", now_ms=0)
