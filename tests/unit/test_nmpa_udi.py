"""China NMPA UDI in MA code format: DI structure, production identifiers, round trips."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identifiers.nmpa_udi import encode_ma, parse_ma
from identifiers.udi import BarcodeError, Scheme, decode_label

DI = "MA.156.M0.100761.21234561"  # country 156, industry M0, registrant, product code


def test_di_alone() -> None:
    label = decode_label(DI)
    assert (label.scheme, label.di, label.lot) == (Scheme.MA, DI, None)


def test_all_production_identifiers() -> None:
    label = parse_ma(DI + ".LB2024A.S000123.M240301.E20260228.DST77")
    assert label.di == DI
    assert (label.lot, label.serial) == ("B2024A", "000123")
    assert label.production == dt.date(2024, 3, 1)
    assert label.expiry == dt.date(2026, 2, 28)  # YYYYMMDD form
    assert parse_ma(DI + ".V270115").expiry == dt.date(2027, 1, 15)  # .V validity date


def test_trailing_check_field_is_accepted_and_not_a_production_identifier() -> None:
    # the shape of MA codes issued through the agency's coding service (vendor samples)
    label = parse_ma(DI + ".Sx00008.M220117.L20220117.D20220118.E220130.C3")
    assert (label.di, label.serial, label.lot) == (DI, "x00008", "20220117")
    assert (label.production, label.expiry) == (dt.date(2022, 1, 17), dt.date(2022, 1, 30))
    assert parse_ma(DI + ".CZ").di == DI


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("MA.156.M0.10076.21234561", "not an MA UDI"),  # registrant has 5 digits
        ("MA.156.X1.100761.21234561", "not an MA UDI"),
        (DI + ".M240231", "not a valid date"),
        (DI + ".E2602", "6 (YYMMDD) or 8"),
        (DI + ".Q123", "not .L/.S"),
        (DI + ".LA.LB", "appears twice"),
        (DI + ".L", "not .L/.S"),
        (DI + ".C3.LB2024", "at the very end"),
        (DI + ".LB2024.C34", "one character"),
    ],
)
def test_malformed_is_rejected_with_reason(data: str, reason: str) -> None:
    with pytest.raises(BarcodeError) as err:
        parse_ma(data)
    assert reason in err.value.reason


@given(
    registrant=st.text("0123456789", min_size=6, max_size=6),
    product=st.text("0123456789", min_size=8, max_size=8),
    lot=st.none() | st.text("ABCXYZ0123456789", min_size=1, max_size=20),
    serial=st.none() | st.text("ABCXYZ0123456789", min_size=1, max_size=20),
    production=st.none() | st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    expiry=st.none() | st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
)
def test_round_trip(
    registrant: str,
    product: str,
    lot: str | None,
    serial: str | None,
    production: dt.date | None,
    expiry: dt.date | None,
) -> None:
    di = f"MA.156.M0.{registrant}.{product}"
    text = encode_ma(di, lot=lot, serial=serial, production=production, expiry=expiry)
    label = parse_ma(text)
    assert (label.di, label.lot, label.serial) == (di, lot, serial)
    assert (label.production, label.expiry) == (production, expiry)
