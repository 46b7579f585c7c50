"""Fuzzing the China NMPA UDI decoder in the MA code (telemetry/nmpa_udi.py).

Contract: ``parse_ma(text: str) -> Label`` for ``MA.<3 digits>.M0.<6 digits>.<8 digits>``
followed by ``.L .S .M .D .V .E`` production identifiers (and an optional last ``.C``);
any other input raises ``BarcodeError`` with a reason, and nothing else, in time linear
in its length. Digits are ASCII digits: ``str.isdigit`` and ``\\d`` also accept
Arabic-Indic or full-width ones, which no MA code carries.

Structure from the MA (IDcode) coding rules as ZIIOT publishes them (data unit
separators ``.L`` lot, ``.S`` serial, ``.M`` production date, ``.D`` sterilisation lot,
``.V`` validity date, ``.E`` expiry date; dates of 6 or 8 digits).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from identifiers.nmpa_udi import encode_ma, parse_ma
from identifiers.udi import BarcodeError, Scheme
from tests.fuzz_support import (
    NON_ASCII_DIGITS,
    assert_scales_linearly,
    fuzz_settings,
    hostile_text,
    mutated,
)

DI = "MA.156.M0.100761.21234561"  # the DI in the MA coding rules' example
OWN = "0123456789.MA LSMDVEC-xyz"
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _refuses_or_parses(text: str) -> None:
    try:
        label = parse_ma(text)
    except BarcodeError as err:
        assert err.reason  # noqa: PT017 - either outcome is fine; a refusal has a reason
        return
    assert label.scheme is Scheme.MA
    assert label.di is not None
    assert label.di.isascii()


@fuzz_settings()
@given(hostile_text(OWN))
def test_any_text_is_a_label_or_a_barcode_error(text: str) -> None:
    _refuses_or_parses(text)


VALID = st.sampled_from(
    [
        DI,
        DI + ".LAB12.S0001.M240101.E260131",
        DI + ".E220130.V220117.C3",
        DI + ".M20240101.D7",
    ]
)


@fuzz_settings()
@given(mutated(VALID, OWN))
def test_edited_codes_are_a_label_or_a_barcode_error(text: str) -> None:
    _refuses_or_parses(text)


@fuzz_settings()
@given(st.integers(0, len(DI) - 1), st.sampled_from(NON_ASCII_DIGITS))
@example(3, "١")  # was accepted: \d matched the Arabic-Indic one in "MA.١56.M0…"
@example(20, "０")  # and a full-width zero in the product code
def test_a_non_ascii_digit_in_the_di_is_refused(position: int, digit: str) -> None:
    if not DI[position].isdigit():
        return
    with pytest.raises(BarcodeError):
        parse_ma(DI[:position] + digit + DI[position + 1 :])


def test_huge_input_takes_linear_time() -> None:
    assert_scales_linearly(lambda n: _refuses_or_parses(DI + ".L" + "A" * n), 100_000)
    assert_scales_linearly(lambda n: _refuses_or_parses(DI + ".LA" * n), 20_000)


@fuzz_settings()
@given(
    lot=st.text(ALNUM + "-", min_size=1, max_size=20) | st.none(),
    serial=st.text(ALNUM, min_size=1, max_size=20) | st.none(),
    production=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)) | st.none(),
    expiry=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)) | st.none(),
)
def test_round_trip(
    lot: str | None, serial: str | None, production: dt.date | None, expiry: dt.date | None
) -> None:
    text = encode_ma(DI, lot=lot, serial=serial, production=production, expiry=expiry)
    label = parse_ma(text)
    assert (label.di, label.lot, label.serial, label.production, label.expiry) == (
        DI,
        lot,
        serial,
        production,
        expiry,
    )


def test_known_answers_of_the_coding_rules() -> None:
    # 6-digit dates are 20YYMMDD, 8-digit ones YYYYMMDD (MA coding rules, ".M"/".E")
    label = parse_ma(DI + ".M230415.E20280414.LLOT-9")
    assert (label.production, label.expiry, label.lot) == (
        dt.date(2023, 4, 15),
        dt.date(2028, 4, 14),
        "LOT-9",
    )
    for bad in (DI + ".M2304", DI + ".M230231", DI + ".LA.LB", DI + ".C12", DI + ".C1.LA"):
        with pytest.raises(BarcodeError):
            parse_ma(bad)
