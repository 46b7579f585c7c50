"""Fuzzing the EPC decoder (telemetry/epc.py, GS1 EPC Tag Data Standard).

Contract: ``decode_epc(hex_text: str) -> Epc`` for hex of whole bytes up to 496 bits
(the largest EPC a Gen2 tag holds); SGTIN-96 and SSCC-96 are decoded to GTIN + serial
and SSCC, other headers returned raw. Anything else (not hex, odd length, too long, a
broken SGTIN-96/SSCC-96) raises ``EpcError`` with a reason, and nothing else.
``epc_hex`` is the looser check a tag read needs: hex, length, and 96 bits under an
SGTIN-96/SSCC-96 header.

Known answers are the TDS worked examples and the test vectors of epc-coder
(pedrozc90/epc-coder, an independent Java implementation of the TDS).
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from identifiers.epc import EpcError, decode_epc, encode_sgtin96, encode_sscc96, epc_hex
from tests.fuzz_support import assert_scales_linearly, fuzz_settings, hostile_text, mutated

HEX = "0123456789abcdefABCDEF"


def check_digit(digits: str) -> str:
    """GS1 mod-10 check digit, from the GS1 recipe (weights 3, 1, … from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def _refuses_or_decodes(text: str) -> None:
    try:
        epc = decode_epc(text)
    except EpcError as err:
        assert err.reason  # noqa: PT017 - either outcome is fine; a refusal has a reason
        stripped = text.strip()
        if not stripped or len(stripped) % 2 or any(c not in HEX for c in stripped):
            with pytest.raises(EpcError):  # what is no hex is no tag read either
                epc_hex(text)
        return
    assert epc.hex == text.strip().upper()
    assert len(epc.hex) % 2 == 0
    assert len(epc.hex) <= 124


@fuzz_settings()
@given(st.one_of(hostile_text(HEX), st.text(HEX, max_size=130)))
def test_any_text_is_an_epc_or_an_epc_error(text: str) -> None:
    _refuses_or_decodes(text)


VALID = st.sampled_from(["3074257BF7194E4000001A85", "3174257BF4499602D2000000", "E2801160"])


@fuzz_settings()
@given(mutated(VALID, HEX))
def test_edited_epcs_are_an_epc_or_an_epc_error(text: str) -> None:
    _refuses_or_decodes(text)


@fuzz_settings()
@given(st.binary(min_size=12, max_size=12))
@example(b"\x31" + bytes(10) + b"\x01")  # SSCC-96 header, reserved bits set
@example(bytes.fromhex("303C83F1B7DD441678901234"))  # partition 7 (epc-coder's "wrong partition")
def test_every_96_bit_value_is_a_tag_read_and_decodes_or_is_refused_by_rule(raw: bytes) -> None:
    assert epc_hex(raw.hex()) == raw.hex().upper()  # a read of that tag, whatever it encodes
    try:
        epc = decode_epc(raw.hex())
    except EpcError as err:
        assert raw[0] in (0x30, 0x31)  # only the two decoded schemes have rules to break
        assert any(w in err.reason for w in ("partition", "reserved", "does not fit"))  # noqa: PT017 - either outcome is fine; a refusal has a reason
        return
    if epc.scheme == "sgtin-96":
        assert epc.gtin is not None
        assert epc.gtin[-1] == check_digit(epc.gtin[:-1])
    if epc.scheme == "sscc-96":
        assert epc.sscc is not None
        assert epc.sscc[-1] == check_digit(epc.sscc[:-1])


def test_longer_than_a_tag_holds_is_refused_in_linear_time() -> None:
    assert decode_epc("AB" * 62).hex == "AB" * 62  # 496 bits: the most a Gen2 EPC holds
    with pytest.raises(EpcError, match="longer than a tag holds"):
        decode_epc("AB" * 63)
    assert_scales_linearly(lambda n: _refuses_or_decodes("E2" * n), 200_000)


# --- (b) round trips ---


@fuzz_settings()
@given(
    partition=st.integers(0, 6),
    filter_value=st.integers(0, 7),
    serial=st.integers(0, 2**38 - 1),
    data=st.data(),
)
def test_sgtin96_round_trip(
    partition: int, filter_value: int, serial: int, data: st.DataObject
) -> None:
    # TDS partition table: company prefix of 12 down to 6 digits, item reference
    # (with the indicator digit) of 1 up to 7; 13 digits together
    cp_digits = 12 - partition
    company = data.draw(st.text("0123456789", min_size=cp_digits, max_size=cp_digits))
    item = data.draw(st.text("0123456789", min_size=13 - cp_digits, max_size=13 - cp_digits))
    epc = decode_epc(encode_sgtin96(company, item, serial, filter_value=filter_value))
    body = item[0] + company + item[1:]
    assert (epc.scheme, epc.filter, epc.serial) == ("sgtin-96", filter_value, str(serial))
    assert epc.gtin == body + check_digit(body)
    assert epc.uri == f"urn:epc:id:sgtin:{company}.{item}.{serial}"


@fuzz_settings()
@given(partition=st.integers(0, 6), filter_value=st.integers(0, 7), data=st.data())
def test_sscc96_round_trip(partition: int, filter_value: int, data: st.DataObject) -> None:
    cp_digits = 12 - partition
    company = data.draw(st.text("0123456789", min_size=cp_digits, max_size=cp_digits))
    ref = data.draw(st.text("0123456789", min_size=17 - cp_digits, max_size=17 - cp_digits))
    epc = decode_epc(encode_sscc96(company, ref, filter_value=filter_value))
    body = ref[0] + company + ref[1:]
    assert (epc.scheme, epc.filter, epc.sscc) == ("sscc-96", filter_value, body + check_digit(body))
    assert epc.uri == f"urn:epc:id:sscc:{company}.{ref}"


# --- (c) known answers ---


@pytest.mark.parametrize(
    ("hex_text", "uri", "filter_value", "gtin_or_sscc"),
    [
        # GS1 EPC TDS worked example, also epc-coder SGTINParserTest: check digit 8
        ("3074257BF7194E4000001A85", "urn:epc:id:sgtin:0614141.812345.6789", 3, "80614141123458"),
        # epc-coder SGTINParserTest (the TDS 2.x company prefix 95060001343): check 2
        (
            "3066C4409047E140075BCD15",
            "urn:epc:id:sgtin:95060001343.05.123456789",
            3,
            "09506000134352",
        ),
        # epc-coder SSCCParserTest: company 952012 (partition 6), filter 0, check 5
        ("311BA1B300CE0A6A83000000", "urn:epc:id:sscc:952012.03456789123", 0, "095201234567891235"),
        # epc-coder SSCCParserTest: company 023356789, extension 3, filter 5, check 2
        ("31AC16465751CCD0C2000000", "urn:epc:id:sscc:023356789.30200002", 5, "302335678902000022"),
    ],
)
def test_worked_examples(hex_text: str, uri: str, filter_value: int, gtin_or_sscc: str) -> None:
    epc = decode_epc(hex_text)
    assert (epc.uri, epc.filter) == (uri, filter_value)
    assert gtin_or_sscc in (epc.gtin, epc.sscc)


def test_epc_coder_serial_and_refusal_examples() -> None:
    # epc-coder SGTINParserTest: "3024698E2CB1005678901234" has filter 1, serial
    # 96511988276; "303C83F1B7DD441678901234" has a wrong partition (7)
    epc = decode_epc("3024698E2CB1005678901234")
    assert (epc.filter, epc.serial) == (1, "96511988276")
    with pytest.raises(EpcError, match="partition"):
        decode_epc("303C83F1B7DD441678901234")
