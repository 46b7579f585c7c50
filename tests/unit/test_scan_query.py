"""The hardening middleware lets GS (FNC1) through in the lots search, and nowhere else."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from erp_core.hardening import invalid_request_text

CONTROLS = st.sampled_from([chr(c) for c in (*range(0x20), 0x7F)])
SCAN = "]d20109506000134352" + "10L-7\x1d17280101"


def _query(**fields: str) -> bytes:
    return urlencode(fields).encode()


def test_a_pasted_scan_with_fnc1_is_a_search() -> None:
    assert invalid_request_text("/lots", _query(q=SCAN, status="")) is None


def test_gs_elsewhere_is_still_refused() -> None:
    refused = "the query string contains a control character"
    assert invalid_request_text("/lots", _query(status="a\x1db")) == refused
    assert invalid_request_text("/alerts", _query(q=SCAN)) == refused
    assert invalid_request_text("/lots", b"q%1D=x") == refused
    assert (
        invalid_request_text("/lots\x1d", _query(q="x")) == "the path contains a control character"
    )


@given(st.text(max_size=30), CONTROLS, st.text(max_size=30))
def test_every_other_control_character_is_refused_even_in_the_scan_field(
    before: str, control: str, after: str
) -> None:
    text = before + control + after
    found = invalid_request_text("/lots", _query(q=text))
    if control == "\x1d" and not any(
        (ord(c) < 0x20 or ord(c) == 0x7F) and c != "\x1d" for c in before + after
    ):
        assert found is None
    else:
        assert found == "the query string contains a control character"
