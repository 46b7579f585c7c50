"""Fuzzing the GS1 element string decoder (telemetry/gs1.py, through biip).

Contract: ``parse_gs1(text: str) -> Label`` for a GS1 element string (GS1-128, GS1
DataMatrix, with or without symbology identifier, FNC1 as GS); any other input raises
``BarcodeError`` (a ``ValueError``) with a reason, and nothing else. Input longer than
any barcode symbol carries (7,089 characters) is refused before it is parsed.

Expected values come from the GS1 documents and independent implementations named in
each test, or from the strategy that built the input; never from telemetry/gs1.py.
"""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from identifiers.gs1 import parse_gs1
from identifiers.udi import MAX_LABEL_CHARS, BarcodeError, Scheme
from tests.fuzz_support import (
    NON_ASCII_DIGITS,
    assert_scales_linearly,
    cpu_seconds,
    fuzz_settings,
    hostile_text,
    mutated,
)

GS = "\x1d"
# GS1 AI encodable character set 82, which AI (10) and (21) values are drawn from
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
OWN = "0123456789" + GS + "]Cd12Q3" + "ABCXYZ-./"


def check_digit(digits: str) -> str:
    """GS1 mod-10 check digit, written here from the GS1 recipe (not identifiers.gs1's).

    "Multiply value of each position by 3, 1, 3, … counted from the position next to
    the check digit, add the results, subtract the sum from the nearest equal or
    higher multiple of ten" (gs1.org, How to calculate a check digit manually).
    """
    total = 0
    for position, char in enumerate(reversed(digits)):
        total += int(char) * (3 if position % 2 == 0 else 1)
    return str((10 - total % 10) % 10)


def _refuses_or_parses(text: str) -> None:
    try:
        label = parse_gs1(text)
    except BarcodeError as err:
        assert err.reason  # a reason a person can act on  # noqa: PT017 - either outcome is fine; a refusal has a reason
        return
    assert label.scheme is Scheme.GS1
    for key in (label.gtin, label.sscc):
        assert key is None or (key.isascii() and key.isdigit())


# --- (a) nothing but BarcodeError, within a time bound ---


@fuzz_settings()
@given(hostile_text(OWN))
@example("]")  # biip: IndexError on a bare symbology bracket
@example("]Y--M")  # biip: ValueError from int() on a malformed symbology identifier
def test_any_text_is_a_label_or_a_barcode_error(text: str) -> None:
    _refuses_or_parses(text)


VALID = st.sampled_from(
    [
        "]C10107300011000017",
        "]d2010730001100001717250600" + "10LOT-7" + GS + "21SN42",
        "]d2" + "00106141412345678908",
        "0104012345678901" + "11250101" + "10A1",
    ]
)


@fuzz_settings()
@given(mutated(VALID, OWN))
def test_edited_labels_are_a_label_or_a_barcode_error(text: str) -> None:
    _refuses_or_parses(text)


@fuzz_settings()
@given(st.integers(0, 13), st.sampled_from(NON_ASCII_DIGITS))
@example(2, "٠")  # was accepted: GTIN "٠9876543210982" (biip reads Arabic-Indic 0 as 0)
def test_a_non_ascii_digit_anywhere_in_a_gtin_is_refused(position: int, digit: str) -> None:
    gtin = "09876543210982"
    text = "01" + gtin[:position] + digit + gtin[position + 1 :]
    with pytest.raises(BarcodeError, match="not ASCII"):
        parse_gs1(text)


def test_huge_input_is_refused_in_linear_time() -> None:
    with pytest.raises(BarcodeError, match="more than any barcode"):
        parse_gs1("01" + "0" * 1_000_000)
    assert_scales_linearly(lambda n: _refuses_or_parses("]d201" + "0" * n), 200_000)


@pytest.mark.parametrize(
    "worst",
    [
        "]d201" + "0" * (MAX_LABEL_CHARS - 5),  # one AI that never ends
        "]d2" + ("10A" + GS) * ((MAX_LABEL_CHARS - 3) // 4),  # thousands of short AIs
        "]d2" + "0107300011000017" * ((MAX_LABEL_CHARS - 3) // 16),  # a GTIN repeated
    ],
    ids=["one-long-ai", "many-short-ais", "repeated-gtin"],
)
def test_the_longest_input_it_parses_takes_well_under_a_second(worst: str) -> None:
    # biip's parser is superlinear; the length bound is what caps its time (measured
    # about 0.02 s on this machine; a generous 2 s limit, not a timing test)
    assert len(worst) <= MAX_LABEL_CHARS
    assert cpu_seconds(lambda: _refuses_or_parses(worst), repeat=1) < 2.0


# --- (b) round trips: element strings built from valid AIs ---


def _dates() -> st.SearchStrategy[tuple[str, dt.date]]:
    """YYMMDD and the date it means, DD = 00 being the last day of the month."""

    def build(year: int, month: int, day: int) -> tuple[str, dt.date]:
        last = calendar.monthrange(year, month)[1]
        day = min(day, last)
        meant = dt.date(year, month, day or last)
        return f"{year % 100:02d}{month:02d}{day:02d}", meant

    # within the GS1 century window (-49/+50 years around today) for years 2000-2070
    return st.builds(build, st.integers(2000, 2070), st.integers(1, 12), st.integers(0, 31))


@fuzz_settings()
@given(
    body=st.text("0123456789", min_size=13, max_size=13),
    lot=st.text(CSET82, min_size=1, max_size=20),
    serial=st.text(CSET82, min_size=1, max_size=20) | st.none(),
    expiry=_dates() | st.none(),
    symbology=st.sampled_from(["", "]C1", "]d2", "]Q3"]),
    variable_first=st.booleans(),
    line_end=st.sampled_from(["", "\r", "\n", "\r\n"]),
)
def test_element_strings_from_valid_ais_decode_to_what_they_carry(
    body: str,
    lot: str,
    serial: str | None,
    expiry: tuple[str, dt.date] | None,
    symbology: str,
    variable_first: bool,
    line_end: str,
) -> None:
    gtin = body + check_digit(body)
    fixed = "01" + gtin + (f"17{expiry[0]}" if expiry else "")
    variable = GS.join(["10" + lot] + ([f"21{serial}"] if serial else []))
    # a variable-length AI ends with GS unless it is last; fixed-length ones need none
    data = variable + GS + fixed if variable_first else fixed + variable
    label = parse_gs1(symbology + data + line_end)
    assert (label.scheme, label.gtin, label.di, label.lot, label.serial) == (
        Scheme.GS1,
        gtin,
        gtin,
        lot,
        serial,
    )
    assert label.expiry == (expiry[1] if expiry else None)


@fuzz_settings()
@given(st.text("0123456789", min_size=13, max_size=13), st.integers(1, 9))
def test_a_wrong_gtin_check_digit_is_refused(body: str, off: int) -> None:
    wrong = str((int(check_digit(body)) + off) % 10)
    with pytest.raises(BarcodeError):
        parse_gs1("]d201" + body + wrong)


@fuzz_settings()
@given(st.text("0123456789", min_size=17, max_size=17))
def test_sscc_round_trip(body: str) -> None:
    sscc = body + check_digit(body)
    assert parse_gs1("]C100" + sscc).sscc == sscc


# --- (c) known answers from the standard and independent sources ---


@pytest.mark.parametrize(
    ("without_check", "check"),
    [
        ("629104150021", "3"),  # gs1.org, "How to calculate a check digit manually"
        ("730001100001", "7"),  # GS1 Sweden, "Så beräknas kontrollsiffran": 7300011000017
        ("890400021003", "7"),  # GS1 India, "How to calculate the Check Digit"
        ("03600024145", "7"),  # UPC-A 036000241457, the classic worked example
    ],
)
def test_check_digit_examples_of_gs1_member_organisations(without_check: str, check: str) -> None:
    gtin14 = without_check.rjust(13, "0") + check
    assert parse_gs1("]C101" + gtin14).gtin == gtin14
    wrong = str((int(check) + 1) % 10)
    with pytest.raises(BarcodeError):
        parse_gs1("]C101" + without_check.rjust(13, "0") + wrong)


def test_sscc_examples_of_the_epc_tag_data_standard_and_epc_coder() -> None:
    # GS1 EPC TDS worked example sscc 0614141.1234567890 -> SSCC 106141412345678908;
    # pedrozc90/epc-coder SSCCParserTest: company 023356789, extension 3, serial
    # 0200002, check digit 2
    assert parse_gs1("]C100106141412345678908").sscc == "106141412345678908"
    assert parse_gs1("]C100302335678902000022").sscc == "302335678902000022"
    with pytest.raises(BarcodeError):
        parse_gs1("]C100302335678902000023")


def test_dd00_is_the_last_day_of_the_month() -> None:
    # GS1 General Specifications, AI (17): "if only year and month are available, DD
    # must be filled with two zeros", meaning the last day of that month
    assert parse_gs1("]d2010730001100001717240200").expiry == dt.date(2024, 2, 29)
    assert parse_gs1("]d2010730001100001717250200").expiry == dt.date(2025, 2, 28)
