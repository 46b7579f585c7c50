"""Fuzzing the HIBC LIC decoder (telemetry/hibc.py).

Contract: ``parse_hibc(text: str) -> Label`` for a primary, secondary or concatenated
HIBC LIC symbol (ANSI/HIBC 2.6), its mod-43 check character verified; any other input
raises ``BarcodeError`` with a reason, and nothing else, in time linear in its length.

Expected values come from the standard's figures as independent encoders cite them
(see the known-answer test), or from the strategy that built the input.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identifiers.hibc import parse_hibc
from identifiers.udi import BarcodeError, Scheme
from tests.fuzz_support import assert_scales_linearly, fuzz_settings, hostile_text, mutated

# ANSI/HIBC 2.6: character values 0-9, A-Z = 10-35, then - . space $ / + % = 36-42
TABLE = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%"
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def with_check(data: str) -> str:
    """``data`` and its check character: the sum of character values modulo 43."""
    return data + TABLE[sum(TABLE.index(c) for c in data) % 43]


def _refuses_or_parses(text: str) -> None:
    try:
        label = parse_hibc(text)
    except BarcodeError as err:
        assert err.reason  # noqa: PT017 - either outcome is fine; a refusal has a reason
        return
    assert label.scheme is Scheme.HIBC
    for field in (label.di, label.lot, label.serial):
        assert field is None or (field.isascii() and len(field) <= 23)


# --- (a) nothing but BarcodeError ---


@fuzz_settings()
@given(hostile_text(TABLE + "*"))
def test_any_text_is_a_label_or_a_barcode_error(text: str) -> None:
    _refuses_or_parses(text)


@fuzz_settings()
@given(st.text(TABLE, min_size=1, max_size=40).map(lambda s: with_check("+" + s)))
def test_any_data_with_a_correct_check_character_is_a_label_or_a_barcode_error(text: str) -> None:
    # the check character is right, so every rule past it is exercised
    _refuses_or_parses(text)


VALID = st.sampled_from(
    [
        "+A123BJC5D6E71G",
        "+A99912345/$$52001510X33",
        "+$$52001510X3GD",
        "+A99912345/$$52001510X3/16D20111212/S77DEFG457",
    ]
)


@fuzz_settings()
@given(mutated(VALID, TABLE))
def test_edited_labels_are_a_label_or_a_barcode_error(text: str) -> None:
    _refuses_or_parses(text)


@fuzz_settings()
@given(mutated(VALID, TABLE, hostile=False).map(lambda s: with_check(s[:-1])))
def test_edited_labels_with_a_fixed_check_character_are_a_label_or_a_barcode_error(
    text: str,
) -> None:
    _refuses_or_parses(text)


def test_huge_input_takes_linear_time() -> None:
    assert_scales_linearly(
        lambda n: _refuses_or_parses(with_check("+A123" + "B" * n + "1")), 50_000
    )
    assert_scales_linearly(
        lambda n: _refuses_or_parses(with_check("+A1231/$$5" + "20015" + "L" * n)), 50_000
    )


# --- (b) round trips ---


def _expiry_formats() -> st.SearchStrategy[tuple[str, dt.date]]:
    """A secondary ``$$`` date field and the date it means (ANSI/HIBC 2.6 formats 2-5)."""

    def build(fmt: int, day: dt.date) -> tuple[str, dt.date]:
        yy = f"{day.year % 100:02d}"
        text = {
            2: f"{day:%m%d}{yy}",
            3: f"{yy}{day:%m%d}",
            4: f"{yy}{day:%m%d}12",
            5: f"{yy}{day.timetuple().tm_yday:03d}",
        }[fmt]
        return f"{fmt}{text}", day

    days = st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31))
    return st.builds(build, st.sampled_from([2, 3, 4, 5]), days)


@fuzz_settings()
@given(
    lic=st.builds(
        lambda a, b: a + b, st.sampled_from(ALNUM[10:]), st.text(ALNUM, min_size=3, max_size=3)
    ),
    pcn=st.text(ALNUM, min_size=1, max_size=18),
    unit=st.integers(0, 9),
    expiry=_expiry_formats(),
    lot=st.text(ALNUM + "-", min_size=1, max_size=18),
    star=st.booleans(),
)
def test_concatenated_symbols_decode_to_what_they_carry(
    lic: str, pcn: str, unit: int, expiry: tuple[str, dt.date], lot: str, star: bool
) -> None:
    symbol = with_check(f"+{lic}{pcn}{unit}/$${expiry[0]}{lot}")
    label = parse_hibc(f"*{symbol}*" if star else symbol)  # Code 39 HRI shows the stars
    assert (label.di, label.lot, label.expiry) == (f"{lic}{pcn}{unit}", lot, expiry[1])


@fuzz_settings()
@given(st.text(TABLE, min_size=1, max_size=30), st.sampled_from(TABLE))
def test_a_wrong_check_character_is_refused(data: str, wrong: str) -> None:
    right = with_check("+A123" + data)[-1]
    if wrong != right:
        with pytest.raises(BarcodeError):
            parse_hibc("+A123" + data + wrong)


# --- (c) known answers ---


def test_examples_of_the_standard() -> None:
    # ANSI/HIBC 2.6, as tecnickcom/tc-lib-barcode's HIBC tests cite it: section 4.3.1
    # Figure 1 "+A123BJC5D6E71" -> check G; section 4.3.2 Figure 5 (a secondary with
    # link character G) "+$$52001510X3G" -> check D; section 2.2.1.1 concatenated
    # "+A99912345/$$52001510X3" -> check 3
    primary = parse_hibc("+A123BJC5D6E71G")
    assert primary.di == "A123BJC5D6E71"
    secondary = parse_hibc("+$$52001510X3GD")
    # $$5: YYJJJ = 20015, day 15 of 2020; the lot follows
    assert (secondary.di, secondary.expiry, secondary.lot) == (None, dt.date(2020, 1, 15), "10X3")
    both = parse_hibc("+A99912345/$$52001510X33")
    assert (both.di, both.expiry, both.lot) == ("A99912345", dt.date(2020, 1, 15), "10X3")
    for wrong in ("+A123BJC5D6E71H", "+$$52001510X3GE", "+A99912345/$$52001510X34"):
        with pytest.raises(BarcodeError, match="check character"):
            parse_hibc(wrong)


def test_supplemental_fields_example() -> None:
    # bashrc2/datamatrix, test_hibc_translate: "+A99912345/$$52001510X3/16D20111212/
    # S77DEFG457" = labeler A999, product 1234, unit 5, expiry 2020 day 015, lot 10X3,
    # manufactured 2011-12-12, serial 77DEFG45; the last character, 7, is the symbol's
    # check character (that decoder leaves it on the serial; parsing here verifies it)
    label = parse_hibc("+A99912345/$$52001510X3/16D20111212/S77DEFG457")
    assert (label.di, label.lot, label.serial) == ("A99912345", "10X3", "77DEFG45")
    assert (label.expiry, label.production) == (dt.date(2020, 1, 15), dt.date(2011, 12, 12))
