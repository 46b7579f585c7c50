"""The lots list's search box: a lot number part, a GTIN, or a pasted scan decoded as a label."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from erp_core.lots.search import LotSearch, parse_search
from identifiers.gs1 import encode_gs1

GTIN = "09506000134352"


def test_a_pasted_gs1_datamatrix_finds_the_lot_on_the_label() -> None:
    scan = "]d201" + GTIN + "17280101" + "10L-2026-001"
    assert parse_search(scan) == LotSearch(number="L-2026-001", gtin=GTIN, scheme="gs1")
    fnc1 = "01" + GTIN + "10L-7\x1d17280101"  # a variable-length lot ends with FNC1 (GS)
    assert parse_search(fnc1) == LotSearch(number="L-7", gtin=GTIN, scheme="gs1")


def test_typed_text_is_a_gtin_or_part_of_a_lot_number() -> None:
    assert parse_search(" 9506000134352 ") == LotSearch(gtin=GTIN)  # GTIN-13, padded
    assert parse_search("2026-001") == LotSearch(number_part="2026-001")
    assert parse_search("12345678") == LotSearch(number_part="12345678")  # bad check digit
    assert parse_search("   ") is None


def test_a_hibc_label_gives_its_lot() -> None:
    found = parse_search("+A99912345/$$52001510X3/16D20111212/S77DEFG457")
    assert found is not None
    assert (found.number, found.scheme) == ("10X3", "hibc")


@given(st.text(max_size=80))
def test_any_text_is_a_search_and_never_an_error(text: str) -> None:
    found = parse_search(text)
    assert found is None or found != LotSearch()


@given(st.from_regex(r"[A-Z0-9\-]{1,20}", fullmatch=True))
def test_the_lot_of_any_encoded_label_is_found(lot: str) -> None:
    found = parse_search(encode_gs1(gtin=GTIN, lot=lot, serial="S1", expiry="280101"))
    assert found == LotSearch(number=lot, gtin=GTIN, scheme="gs1")


def test_the_bracketed_human_readable_form_finds_the_lot() -> None:
    found = parse_search("(01)04006381333931(10)ABC (17)280101")
    assert found == LotSearch(number="ABC", gtin="04006381333931", scheme="gs1")
