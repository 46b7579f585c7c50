"""GTIN identity (identifiers/gtin.py): the GS1 check digit and the one stored form, GTIN-14.

Expected values come from the GS1 documents cited at each test, or from the recipe of
the GS1 General Specifications written out here (``gs1_recipe``); never from the module
under test.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from identifiers.epc import decode_epc
from identifiers.gtin import (
    GTIN_LENGTHS,
    GtinError,
    check_digit,
    is_gtin14,
    is_valid_gtin,
    to_gtin14,
    with_check_digit,
)
from tests.fuzz_support import NON_ASCII_DIGITS, fuzz_settings

DIGITS = "0123456789"


def gs1_recipe(body: str) -> str:
    """The check digit by GS1 General Specifications §7.9.1: from the right, weights 3, 1."""
    odd = sum(int(d) for d in body[::-1][0::2])  # positions 1, 3, … from the right: x3
    even = sum(int(d) for d in body[::-1][1::2])
    return str(-(odd * 3 + even) % 10)


def gtins(length: int) -> st.SearchStrategy[str]:
    """Valid GTINs of ``length`` digits (check digit by the recipe)."""
    body = st.text(DIGITS, min_size=length - 1, max_size=length - 1)
    return body.map(lambda b: b + gs1_recipe(b))


ANY_GTIN = st.sampled_from(GTIN_LENGTHS).flatmap(gtins)


# --- known answers ---


def test_check_digit_example_of_the_gs1_general_specifications() -> None:
    # GS1 General Specifications §7.9.1, Figure 7.9.1-2 (check digit calculation):
    # GTIN-13 without check digit 629104150021, sum 57, check digit 3
    assert check_digit("629104150021") == 3
    assert to_gtin14("6291041500213") == "06291041500213"
    with pytest.raises(GtinError, match="check digit is 4, the GS1 check digit is 3"):
        to_gtin14("6291041500214")


@pytest.mark.parametrize(
    ("form", "gtin14"),
    [
        # GS1 General Specifications Figure 3.3.2-1 (format of AI (01)): GTIN-8 takes six
        # leading zeros, GTIN-12 two, GTIN-13 one, GTIN-14 none
        ("96385074", "00000096385074"),  # EAN-8 (GTIN-8)
        ("036000291452", "00036000291452"),  # UPC-A (GTIN-12)
        ("0036000291452", "00036000291452"),  # the same product as a GTIN-13
        ("6291041500213", "06291041500213"),  # GTIN-13, the §7.9.1 example
        ("80614141123458", "80614141123458"),  # GTIN-14, EPC TDS SGTIN example
    ],
)
def test_every_form_takes_the_leading_zeros_of_ai_01(form: str, gtin14: str) -> None:
    assert to_gtin14(form) == gtin14
    assert is_gtin14(gtin14)
    assert is_gtin14(form) == (len(form) == 14)


def test_the_sgtin_worked_example_of_the_epc_tag_data_standard() -> None:
    # GS1 EPC Tag Data Standard: urn:epc:tag:sgtin-96:3.0614141.812345.6789 is
    # 3074257BF7194E4000001A85, GTIN 80614141123458 (indicator 8, check digit 8)
    epc = decode_epc("3074257BF7194E4000001A85")
    assert epc.gtin == "80614141123458"
    assert with_check_digit("8061414112345") == "80614141123458"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("12345", "5 digits"),
        ("400638133393", "check digit"),  # a GTIN-13 missing a digit: a GTIN-12 with a bad check
        ("40063813339310", "check digit"),
        ("004006381333931", "15 digits"),
        ("4006381333931 ", "digits 0-9 only"),
        ("400638133393１", "digits 0-9 only"),  # full-width 1
        ("4006381333٩31", "digits 0-9 only"),  # Arabic-Indic 9
        ("04006381333932", "check digit is 2, the GS1 check digit is 1"),
    ],
)
def test_refusals_say_why(text: str, reason: str) -> None:
    with pytest.raises(GtinError) as err:
        to_gtin14(text)
    assert reason in err.value.reason or reason in str(err.value)
    assert not is_valid_gtin(text)


def test_a_huge_value_is_quoted_short() -> None:
    with pytest.raises(GtinError) as err:
        to_gtin14("9" * 100_000)
    assert len(str(err.value)) < 200


@pytest.mark.parametrize("body", ["", "12a", "١٢٣", "12 3"])
def test_check_digit_needs_ascii_digits(body: str) -> None:
    with pytest.raises(ValueError, match="digits 0-9"):
        check_digit(body)


# --- properties ---


@fuzz_settings()
@given(body=st.text(DIGITS, min_size=1, max_size=30))
def test_check_digit_is_the_gs1_recipe(body: str) -> None:
    assert str(check_digit(body)) == gs1_recipe(body)
    assert with_check_digit(body) == body + gs1_recipe(body)


@fuzz_settings()
@given(gtin=ANY_GTIN)
def test_normalising_is_idempotent_and_keeps_the_product(gtin: str) -> None:
    gtin14 = to_gtin14(gtin)
    assert len(gtin14) == 14
    assert gtin14.endswith(gtin)
    assert set(gtin14[: 14 - len(gtin)]) <= {"0"}  # only leading zeros added
    assert to_gtin14(gtin14) == gtin14
    # the same check digit, still valid by the recipe: the same product
    assert gtin14[-1] == gtin[-1] == gs1_recipe(gtin14[:-1])
    assert is_gtin14(gtin14)
    assert is_valid_gtin(gtin)


@fuzz_settings()
@given(gtin=ANY_GTIN)
@example(gtin="00000096385074")
def test_every_accepted_form_of_one_gtin_is_one_gtin14(gtin: str) -> None:
    padded = gtin.rjust(14, "0")
    forms = [padded[14 - n :] for n in GTIN_LENGTHS if set(padded[: 14 - n]) <= {"0"}]
    assert gtin in forms
    assert {to_gtin14(form) for form in forms} == {padded}


@fuzz_settings()
@given(gtin=ANY_GTIN, data=st.data())
def test_one_mistyped_digit_is_never_another_gtin(gtin: str, data: st.DataObject) -> None:
    # weights 3 and 1 are prime to 10, so any single wrong digit changes the sum mod 10
    at = data.draw(st.integers(0, len(gtin) - 1))
    wrong = data.draw(st.sampled_from([d for d in DIGITS if d != gtin[at]]))
    mistyped = gtin[:at] + wrong + gtin[at + 1 :]
    with pytest.raises(GtinError, match="check digit"):
        to_gtin14(mistyped)


@fuzz_settings()
@given(
    text=st.text(DIGITS, max_size=20)
    | st.text(max_size=20)
    | st.text(DIGITS + NON_ASCII_DIGITS, min_size=8, max_size=14)
)
def test_any_text_is_a_gtin_by_the_recipe_or_refused_with_a_reason(text: str) -> None:
    valid = (
        text.isascii()
        and text.isdigit()
        and len(text) in GTIN_LENGTHS
        and gs1_recipe(text[:-1]) == text[-1]
    )
    try:
        gtin14 = to_gtin14(text)
    except GtinError as err:
        assert not valid
        assert err.reason  # noqa: PT017 - either outcome is fine; a refusal has a reason
        assert not is_valid_gtin(text)
        return
    assert valid
    assert gtin14 == text.rjust(14, "0")
