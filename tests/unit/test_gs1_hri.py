"""The human-readable GS1 form, ``(01)…(10)…(17)…``: the same label as the scanned one."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identifiers.gs1 import encode_gs1, encode_gs1_hri, parse_gs1
from identifiers.gtin import check_digit
from identifiers.udi import BarcodeError, decode_label

# GS1 character set 82 without blanks or brackets, as a lot or serial may hold
LOTS = st.from_regex(r"[A-Za-z0-9\-./_]{1,20}", fullmatch=True)
GTINS = st.from_regex(r"[0-9]{13}", fullmatch=True).map(lambda d: d + str(check_digit(d)))
EXPIRIES = st.dates(dt.date(2000, 1, 1), dt.date(2049, 12, 31)).map(lambda d: f"{d:%y%m%d}")


def test_the_example_from_a_label() -> None:
    label = decode_label("(01)04006381333931(10)ABC (17)280101")
    assert (label.gtin, label.lot, label.expiry) == ("04006381333931", "ABC", dt.date(2028, 1, 1))


@given(gtin=GTINS, lot=LOTS, expiry=EXPIRIES, serial=st.none() | LOTS)
def test_bracketed_and_scanned_forms_give_the_same_label(
    gtin: str, lot: str, expiry: str, serial: str | None
) -> None:
    scanned = parse_gs1(encode_gs1(gtin=gtin, lot=lot, expiry=expiry, serial=serial))
    printed = decode_label(encode_gs1_hri(gtin=gtin, lot=lot, expiry=expiry, serial=serial))
    assert printed == scanned
    assert printed.lot == lot
    assert printed.gtin == gtin


@given(gtin=GTINS, lot=LOTS, blanks=st.lists(st.sampled_from([" ", "  ", "\t"]), min_size=4))
def test_blanks_around_the_brackets_are_layout(gtin: str, lot: str, blanks: list[str]) -> None:
    a, b, c, d = blanks[:4]
    spaced = f"{a}(01){b}{gtin}{c}(10){d}{lot}{a}"
    assert decode_label(spaced) == decode_label(encode_gs1_hri(gtin=gtin, lot=lot))


@given(st.text(alphabet="()0123456789ABC \x1d", max_size=60).map(lambda t: "(" + t))
def test_any_bracketed_text_is_a_label_or_a_barcode_error(text: str) -> None:
    try:
        label = decode_label(text)
    except BarcodeError as err:
        reason = str(err)
        assert reason
    else:
        assert label.gtin is not None or label.sscc is not None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("(01)04006381333932(10)ABC", "check digit"),
        ("(10)ABC", "neither a GTIN"),
        ("(01)0400638133393", "not a GS1 label"),
        ("(01)０4006381333931", "not ASCII"),
    ],
)
def test_a_wrong_bracketed_label_says_why(text: str, why: str) -> None:
    with pytest.raises(BarcodeError, match=why):
        decode_label(text)
