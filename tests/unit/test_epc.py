"""EPC Tag Data Standard: worked examples, partitions, errors, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identifiers.epc import EpcError, decode_epc, encode_sgtin96, encode_sscc96


def test_sgtin96_worked_example_of_the_tds() -> None:
    # TDS: urn:epc:tag:sgtin-96:3.0614141.812345.6789 = 3074257BF7194E4000001A85
    epc = decode_epc("3074257bf7194e4000001a85")
    assert epc.scheme == "sgtin-96"
    assert epc.filter == 3
    assert epc.uri == "urn:epc:id:sgtin:0614141.812345.6789"
    # GTIN: indicator 8 + 0614141 + 12345 + check 8 (8*3+0+6*3+1+4*3+1+4*3+1+1*3+2+3*3+4+5*3=?)
    digits = "8061414112345"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits))
    assert total % 10 == 2  # so the check digit is 8
    assert epc.gtin == "80614141123458"
    assert epc.serial == "6789"


def test_sscc96_worked_example_of_the_tds() -> None:
    # TDS: urn:epc:tag:sscc-96:3.0614141.1234567890 = 3174257BF4499602D2000000
    epc = decode_epc("3174257BF4499602D2000000")
    assert epc.scheme == "sscc-96"
    assert epc.uri == "urn:epc:id:sscc:0614141.1234567890"
    # SSCC: extension 1 + 0614141 + 234567890 + check digit 8
    assert epc.sscc == "106141412345678908"


def test_other_headers_are_kept_raw() -> None:
    epc = decode_epc("E2801160600002084E2C5B8F")  # a TID-like value, not an EPC scheme we decode
    assert epc.scheme is None
    assert epc.hex == "E2801160600002084E2C5B8F"


@pytest.mark.parametrize(
    ("hex_text", "reason"),
    [
        ("30ZZ", "hex"),
        ("307", "hex"),
        ("3074257BF7194E4000001A", "96-bit"),
        ("307C257BF7194E4000001A85", "reserved"),  # partition 7
        ("3174257BF4499602D2000001", "reserved bits"),
    ],
)
def test_bad_epcs_are_rejected_with_reason(hex_text: str, reason: str) -> None:
    with pytest.raises(EpcError) as err:
        decode_epc(hex_text)
    assert reason in err.value.reason


@given(
    cp_digits=st.integers(6, 12),
    data=st.data(),
    serial=st.integers(0, 2**38 - 1),
    filter_value=st.integers(0, 7),
)
def test_sgtin_round_trip(
    cp_digits: int, data: st.DataObject, serial: int, filter_value: int
) -> None:
    company = data.draw(st.text("0123456789", min_size=cp_digits, max_size=cp_digits))
    item = data.draw(st.text("0123456789", min_size=13 - cp_digits, max_size=13 - cp_digits))
    epc = decode_epc(encode_sgtin96(company, item, serial, filter_value=filter_value))
    assert epc.uri == f"urn:epc:id:sgtin:{company}.{item}.{serial}"
    assert epc.filter == filter_value
    assert epc.gtin is not None
    assert epc.gtin[:13] == item[0] + company + item[1:]


@given(cp_digits=st.integers(6, 12), data=st.data())
def test_sscc_round_trip(cp_digits: int, data: st.DataObject) -> None:
    company = data.draw(st.text("0123456789", min_size=cp_digits, max_size=cp_digits))
    ref = data.draw(st.text("0123456789", min_size=17 - cp_digits, max_size=17 - cp_digits))
    epc = decode_epc(encode_sscc96(company, ref))
    assert epc.uri == f"urn:epc:id:sscc:{company}.{ref}"
    assert epc.sscc is not None
    assert epc.sscc[:17] == ref[0] + company + ref[1:]
