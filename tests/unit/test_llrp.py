"""The LLRP reader simulator's messages, decoded by sllurp, and the LLRP source's conversion.

sllurp is the client the gateway uses, so decoding the simulator's bytes with sllurp's
own `LLRPMessage` checks the simulator against an independent implementation of the
LLRP layout. Expected values come from the tags the tests place, not from the code.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError
from sllurp.llrp import LLRPMessage
from sllurp.llrp_proto import LLRPROSpec

from firmware_sim.llrp_reader import (
    ADD_ROSPEC,
    DELETE_ROSPEC,
    ENABLE_ROSPEC,
    SimulatedLlrpReader,
    message,
    tag_report_data,
)
from gateway.config import RfidReader
from gateway.sources.llrp import tag_read
from identifiers.epc import EpcError

SGTIN = "3074257BF7194E4000001A85"  # GS1 TDS example: sgtin 0614141.812345.6789
SSCC = "3174257BF4499602D2000000"  # GS1 TDS example: sscc 0614141.1234567890
T = 1_764_000_060.120  # the reader's clock, seconds


def decode(data: bytes) -> tuple[str, dict]:
    msg = LLRPMessage(msgbytes=data)
    return msg.getName(), msg.msgdict[msg.getName()]


def add_rospec(antennas: list[int]) -> bytes:
    """The ADD_ROSPEC body sllurp itself would send, encoded by sllurp."""
    rospec = LLRPROSpec(None, 7, antennas=antennas, tx_power=0)
    data = LLRPMessage(msgdict={"ADD_ROSPEC": {"ROSpecID": 7, "ROSpec": rospec, "ID": 1}}).msgbytes
    return data[10:]


def inventorying(antennas: list[int]) -> SimulatedLlrpReader:
    reader = SimulatedLlrpReader(clock=lambda: T)
    reader.answer(ADD_ROSPEC, 1, add_rospec(antennas))
    reader.answer(ENABLE_ROSPEC, 2, (7).to_bytes(4, "big"))
    return reader


def test_a_report_decodes_through_sllurp_with_epc_antenna_rssi_and_time() -> None:
    reader = inventorying([0])  # 0 = all antennas
    reader.place(SGTIN, 1, rssi=-50)
    reader.place(SSCC, 2, rssi=-70)
    data, count = reader.report()
    name, body = decode(data)
    assert (name, count) == ("RO_ACCESS_REPORT", 2)
    tags = sorted(body["TagReportData"], key=lambda t: t["AntennaID"])
    assert [(t["EPC-96"].decode().upper(), t["AntennaID"]) for t in tags] == [(SGTIN, 1), (SSCC, 2)]
    assert -53 <= tags[0]["PeakRSSI"] <= -47
    assert -73 <= tags[1]["PeakRSSI"] <= -67
    assert {t["FirstSeenTimestampUTC"] for t in tags} == {1_764_000_060_120_000}
    read = tag_read(tags[0], reader="door-1", now_ms=0)
    assert (read.t_ms, read.antenna, read.epc) == (1_764_000_060_120, 1, SGTIN)


def test_only_antennas_of_an_active_rospec_are_reported() -> None:
    reader = inventorying([1])
    reader.place(SGTIN, 1)
    reader.place(SSCC, 2)
    _, body = decode(reader.report()[0])
    assert [t["AntennaID"] for t in body["TagReportData"]] == [1]
    name, reply = decode(reader.answer(DELETE_ROSPEC, 9, (0).to_bytes(4, "big"))[0])
    assert (name, reply["ID"], reply["LLRPStatus"]["StatusCode"]) == (
        "DELETE_ROSPEC_RESPONSE",
        9,
        "Success",
    )
    assert reader.report() == (b"", 0)


def test_an_unknown_message_gets_an_error_message() -> None:
    name, body = decode(SimulatedLlrpReader().answer(999, 5, b"")[0])
    assert (name, body["ID"], body["LLRPStatus"]["StatusCode"]) == (
        "ERROR_MESSAGE",
        5,
        "UnsupportedMessage",
    )


@given(
    epc=st.binary(min_size=12, max_size=12),
    antenna=st.integers(1, 0xFFFF),
    rssi=st.integers(-128, 127),
    t_us=st.integers(0, 2**64 - 1),
)
# found by this test: a 96-bit EPC with the SSCC-96 header but non-zero reserved bits was
# refused, so the read of that tag was lost (it is kept raw now, docs/fuzzing.md)
@example(epc=b"1" + bytes(10) + b"\x01", antenna=1, rssi=0, t_us=0)
def test_tag_report_data_round_trips_through_sllurp(
    epc: bytes, antenna: int, rssi: int, t_us: int
) -> None:
    data = message(61, 1, tag_report_data(epc.hex(), antenna, rssi, t_us))
    (tag,) = decode(data)[1]["TagReportData"]
    assert (tag["EPC-96"], tag["AntennaID"], tag["PeakRSSI"], tag["FirstSeenTimestampUTC"]) == (
        epc.hex().encode(),
        antenna,
        rssi,
        t_us,
    )
    if antenna > 255:  # LLRP antenna ids are 16-bit, the wire carries 0-255
        with pytest.raises(EpcError, match="antenna"):
            tag_read(tag, reader="r", now_ms=0)
        return
    read = tag_read(tag, reader="r", now_ms=0)
    # a reader time past the wire's 2**53 ms is no clock: the gateway's (now_ms=0) is used
    t_ms = t_us // 1000 if t_us // 1000 <= 2**53 else 0
    assert (read.epc, read.antenna, read.t_ms, read.rssi) == (
        epc.hex().upper(),
        antenna,
        t_ms,
        float(rssi),
    )


def test_a_tag_without_time_takes_the_gateway_clock_and_one_without_epc_is_refused() -> None:
    read = tag_read({"EPC-96": b"e2801160", "AntennaID": 3}, reader="r", now_ms=42)
    assert (read.t_ms, read.antenna, read.epc, read.rssi) == (42, 3, "E2801160", None)
    with pytest.raises(EpcError, match="without an EPC"):
        tag_read({"AntennaID": 1}, reader="r", now_ms=0)
    with pytest.raises(EpcError):  # an SGTIN header on a 32-bit EPC
        tag_read({"EPC": b"30742570"}, reader="r", now_ms=0)


def test_rfid_protocol_defaults_to_json_and_llrp_to_port_5084() -> None:
    assert RfidReader(name="a", host="h", port=4001).protocol == "json"
    assert RfidReader(name="a", host="h", protocol="llrp").port == 5084
    assert RfidReader(name="a", host="h", protocol="llrp", port=15084).port == 15084
    with pytest.raises(ValidationError, match="port"):
        RfidReader(name="a", host="h")  # the JSON stream has no standard port
    with pytest.raises(ValidationError, match="protocol"):
        RfidReader(name="a", host="h", port=1, protocol="mqtt")
