"""HIBC LIC: the standard's check character examples, secondary formats, round trips."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identifiers.hibc import check_character, encode_concatenated, encode_primary, parse_hibc
from identifiers.udi import BarcodeError, Scheme, decode_label


def test_check_character_examples_of_the_standard() -> None:
    # HIBC LIC 2.6 appendix (also in scanner manuals): +A123BJC5D6E71 sums to 145,
    # 145 mod 43 = 16 = 'G'; +A1234BJC5D6E71 sums to 149, 149 mod 43 = 20 = 'K'
    assert check_character("+A123BJC5D6E71") == "G"
    assert check_character("+A1234BJC5D6E71") == "K"


def test_primary_structure() -> None:
    label = parse_hibc("+A123BJC5D6E71G")
    assert label.scheme is Scheme.HIBC
    assert label.di == "A123BJC5D6E71"  # LIC A123, PCN BJC5D6E7, unit of measure 1
    assert decode_label("]C0+A1234BJC5D6E71K").di == "A1234BJC5D6E71"


def _with_check(body: str) -> str:
    table = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%"
    return body + table[sum(table.index(c) for c in body) % 43]


@pytest.mark.parametrize(
    ("secondary", "lot", "serial", "expiry"),
    [
        ("$$0626LOT1", "LOT1", None, dt.date(2026, 6, 30)),  # MMYY: end of month
        ("$$2063026LOT1", "LOT1", None, dt.date(2026, 6, 30)),  # MMDDYY
        ("$$3260630LOT1", "LOT1", None, dt.date(2026, 6, 30)),  # YYMMDD
        ("$$426063012LOT1", "LOT1", None, dt.date(2026, 6, 30)),  # YYMMDDHH
        ("$$526181LOT1", "LOT1", None, dt.date(2026, 6, 30)),  # YYJJJ: day 181 of 2026
        ("$$7LOT1", "LOT1", None, None),
        ("$$8053260630LOT1", "LOT1", None, dt.date(2026, 6, 30)),  # qty 05, then YYMMDD
        ("$$+3260630SN9", None, "SN9", dt.date(2026, 6, 30)),
        ("$LOT1", "LOT1", None, None),
        ("$+SN9", None, "SN9", None),
        ("26181LOT1", "LOT1", None, dt.date(2026, 6, 30)),  # legacy YYJJJ + lot
        ("$$7LOT1/SSN9/14D20260630", "LOT1", "SN9", dt.date(2026, 6, 30)),
    ],
)
def test_secondary_formats_separate_and_concatenated(
    secondary: str, lot: str | None, serial: str | None, expiry: dt.date | None
) -> None:
    link = "G"  # check character of the primary +A123BJC5D6E71G
    separate = parse_hibc(_with_check("+" + secondary + link))
    concatenated = parse_hibc(_with_check("+A123BJC5D6E71/" + secondary))
    for label in (separate, concatenated):
        assert (label.lot, label.serial, label.expiry) == (lot, serial, expiry)
    assert separate.di is None
    assert concatenated.di == "A123BJC5D6E71"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("+A123BJC5D6E71H", "check character"),
        ("+1234BJC5D6E71", "check character"),
        ("A123BJC5D6E71G", "must start with '+'"),
        (_with_check("+A12/$$7LOT"), "primary data"),
        (_with_check("+A123BJC5D6E71/$$3261330LOT1"), "not a valid date"),
        (_with_check("+A123BJC5D6E71/$$X"), "date format flag"),
        (_with_check("+$$526400LOT1G"), "day of year"),
    ],
)
def test_malformed_is_rejected_with_reason(data: str, reason: str) -> None:
    with pytest.raises(BarcodeError) as err:
        parse_hibc(data)
    assert reason in err.value.reason


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@given(
    lic=st.text(_ALNUM[:26], min_size=1, max_size=1).flatmap(
        lambda a: st.text(_ALNUM, min_size=3, max_size=3).map(lambda r: a + r)
    ),
    pcn=st.text(_ALNUM, min_size=1, max_size=18),
    um=st.integers(0, 9),
    lot=st.text(_ALNUM, min_size=1, max_size=18),
    expiry=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
)
def test_round_trip(lic: str, pcn: str, um: int, lot: str, expiry: dt.date) -> None:
    assert parse_hibc(encode_primary(lic, pcn, um)).di == f"{lic}{pcn}{um}"
    label = parse_hibc(encode_concatenated(lic, pcn, um, expiry=expiry, lot=lot))
    assert (label.di, label.lot, label.expiry) == (f"{lic}{pcn}{um}", lot, expiry)
