"""GS1 element strings through biip into Label: AIs, separators, DD=00, check digits."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identifiers.gs1 import GS, encode_gs1, parse_gs1
from identifiers.gtin import with_check_digit
from identifiers.udi import BarcodeError, Scheme, decode_label


def test_gs1_128_with_fnc1_separator_and_dd00_expiry() -> None:
    label = parse_gs1("]C1" + "0109876543210982" + "1012345" + GS + "17250600")
    assert label.scheme is Scheme.GS1
    assert label.gtin == "09876543210982"
    assert label.lot == "12345"
    # DD = 00 means the last day of the month
    assert label.expiry == dt.date(2025, 6, 30)


def test_gs1_datamatrix_with_serial_and_sscc() -> None:
    label = decode_label("]d2" + "01" + "04012345678901" + "17261231" + "21" + "SN-0042")
    assert (label.gtin, label.serial, label.expiry) == (
        "04012345678901",
        "SN-0042",
        dt.date(2026, 12, 31),
    )
    # SSCC 3 7612345 000000001 + check: 3*3+7+6*3+1+2*3+3+4*3+5+... computed below
    body = "37612345000000001"
    weights = [3 if i % 2 == 0 else 1 for i in range(17)]
    check = (10 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 10) % 10
    assert decode_label("]C100" + body + str(check)).sscc == body + str(check)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("]C10109876543210983", "check digit"),  # GTIN check digit 2, not 3
        ("]C100376123450000000010", "check digit"),  # wrong SSCC check digit
        ("]d2010987654321098217251300", "(17)"),  # month 13
        ("]C11012345", "neither a GTIN"),  # lot without product
    ],
)
def test_bad_labels_are_rejected_with_a_reason(data: str, reason: str) -> None:
    with pytest.raises(BarcodeError) as err:
        decode_label(data)
    assert reason in err.value.reason


def _gtin() -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=13, max_size=13).map(with_check_digit)


@given(
    gtin=_gtin(),
    lot=st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=20),
    serial=st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=20),
    expiry=st.dates(dt.date(2000, 1, 1), dt.date(2049, 12, 31)),
    symbology=st.sampled_from(["]C1", "]d2"]),
)
def test_round_trip(gtin: str, lot: str, serial: str, expiry: dt.date, symbology: str) -> None:
    text = encode_gs1(
        gtin=gtin, lot=lot, expiry=f"{expiry:%y%m%d}", serial=serial, symbology=symbology
    )
    label = parse_gs1(text)
    assert (label.gtin, label.lot, label.serial, label.expiry) == (gtin, lot, serial, expiry)


def test_plain_retail_symbols_give_the_gtin_as_14_digits() -> None:
    # UPC-A 0 36000 29145 2 (check: 3*(0+6+0+2+1+5)+(3+0+0+9+4)=58 -> 2)
    assert decode_label("036000291452").gtin == "00036000291452"
    assert decode_label("]E04012345678901").gtin == "04012345678901"
    with pytest.raises(BarcodeError, match="check digit"):
        decode_label("4012345678902")
